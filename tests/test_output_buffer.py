"""The sans-IO event log: seq numbering, retention, reads, waiters, observer order."""

from __future__ import annotations

from twisted.internet import task
from twisted.trial import unittest

from twisted_exec.executor.core.output_buffer import Chunk, Closed, Exited, OutputBuffer
from twisted_exec.executor.resources.processes import waitForEvents


def chunks(result):
    return [(c.seq, c.stream, c.data) for c in result.chunks]


class SeqAndReadTests(unittest.TestCase):
    def test_oneCounterForAllEvents(self) -> None:
        seen: list[object] = []
        buf = OutputBuffer(onEvent=seen.append)
        buf.appendOutput("stdout", b"a")
        buf.appendOutput("stderr", b"b")
        buf.markExited(3)
        buf.appendOutput("stdout", b"late")
        buf.markClosed()
        self.assertEqual(
            seen,
            [
                Chunk(1, "stdout", b"a"),
                Chunk(2, "stderr", b"b"),
                Exited(3, 3),
                Chunk(4, "stdout", b"late"),
                Closed(5),
            ],
        )

    def test_readJsonExact(self) -> None:
        buf = OutputBuffer()
        buf.appendOutput("stderr", b"err\n")
        buf.appendOutput("stdout", b"hi\n")
        buf.markExited(3)
        buf.markClosed()
        self.assertEqual(
            buf.read().toJson(),
            {
                "chunks": [
                    {"seq": 1, "stream": "stderr", "chunk": "ZXJyCg=="},
                    {"seq": 2, "stream": "stdout", "chunk": "aGkK"},
                ],
                "nextSeq": 3,
                "exited": True,
                "exitCode": 3,
                "closed": True,
                "failure": None,
            },
        )

    def test_emptyRunningRead(self) -> None:
        self.assertEqual(
            OutputBuffer().read(5).toJson(),
            {
                "chunks": [],
                "nextSeq": 1,
                "exited": False,
                "exitCode": None,
                "closed": False,
                "failure": None,
            },
        )

    def test_nextSeqWithoutChunksIsEventCountPlusOne(self) -> None:
        # As the reference: afterSeq past every chunk gives lastSeq + 1, skipping exited/closed.
        buf = OutputBuffer()
        buf.appendOutput("stdout", b"x")
        buf.markExited(0)
        buf.appendOutput("stdout", b"y")
        buf.markClosed()
        self.assertEqual(buf.read(100).nextSeq, 5)
        self.assertEqual(buf.read(2).nextSeq, 4)
        self.assertEqual(chunks(buf.read(2)), [(3, "stdout", b"y")])
        self.assertEqual(buf.read(3).nextSeq, 5)
        self.assertEqual(chunks(buf.read(3)), [])

    def test_maxBytes(self) -> None:
        buf = OutputBuffer()
        for data in (b"one\n", b"two\n", b"three\n"):
            buf.appendOutput("stdout", data)
        self.assertEqual(chunks(buf.read(0, 0)), [(1, "stdout", b"one\n")])
        self.assertEqual(len(buf.read(0, 4).chunks), 1)
        self.assertEqual(len(buf.read(0, 8).chunks), 2)
        self.assertEqual(len(buf.read(0, 13).chunks), 2)
        self.assertEqual(len(buf.read(0, 14).chunks), 3)
        self.assertEqual(buf.read(0, 4).nextSeq, 2)
        self.assertEqual(chunks(buf.read(1, 1)), [(2, "stdout", b"two\n")])

    def test_retentionKeepsNewestBytes(self) -> None:
        buf = OutputBuffer(retainBytes=10)
        for i in range(6):
            buf.appendOutput("stdout", bytes([65 + i]) * 4)
        # 24 bytes written, at most 10 kept: the last two chunks.
        self.assertEqual(buf.retainedBytes, 8)
        self.assertEqual([c.seq for c in buf.read(0).chunks], [5, 6])
        self.assertEqual(buf.read(0).nextSeq, 7)
        self.assertEqual(buf.read(100).nextSeq, 7)

    def test_retentionExactBudgetIsKept(self) -> None:
        buf = OutputBuffer(retainBytes=8)
        buf.appendOutput("stdout", b"abcd")
        buf.appendOutput("stdout", b"efgh")
        self.assertEqual(len(buf.read().chunks), 2)

    def test_lifecycleOrderEnforced(self) -> None:
        buf = OutputBuffer()
        self.assertRaises(RuntimeError, buf.markClosed)
        buf.markExited(1)
        self.assertRaises(RuntimeError, buf.markExited, 1)
        buf.markClosed()
        self.assertRaises(RuntimeError, buf.markClosed)


