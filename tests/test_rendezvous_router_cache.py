"""The router's remembered counterparts follow every route change.

``Router.peerPaused`` no longer walks a link's routes on every pause (with 1,000 streams on one
link that walk was most of the rendezvous's CPU); the remembered answer must be forgotten when
a route is added, reset or lost, or a pause would miss a new peer or hit a gone one.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from tests.test_rendezvous_router import Peer
from twisted_exec.rendezvous.router import Router
from twisted_exec.wire.frames import encodeReset, encodeResume


class CounterpartCacheTests(TestCase):
    def setUp(self) -> None:
        self.router = Router(Clock())
        self.executor = Peer("executor")
        self.router.executorConnected("box", self.executor)

    def toggle(self) -> None:
        self.router.peerPaused(self.executor)
        self.router.peerResumed(self.executor)

    def test_newRouteAfterAPauseIsPausedNextTime(self) -> None:
        h1, h2 = Peer("h1"), Peer("h2")
        self.router.fromHarness(h1, "box", encodeResume("s1"))
        self.toggle()  # remembers {h1}
        self.router.fromHarness(h2, "box", encodeResume("s2"))
        self.router.peerPaused(self.executor)
        self.assertTrue(h1.paused and h2.paused)
        self.router.peerResumed(self.executor)
        self.assertFalse(h1.paused or h2.paused)

    def test_resetRouteIsForgotten(self) -> None:
        h1, h2 = Peer("h1"), Peer("h2")
        self.router.fromHarness(h1, "box", encodeResume("s1"))
        self.router.fromHarness(h2, "box", encodeResume("s2"))
        self.toggle()  # remembers {h1, h2}
        self.router.fromHarness(h2, "box", encodeReset("s2", "done"))
        self.router.peerPaused(self.executor)
        self.assertTrue(h1.paused)
        self.assertFalse(h2.paused)

    def test_lostHarnessIsForgotten(self) -> None:
        h1, h2 = Peer("h1"), Peer("h2")
        self.router.fromHarness(h1, "box", encodeResume("s1"))
        self.router.fromHarness(h2, "box", encodeResume("s2"))
        self.toggle()
        self.router.harnessLost(h2)
        self.router.peerPaused(self.executor)
        self.assertTrue(h1.paused)
        self.assertFalse(h2.paused)
