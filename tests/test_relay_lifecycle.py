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


#: How to bring a fresh stream into each state.
_REACH: dict[str, list[str]] = {
    "Running": [],
    "WindowPaused": ["windowPaused"],
    "Ending": ["end"],
    "Closed": ["end", "drained"],
}

#: Every input in every state: its answer, ``live`` and ``windowHeld`` afterwards, and the
#: state it leads to (told by ``_identify``).
_TABLE: dict[tuple[str, str], tuple[bool | None, bool, bool, str]] = {
    ("Running", "windowPaused"): (True, True, True, "WindowPaused"),
    ("Running", "windowResumed"): (False, True, False, "Running"),
    ("Running", "end"): (None, False, False, "Ending"),
    ("Running", "drained"): (False, True, False, "Running"),
    ("WindowPaused", "windowPaused"): (False, True, True, "WindowPaused"),
    ("WindowPaused", "windowResumed"): (True, True, False, "Running"),
    ("WindowPaused", "end"): (None, False, False, "Ending"),
    ("WindowPaused", "drained"): (False, True, True, "WindowPaused"),
    ("Ending", "windowPaused"): (False, False, False, "Ending"),
    ("Ending", "windowResumed"): (False, False, False, "Ending"),
    ("Ending", "end"): (None, False, False, "Ending"),
    ("Ending", "drained"): (True, False, False, "Closed"),
    ("Closed", "windowPaused"): (False, False, False, "Closed"),
    ("Closed", "windowResumed"): (False, False, False, "Closed"),
    ("Closed", "end"): (None, False, False, "Closed"),
    ("Closed", "drained"): (False, False, False, "Closed"),
}


def _identify(core: StreamCore) -> str:
    """The state a stream's machine is in, told by its answers (it may move on meanwhile)."""
    if core.lifecycle.drained():
        return "Ending"
    if core.lifecycle.windowResumed():
        return "WindowPaused"
    if core.lifecycle.windowPaused():
        return "Running"
    return "Closed"


def _inState(state: str) -> StreamCore:
    core = _core()
    for name in _REACH[state]:
        getattr(core.lifecycle, name)()
    return core


class MachineTableTests(SynchronousTestCase):
    """The machine, input by input and state by state, against ``_TABLE``."""

    def test_identifyTellsTheStatesApart(self) -> None:
        for state in _REACH:
            self.assertEqual(_identify(_inState(state)), state)

    def test_everyInputInEveryState(self) -> None:
        self.assertEqual(len(_TABLE), len(_REACH) * 4)
        for (state, name), (answer, live, held, after) in _TABLE.items():
            why = f"{name} in {state}"
            core = _inState(state)
            self.assertEqual(getattr(core.lifecycle, name)(), answer, why)
            self.assertEqual((core.live, core.windowHeld), (live, held), why)
            self.assertEqual(_identify(core), after, why)

    def test_startsRunning(self) -> None:
        core = _core()
        self.assertEqual((core.live, core.windowHeld, core.delivering), (True, False, 0))

    def test_connectionLostIsOwedOnceWhateverArrivesMeanwhile(self) -> None:
        core = _inState("WindowPaused")
        core.lifecycle.end()
        for name in ("windowPaused", "windowResumed", "end", "windowResumed"):
            getattr(core.lifecycle, name)()
        self.assertTrue(core.lifecycle.drained())
        self.assertFalse(core.lifecycle.drained())

    def test_noWayBackFromTheEnd(self) -> None:
        """An ended stream never runs again: a later data frame builds a new stream."""
        core = _inState("Closed")
        for _ in range(3):
            self.assertFalse(core.lifecycle.windowPaused())
            self.assertFalse(core.lifecycle.windowResumed())
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