class WaiterTests(unittest.TestCase):
    def test_wakesOnlyForLaterSeq(self) -> None:
        order: list[object] = []
        buf = OutputBuffer(onEvent=lambda e: order.append(("event", e.seq)))
        buf.appendOutput("stdout", b"a")
        buf.addWaiter(2, lambda: order.append("woken"))
        buf.appendOutput("stdout", b"b")  # seq 2: not after 2
        self.assertEqual(buf.waiterCount, 1)
        buf.markExited(0)  # seq 3 wakes it, after the observer saw it
        self.assertEqual(order, [("event", 1), ("event", 2), ("event", 3), "woken"])
        self.assertEqual(buf.waiterCount, 0)

    def test_cancel(self) -> None:
        buf = OutputBuffer()
        woken = []
        cancel = buf.addWaiter(0, lambda: woken.append(1))
        cancel()
        cancel()
        buf.appendOutput("stdout", b"x")
        self.assertEqual(woken, [])


class WaitForEventsTests(unittest.TestCase):
    def test_timeout(self) -> None:
        clock = task.Clock()
        buf = OutputBuffer()
        d = waitForEvents(clock, buf, 0, 400)
        clock.advance(0.399)
        self.assertNoResult(d)
        clock.advance(0.001)
        self.successResultOf(d)
        self.assertEqual(buf.waiterCount, 0)

    def test_earlyOnNewEvent(self) -> None:
        clock = task.Clock()
        buf = OutputBuffer()
        buf.appendOutput("stdout", b"old")
        d = waitForEvents(clock, buf, 1, 2000)
        clock.advance(0.6)
        self.assertNoResult(d)
        buf.appendOutput("stdout", b"new")
        self.successResultOf(d)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_exitedWakes(self) -> None:
        clock = task.Clock()
        buf = OutputBuffer()
        d = waitForEvents(clock, buf, 0, 2000)
        buf.markExited(0)
        self.successResultOf(d)

    def test_immediateWhenEventsPendingOrClosed(self) -> None:
        clock = task.Clock()
        buf = OutputBuffer()
        buf.appendOutput("stdout", b"x")
        self.successResultOf(waitForEvents(clock, buf, 0, 2000))
        buf.markExited(0)
        buf.markClosed()
        self.successResultOf(waitForEvents(clock, buf, 100, 2000))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_earlierEventDoesNotWake(self) -> None:
        clock = task.Clock()
        buf = OutputBuffer()
        d = waitForEvents(clock, buf, 100, 1000)
        buf.appendOutput("stdout", b"x")
        self.assertNoResult(d)
        clock.advance(1)
        self.successResultOf(d)


class FinishedTests(unittest.TestCase):
    def test_markFinishedWakesOnceAfterBoth(self) -> None:
        """A waiter woken by the exit sees ``closed`` too (the reference's long-poll reply)."""
        events: list[object] = []
        buffer = OutputBuffer(onEvent=events.append)
        buffer.appendOutput("stdout", b"x")
        seen: list[tuple[bool, bool, int]] = []
        buffer.addWaiter(1, lambda: seen.append((buffer.exited, buffer.closed, buffer.lastSeq)))
        buffer.markFinished(0)
        self.assertEqual(seen, [(True, True, 3)])
        self.assertEqual([type(e).__name__ for e in events], ["Chunk", "Exited", "Closed"])
        result = buffer.read(1).toJson()
        self.assertEqual((result["closed"], result["nextSeq"]), (True, 4))

    def test_markFinishedAfterExited(self) -> None:
        buffer = OutputBuffer()
        buffer.markExited(3)
        woken: list[int] = []
        buffer.addWaiter(1, lambda: woken.append(buffer.lastSeq))
        buffer.markFinished(3)
        self.assertEqual((woken, buffer.exitCode, buffer.closed), ([2], 3, True))
