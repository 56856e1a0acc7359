"""PacedReader and the websocket frame cut, sans IO (task.Clock)."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from twisted_exec.net.pacedreader import PacedReader, websocketCut
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
            self.clock, lambda: self.transport, self.got.append, cut=websocketCut
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
