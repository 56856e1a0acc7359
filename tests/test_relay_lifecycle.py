"""The relay stream lifecycle machine (``relay/lifecycle.py``), driven directly, sans IO.

Every input in every state: what it answers (the call the demux must make now) and where it
leaves the stream, including the inputs that have nothing to do in a state (a resume of a
running stream, a window event after the end, a second end), which must answer "nothing" and
never reach the processor twice.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from tests.test_relay_demux import request
from tests.test_relay_flow_control import FlowFactory
from twisted_exec.executor.core.interfaces import IJsonRpcProcessor, IMessageSink
from twisted_exec.executor.transports.relay.demux import RelayDemux, _Stream
from twisted_exec.executor.transports.relay.lifecycle import StreamCore
from twisted_exec.executor.transports.relay.noise_stream import NoiseStream
from twisted_exec.rendezvous.credits import encodeAck


@implementer(IJsonRpcProcessor)
class _Untouched:
    """A processor the machine must never call: its outputs only move state."""

    def makeConnection(self, sink: IMessageSink) -> None:
        raise AssertionError("called")

    def messageReceived(self, payload: bytes) -> None:
        raise AssertionError("called")

    def connectionLost(self) -> None:
        raise AssertionError("called")

    def closeSession(self) -> None:
        raise AssertionError("called")

    def pauseProducing(self) -> None:
        raise AssertionError("called")

    def resumeProducing(self) -> None:
        raise AssertionError("called")


def _core() -> StreamCore:
    return StreamCore("s1", _Untouched())


def _windowPaused() -> StreamCore:
    core = _core()
    assert core.lifecycle.windowPaused()
    return core


def _ending() -> StreamCore:
    core = _core()
    core.lifecycle.end()
    return core


def _closed() -> StreamCore:
    core = _ending()
    assert core.lifecycle.drained()
    return core


class RunningTests(SynchronousTestCase):
    def test_startsLiveAndUnheld(self) -> None:
        core = _core()
        self.assertTrue(core.live)
        self.assertFalse(core.windowHeld)
        self.assertEqual(core.delivering, 0)

    def test_windowPausedAsksForAPause(self) -> None:
        core = _core()
        self.assertTrue(core.lifecycle.windowPaused())
        self.assertTrue(core.windowHeld)
        self.assertTrue(core.live)

    def test_windowResumedWhileRunningIsNothing(self) -> None:
        core = _core()
        self.assertFalse(core.lifecycle.windowResumed())
        self.assertFalse(core.windowHeld)
        # Still running: the next window pause is a real one.
        self.assertTrue(core.lifecycle.windowPaused())

    def test_drainedWhileLiveOwesNothing(self) -> None:
        core = _core()
        self.assertFalse(core.lifecycle.drained())
        self.assertTrue(core.live)

    def test_endStopsTheStream(self) -> None:
        core = _core()
        core.lifecycle.end()
        self.assertFalse(core.live)


class WindowPausedTests(SynchronousTestCase):
    def test_windowResumedAsksForAResume(self) -> None:
        core = _windowPaused()
        self.assertTrue(core.lifecycle.windowResumed())
        self.assertFalse(core.windowHeld)
        self.assertTrue(core.live)

    def test_secondWindowPauseIsNothing(self) -> None:
        core = _windowPaused()
        self.assertFalse(core.lifecycle.windowPaused())
        self.assertTrue(core.windowHeld)
        # Still held once: one resume releases it.
        self.assertTrue(core.lifecycle.windowResumed())

    def test_drainedWhileHeldOwesNothing(self) -> None:
        core = _windowPaused()
        self.assertFalse(core.lifecycle.drained())
        self.assertTrue(core.windowHeld)

    def test_endReleasesTheHold(self) -> None:
        core = _windowPaused()
        core.lifecycle.end()
        self.assertFalse(core.live)
        self.assertFalse(core.windowHeld)
        self.assertTrue(core.lifecycle.drained())


class EndingTests(SynchronousTestCase):
    def test_drainedDeliversConnectionLostOnce(self) -> None:
        core = _ending()
        self.assertTrue(core.lifecycle.drained())
        self.assertFalse(core.lifecycle.drained())

    def test_windowEventsAfterTheEndAreNothing(self) -> None:
        core = _ending()
        self.assertFalse(core.lifecycle.windowPaused())
        self.assertFalse(core.lifecycle.windowResumed())
        self.assertFalse(core.windowHeld)
        self.assertFalse(core.live)
        # Still owed: the window events did not swallow the connectionLost.
        self.assertTrue(core.lifecycle.drained())

    def test_secondEndIsTheSameEnd(self) -> None:
        core = _ending()
        core.lifecycle.end()
        self.assertFalse(core.live)
        self.assertTrue(core.lifecycle.drained())
        self.assertFalse(core.lifecycle.drained())


class ClosedTests(SynchronousTestCase):
    def test_everyInputIsNothing(self) -> None:
        core = _closed()
        self.assertFalse(core.lifecycle.windowPaused())
        self.assertFalse(core.lifecycle.windowResumed())
        core.lifecycle.end()
        self.assertFalse(core.lifecycle.drained())
        self.assertFalse(core.live)
        self.assertFalse(core.windowHeld)

    def test_noWayBack(self) -> None:
        """A closed stream never runs again: a later data frame builds a new stream."""
        core = _closed()
        for _ in range(3):
            core.lifecycle.windowResumed()
            core.lifecycle.end()
        self.assertFalse(core.live)


class SharedByBothRelaysTests(SynchronousTestCase):
    def test_clearAndNoiseStreamsUseTheSameMachine(self) -> None:
        clear = _Stream("c", _Untouched())
        noisy = NoiseStream("n", _Untouched(), channel=object())  # type: ignore[arg-type]
        self.assertIs(type(clear.lifecycle), type(noisy.lifecycle))
        for core in (clear, noisy):
            self.assertTrue(core.lifecycle.windowPaused())
            core.lifecycle.end()
            self.assertTrue(core.lifecycle.drained())

    def test_eachStreamHasItsOwnState(self) -> None:
        first, second = _core(), _core()
        first.lifecycle.end()
        self.assertFalse(first.live)
        self.assertTrue(second.live)
        self.assertFalse(second.lifecycle.drained())


class DemuxWindowTests(SynchronousTestCase):
    """The two holds through the clear demux: its window (acks) and the websocket's buffer."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.sent: list[bytes] = []
        self.factory = FlowFactory()
        self.demux = RelayDemux(
            self.factory, self.sent.append, clock=self.clock, windowBytes=100, stallSeconds=5.0
        )
        self.demux.frameReceived(encodeAck("a", 0))  # the route opens: windowed from the start
        self.demux.frameReceived(request("a", 1))
        self.demux.frameReceived(request("b", 1))
        self.a = self.factory.built["a"]
        self.log = self.factory.log
        self.log.clear()

    def fillWindow(self) -> None:
        sink = self.a.sink
        assert sink is not None
        sink.sendMessage(b"x" * 200)

    def test_fullWindowPausesThatStreamOnly(self) -> None:
        self.fillWindow()
        self.assertEqual(self.log, ["pause a"])

    def test_websocketResumeLeavesAWindowHeldStreamPaused(self) -> None:
        self.fillWindow()
        self.demux.pauseProducing()
        self.log.clear()
        self.demux.resumeProducing()
        self.assertEqual(self.log, ["resume b"])

    def test_windowReleaseWhileTheWebsocketHoldsDoesNotResume(self) -> None:
        self.fillWindow()
        self.demux.pauseProducing()
        self.log.clear()
        self.demux.frameReceived(encodeAck("a", 1))
        self.assertEqual(self.log, [])
        self.demux.resumeProducing()
        self.assertEqual(sorted(self.log), ["resume a", "resume b"])

    def test_windowReleaseResumes(self) -> None:
        self.fillWindow()
        self.log.clear()
        self.demux.frameReceived(encodeAck("a", 1))
        self.assertEqual(self.log, ["resume a"])

    def test_stallResetsTheStreamOnce(self) -> None:
        self.fillWindow()
        self.sent.clear()
        self.clock.advance(5.0)
        self.assertEqual(self.log, ["pause a", "lost a"])
        self.assertEqual(self.demux.stalledStreams, 1)
        self.assertEqual(len(self.sent), 1)
        self.assertEqual(self.demux.streamIds, frozenset({"b"}))
        # Late acks and websocket events reach nothing of the ended stream.
        self.demux.frameReceived(encodeAck("a", 1))
        self.demux.pauseProducing()
        self.demux.resumeProducing()
        self.assertEqual(self.log, ["pause a", "lost a", "pause b", "resume b"])

    def test_closeInsideACallDefersConnectionLost(self) -> None:
        def closeWhileResuming() -> None:
            sink = self.a.sink
            assert sink is not None
            sink.loseConnection()
            self.log.append("closed a")

        self.a.onResume = closeWhileResuming
        self.fillWindow()
        self.demux.frameReceived(encodeAck("a", 1))
        self.assertEqual(self.log, ["pause a", "resume a", "closed a", "lost a"])
        self.assertEqual(self.demux.streamIds, frozenset({"b"}))
