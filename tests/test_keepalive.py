"""The shared websocket keepalive, driven by a task.Clock."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.net.keepalive import Keepalive


class KeepaliveTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.events: list[str] = []
        self.keepalive = Keepalive(
            self.clock,
            interval=30.0,
            timeout=60.0,
            sendPing=lambda: self.events.append("ping"),
            onSilent=lambda: self.events.append("silent"),
        )

    def test_pingsEveryInterval(self) -> None:
        self.keepalive.start()
        self.clock.advance(30)
        self.keepalive.touch()
        self.clock.advance(30)
        self.assertEqual(self.events, ["ping", "ping"])

    def test_silenceAfterTimeout(self) -> None:
        self.keepalive.start()
        self.clock.advance(59.9)
        self.assertNotIn("silent", self.events)
        self.clock.advance(0.1)
        self.assertEqual(self.events, ["ping", "silent"])

    def test_touchPushesTheDeadline(self) -> None:
        self.keepalive.start()
        for _ in range(5):
            self.clock.advance(50)
            self.keepalive.touch()
        self.assertNotIn("silent", self.events)

    def test_stopCancelsEverything(self) -> None:
        self.keepalive.start()
        self.keepalive.stop()
        self.keepalive.stop()
        self.clock.advance(1000)
        self.assertEqual(self.events, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.keepalive.touch()  # after stop: no new deadline
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_noIntervalNoTimeout(self) -> None:
        quiet = Keepalive(
            self.clock,
            interval=None,
            timeout=None,
            sendPing=lambda: self.events.append("ping"),
            onSilent=lambda: self.events.append("silent"),
        )
        quiet.start()
        quiet.touch()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertTrue(quiet.running)
