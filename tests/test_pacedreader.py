"""PacedReader and the websocket frame cut, sans IO (task.Clock)."""

from __future__ import annotations

import random

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from twisted_exec.net.pacedreader import PacedReader, WebsocketCutter
from twisted_exec.wire.wsframe import binaryFrame, serverBinaryFrame


class _Transport:
    def __init__(self) -> None:
        self.paused = False
        self.calls: list[str] = []

    def pauseProducing(self) -> None:
        self.paused = True
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.paused = False
        self.calls.append("resume")


class PacedReaderTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = _Transport()
        self.got: list[bytes] = []
        self.reader = PacedReader(
            self.clock, lambda: self.transport, self.got.append, cut=WebsocketCutter().cut
        )

    def test_smallReadsGoStraightThrough(self) -> None:
        frame = binaryFrame(b"x" * 10, b"\1\2\3\4")
        self.reader.dataReceived(frame * 3)
        self.assertEqual(self.got, [frame * 3])
        self.assertEqual(self.transport.calls, [])

    def test_aFloodIsDeliveredSixteenFramesPerTurnWithReadingPaused(self) -> None:
        """Each slice is a turn of its own (``callLater(0)``; a task.Clock runs them all in
        one ``advance``, the reactor one per iteration)."""
        frame = binaryFrame(b"y" * 20, b"\1\2\3\4")
        self.reader.dataReceived(frame * 40)
        self.assertEqual(self.got, [frame * 16])
        self.assertTrue(self.transport.paused)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.reader.pause("flow")  # the owner's flow control: the backlog waits
        self.clock.advance(0)
        self.assertEqual(len(self.got), 1)
        self.reader.resume("flow")
        self.assertTrue(self.transport.paused)  # still a backlog
        self.clock.advance(0)
        self.assertEqual([len(g) // len(frame) for g in self.got], [16, 16, 8])
        self.assertEqual(b"".join(self.got), frame * 40)
        self.assertFalse(self.transport.paused)
        self.assertEqual(self.transport.calls, ["pause", "resume"])

    def test_aLargeFrameIsOneSlice(self) -> None:
        big = binaryFrame(b"z" * 200_000, b"\1\2\3\4")
        self.reader.dataReceived(big)
        self.assertEqual(self.got, [big])

    def test_cut(self) -> None:
        """A fresh cutter whose byte budget is the whole read cuts after ``frames`` frames."""

        def websocketCut(data: bytes, frames: int) -> int:
            return WebsocketCutter(frames, budget=len(data)).cut(data)

        small = serverBinaryFrame(b"a" * 5)
        medium = binaryFrame(b"b" * 300, b"\0\0\0\0")
        large = serverBinaryFrame(b"c" * 70_000)
        data = small + medium + large
        self.assertEqual(websocketCut(data, 1), len(small))
        self.assertEqual(websocketCut(data, 2), len(small) + len(medium))
        self.assertEqual(websocketCut(data, 3), len(data))
        self.assertEqual(websocketCut(data[:1], 1), 1)  # inside a header: all of it
        self.assertEqual(websocketCut(data[: len(small) + 3], 5), len(small) + 3)

    def test_stopForgetsTheBacklog(self) -> None:
        frame = binaryFrame(b"y" * 20, b"\1\2\3\4")
        self.reader.dataReceived(frame * 40)
        self.reader.stop()
        self.clock.advance(0)
        self.assertEqual(len(self.got), 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_aReadInsideAPayloadIsNotParsedAsHeaders(self) -> None:
        """A large frame of base64 text arrives in several reads: the reads after the first
        start inside its payload, whose bytes (``AA``: a 65-byte frame header) are not headers.
        They once were, and such a message was cut into a thousand slices."""
        big = binaryFrame(b"A" * 200_000, b"\0\0\0\0")  # a zero key: the payload stays "A"s
        reads = [big[i : i + 65536] for i in range(0, len(big), 65536)]
        for data in reads:
            self.reader.dataReceived(data)
        self.assertEqual(self.got, reads)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.transport.calls, [])
        small = binaryFrame(b"y" * 20, b"\1\2\3\4")
        self.reader.dataReceived(small * 40)  # after it, frames are counted again
        self.assertEqual(self.got[-1], small * 16)

    def test_aHeaderSplitAcrossReads(self) -> None:
        frame = binaryFrame(b"q" * 70_000, b"\5\6\7\x08")  # a 14-byte header
        small = binaryFrame(b"y" * 20, b"\1\2\3\4")
        stream = small * 15 + frame + small * 20
        cut = len(small) * 15 + 5  # inside the big frame's header
        self.reader.dataReceived(stream[:cut])
        self.reader.dataReceived(stream[cut:])
        self.clock.advance(0)
        # 15 small frames and the big one's first header bytes; the rest of the big one (its
        # header completed counts as a frame begun) and 15 more; then the last 5
        self.assertEqual(self.got[0], stream[:cut])
        self.assertEqual(b"".join(self.got[:2]), small * 15 + frame + small * 15)
        self.assertEqual(self.got[2:], [small * 5])


class WebsocketCutterTests(TestCase):
    def frames(self, rng: random.Random, count: int) -> list[bytes]:
        sizes = (0, 1, 125, 126, 127, 65535, 65536, 70_000)
        out = []
        for _ in range(count):
            size = rng.choice(sizes) if rng.random() < 0.3 else rng.randrange(0, 3000)
            payload = bytes(rng.getrandbits(8) for _ in range(min(size, 64))) * (size // 64 + 1)
            if rng.random() < 0.5:
                out.append(binaryFrame(payload[:size], rng.randbytes(4)))
            else:
                out.append(serverBinaryFrame(payload[:size]))
        return out

    def test_slicesFollowFrameBoundariesInAnyReads(self) -> None:
        """Whatever the reads, a slice never begins more than ``frames`` frames, and the cuts
        add up to the stream."""
        rng = random.Random(1234)
        for trial in range(30):
            frames = self.frames(rng, 60)
            stream = b"".join(frames)
            starts = set()
            offset = 0
            for frame in frames:
                starts.add(offset)
                offset += len(frame)
            cutter = WebsocketCutter(frames=rng.choice((1, 3, 16)), budget=rng.choice((7, 4096)))
            position = 0
            while position < len(stream):
                read = stream[position : position + rng.randrange(1, 90_000)]
                while read:
                    size = cutter.cut(read)
                    self.assertGreater(size, 0)
                    begun = [s for s in starts if position <= s < position + size]
                    self.assertLessEqual(len(begun), cutter.frames, trial)
                    if size < len(read):  # cut short by a limit: the budget or the count
                        self.assertTrue(size >= cutter.budget or len(begun) == cutter.frames, trial)
                    position += size
                    read = read[size:]
            self.assertEqual(position, len(stream))

    def test_theByteBudget(self) -> None:
        cutter = WebsocketCutter(frames=16, budget=1000)
        frame = binaryFrame(b"z" * 2500, b"\1\2\3\4")
        self.assertEqual(
            [cutter.cut(frame), cutter.cut(frame[1000:]), cutter.cut(frame[2000:])],
            [1000, 1000, len(frame) - 2000],
        )
