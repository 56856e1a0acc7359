"""The router's delivery acks: cumulative, at the end of the turn once ``ACK_BYTES`` wait on a
stream (or its harness drained), else at most ``ACK_DELAY`` later (rendezvous/credits.py)."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from tests.test_rendezvous_router import Peer
from twisted_exec.rendezvous.credits import ACK_BYTES, ACK_DELAY
from twisted_exec.rendezvous.router import Router
from twisted_exec.wire.frames import encodeData, encodeResume


class AckBatchingTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.router = Router(self.clock)
        self.executor = Peer("executor")
        self.harness = Peer("harness")
        self.router.executorConnected("box", self.executor)
        self.router.fromHarness(self.harness, "box", encodeResume("s1"))
        self.assertEqual(self.acks(), [("s1", 0)])  # the route is acknowledged at once

    def acks(self) -> list[tuple[str, int]]:
        out, self.executor.acks = self.executor.acks, []
        return out

    def send(self, count: int, size: int) -> None:
        for seq in range(count):
            self.router.fromExecutor("box", self.executor, encodeData("s1", seq, b"x" * size))

    def test_smallRepliesShareOneDelayedAck(self) -> None:
        for _ in range(5):  # five turns of one small reply each
            self.send(1, 100)
            self.clock.advance(0)
        self.assertEqual(self.acks(), [])  # not one ack per reply any more
        self.clock.advance(ACK_DELAY * 0.9)
        self.assertEqual(self.acks(), [])  # not before ACK_DELAY
        self.clock.advance(ACK_DELAY * 0.1)
        self.assertEqual(self.acks(), [("s1", 5)])  # cumulative
        self.clock.advance(ACK_DELAY)
        self.assertEqual(self.acks(), [])  # nothing new: nothing sent

    def test_bulkIsAcknowledgedAtTheEndOfTheTurn(self) -> None:
        self.send(1, ACK_BYTES // 2)
        self.clock.advance(0)
        self.assertEqual(self.acks(), [])  # below ACK_BYTES: waits
        self.send(1, ACK_BYTES // 2)
        self.clock.advance(0)
        self.assertEqual(self.acks(), [("s1", 2)])  # ACK_BYTES reached: this turn
        self.send(3, ACK_BYTES // 2)
        self.clock.advance(0)
        self.assertEqual(self.acks(), [("s1", 5)])

    def test_aDrainedHarnessIsAcknowledgedAtOnce(self) -> None:
        self.router.peerPaused(self.harness)
        self.send(1, 100)
        self.clock.advance(ACK_DELAY)
        self.assertEqual(self.acks(), [])  # slow: no ack
        self.router.peerResumed(self.harness)
        self.clock.advance(0)
        self.assertEqual(self.acks(), [("s1", 1)])

    def test_aClosedRouteIsNotAcknowledgedLater(self) -> None:
        self.send(1, 100)
        self.clock.advance(0)
        self.router.acks.closed(("box", "s1"))
        self.clock.advance(ACK_DELAY)
        self.assertEqual(self.acks(), [])

    def test_theLastClosedRouteCancelsTheDelayedFlush(self) -> None:
        """No timer outlives the routes (a server stopping leaves no delayed call behind)."""
        self.send(1, 100)
        self.clock.advance(0)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.router.acks.closed(("box", "s1"))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopCancelsTheDelayedFlush(self) -> None:
        self.send(1, 100)
        self.clock.advance(0)
        self.router.acks.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
