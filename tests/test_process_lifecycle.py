"""The process lifecycle machine driven directly: no child, no reactor, a :class:`Clock`."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.support.http_exchange import RecordingProducer
from twisted_exec.executor.core.output_buffer import Chunk, Event, Exited, OutputBuffer
from twisted_exec.executor.resources.process_entry import _Entry, exitCodeOf
from twisted_exec.executor.resources.process_lifecycle import (
    ProcessCore,
    ProcessEvents,
    ProcessMachine,
)

GRACE = 0.1


@dataclass
class _Owner:
    reactor: Clock = field(default_factory=Clock)
    exitGrace: float = GRACE
    paused: bool = False
    closedCount: int = 0
    reapedCount: int = 0

    def _closedOne(self) -> None:
        self.closedCount += 1

    def _reapedOne(self) -> None:
        self.reapedCount += 1


class _Transport(RecordingProducer):
    def __init__(self) -> None:
        super().__init__()
        self.pipes: dict[int, Any] = {}

    def closeStdin(self) -> None:
        self.calls.append("closeStdin")


@dataclass
class _Core(ProcessCore):
    """Records the signals it would send to the process group."""

    signals: list[int] = field(default_factory=list)

    def killGroup(self, signum: int) -> None:
        self.signals.append(signum)


class _Harness:
    def __init__(self, *, tty: bool = False, pipeStdin: bool = True) -> None:
        self.owner = _Owner()
        self.clock = self.owner.reactor
        self.events: list[Event] = []
        self.retired = 0
        self.buffer = OutputBuffer(1 << 20, self.events.append)
        self.transport = _Transport()
        self.core = _Core(self.owner, self.buffer, tty, pipeStdin, self._retire)
        self.core.transport = self.transport
        self.machine: ProcessEvents = ProcessMachine(self.core)

    def _retire(self) -> None:
        self.retired += 1

    def output(self, stream: str, data: bytes) -> None:
        self.buffer.appendOutput(stream, data)

    def reap(self, code: int = 0) -> None:
        self.core.exitCode = code
        self.machine.reaped()

    def kinds(self) -> list[str]:
        return [type(e).__name__ for e in self.events]


def _toState(name: str) -> _Harness:
    """A fresh machine driven into the state ``name``."""
    h = _Harness()
    if name == "outputClosed":
        h.machine.outputClosed()
    elif name != "running":
        h.reap()
        if name == "drainHeld":
            h.owner.paused = True
        if name in ("drainHeld", "exited"):
            h.clock.advance(GRACE)
        if name in ("closed", "tombstoned"):
            h.machine.outputClosed()
        if name == "tombstoned":
            h.machine.forget()
    assert h.machine.stateName() == name, (h.machine.stateName(), name)
    return h


STATES = ["running", "outputClosed", "draining", "drainHeld", "exited", "closed", "tombstoned"]


class ExitOrderTests(SynchronousTestCase):
    def test_outputClosesWithinTheGrace(self) -> None:
        h = _Harness()
        h.output("stdout", b"a")
        h.reap(3)
        self.assertEqual(h.machine.stateName(), "draining")
        self.assertEqual(len(h.clock.getDelayedCalls()), 1)
        h.output("stderr", b"b")
        h.machine.outputClosed()
        self.assertEqual(h.machine.stateName(), "closed")
        self.assertEqual(h.kinds(), ["Chunk", "Chunk", "Exited", "Closed"])
        exited = h.events[2]
        assert isinstance(exited, Exited)
        self.assertEqual(exited.exitCode, 3)
        self.assertEqual(h.clock.getDelayedCalls(), [], "the grace timer was cancelled")
        self.assertEqual((h.retired, h.owner.closedCount, h.owner.reapedCount), (1, 1, 1))

    def test_outputClosedBeforeTheReap(self) -> None:
        h = _Harness()
        h.machine.outputClosed()
        self.assertEqual(h.machine.stateName(), "outputClosed")
        self.assertEqual(h.events, [])
        h.reap(0)
        self.assertEqual(h.machine.stateName(), "closed")
        self.assertEqual(h.kinds(), ["Exited", "Closed"])
        self.assertEqual(h.clock.getDelayedCalls(), [], "no grace when nothing is open")

    def test_graceRunsOut(self) -> None:
        """A grandchild holds the output: ``exited`` after the grace, ``closed`` at its EOF."""
        h = _Harness()
        h.reap(1)
        h.clock.advance(GRACE - 0.01)
        self.assertEqual(h.events, [])
        h.clock.advance(0.01)
        self.assertEqual(h.machine.stateName(), "exited")
        self.assertEqual(h.kinds(), ["Exited"])
        h.output("stdout", b"late")
        h.machine.outputClosed()
        self.assertEqual(h.kinds(), ["Exited", "Chunk", "Closed"])
        self.assertEqual(h.retired, 1)

    def test_graceWhilePausedWaitsForTheResume(self) -> None:
        h = _Harness()
        h.reap(0)
        h.owner.paused = True
        h.clock.advance(GRACE)
        self.assertEqual(h.machine.stateName(), "drainHeld")
        self.assertEqual(h.events, [])
        h.clock.advance(10)
        self.assertEqual(h.events, [], "nothing is sent while paused")
        h.owner.paused = False
        h.machine.resume()
        self.assertEqual(h.machine.stateName(), "draining")
        self.assertEqual(h.transport.calls[-1], "resume")
        h.clock.advance(GRACE)
        self.assertEqual(h.kinds(), ["Exited"])

    def test_drainPrecedesExited(self) -> None:
        """Bytes pending in the pipe when the grace runs out are read before ``exited``."""
        readFD, writeFD = os.pipe()
        self.addCleanup(os.close, readFD)
        self.addCleanup(os.close, writeFD)
        h = _Harness()

        class Reader:
            def fileno(self) -> int:
                return readFD

            def doRead(self) -> None:
                h.output("stdout", os.read(readFD, 8192))

        h.transport.pipes[1] = Reader()
        h.reap(0)
        os.write(writeFD, b"pending")
        h.clock.advance(GRACE)
        self.assertEqual(h.kinds(), ["Chunk", "Exited"])
        chunk = h.events[0]
        assert isinstance(chunk, Chunk)
        self.assertEqual(chunk.data, b"pending")

    def test_outputClosedByTheDrain(self) -> None:
        """The drain reads the EOF (the timer's callback is still running): ``closed`` follows
        at once and the ``graceExpired`` the callback then feeds is ignored."""
        h = _Harness()
        h.reap(0)
        h.machine.outputClosed()
        h.machine.graceExpired()
        self.assertEqual(h.kinds(), ["Exited", "Closed"])
        self.assertEqual(h.machine.stateName(), "closed")

    def test_reapClosesAPipedStdin(self) -> None:
        h = _Harness(pipeStdin=True)
        h.reap(0)
        self.assertIn("closeStdin", h.transport.calls)
        for tty, pipeStdin in [(True, True), (False, False)]:
            other = _Harness(tty=tty, pipeStdin=pipeStdin)
            other.reap(0)
            self.assertNotIn("closeStdin", other.transport.calls)


class SignalTests(SynchronousTestCase):
    def test_terminateAndInterruptOnlyWhileRunning(self) -> None:
        for name in STATES:
            h = _toState(name)
            h.machine.interrupt()
            h.machine.terminate()
            alive = name in ("running", "outputClosed")
            self.assertEqual(h.core.signals, [signal.SIGINT, signal.SIGKILL] if alive else [], name)
            self.assertEqual(h.core.terminated, alive, name)
            self.assertEqual(h.machine.stateName(), name)

    def test_killUnlessClosed(self) -> None:
        """Session teardown kills a reaped child's group too (grandchildren hold its output)."""
        for name in STATES:
            h = _toState(name)
            h.machine.kill()
            killed = name not in ("closed", "tombstoned")
            self.assertEqual(h.core.signals, [signal.SIGKILL] if killed else [], name)
            self.assertEqual(h.core.terminated, killed, name)


class IgnoredInputTests(SynchronousTestCase):
    """Every input is accepted in every state: a late event never raises into the reactor."""

    def test_everyInputInEveryState(self) -> None:
        inputs = [(name, ()) for name in ["outputClosed", "graceExpired", "graceHeld", "pause"]]
        inputs += [(name, ()) for name in ["resume", "interrupt", "terminate", "kill", "forget"]]
        for name in STATES:
            for method, args in inputs:
                h = _toState(name)
                getattr(h.machine, method)(*args)  # must not raise
                self.assertIn(h.machine.stateName(), STATES)

    def test_reapedTwiceIsIgnored(self) -> None:
        for name in ["draining", "drainHeld", "exited", "closed", "tombstoned"]:
            h = _toState(name)
            before = (h.machine.stateName(), list(h.events), h.owner.reapedCount)
            h.reap(9)
            self.assertEqual((h.machine.stateName(), h.events, h.owner.reapedCount), before)

    def test_closedIgnoresLateOutput(self) -> None:
        """Through the entry: the flag code raised (``output after the buffer was closed``)."""
        owner = _Owner()
        sent: list[str] = []
        retired: list[object] = []

        class Table:
            retainBytes = 1 << 20
            reactor = owner.reactor
            exitGrace = GRACE
            paused = False
            _closedOne = owner._closedOne
            _reapedOne = owner._reapedOne

            def notify(self, method: str, params: Any) -> None:
                sent.append(method)

            def _retire(self, entry: object) -> None:
                retired.append(entry)

        entry = _Entry(Table(), "p", False, False)
        entry.dataReceived(1, b"early")
        entry.pipeClosed(1)
        entry.pipeClosed(2)
        entry.reaped(Failure(ProcessDone(0)))
        self.assertEqual(entry.state, "closed")
        entry.dataReceived(1, b"late")
        self.assertEqual(sent, ["process/output", "process/exited", "process/closed"])
        self.assertEqual(retired, [entry])

    def test_pauseAndResumeOnceClosed(self) -> None:
        h = _toState("closed")
        h.transport.calls.clear()
        h.machine.pause()
        h.machine.resume()
        self.assertEqual(h.transport.calls, [])

    def test_forgetOnlyOnceClosed(self) -> None:
        for name in ["running", "outputClosed", "draining", "drainHeld", "exited"]:
            h = _toState(name)
            h.machine.forget()
            self.assertEqual(h.machine.stateName(), name)
        h = _toState("closed")
        h.machine.forget()
        self.assertEqual(h.machine.stateName(), "tombstoned")

    def test_outputClosedTwice(self) -> None:
        """Each pipe's close and then ``processEnded`` both say the output is closed."""
        h = _toState("closed")
        h.machine.outputClosed()
        self.assertEqual(h.kinds(), ["Exited", "Closed"])
        self.assertEqual(h.retired, 1)


class ExitCodeTests(SynchronousTestCase):
    def test_dialects(self) -> None:
        done = Failure(ProcessDone(0))
        killed = Failure(ProcessTerminated(None, signal.SIGKILL, None))
        failed = Failure(ProcessTerminated(7, None, None))
        self.assertEqual(exitCodeOf(done, tty=False, v171=False), 0)
        self.assertEqual(exitCodeOf(failed, tty=True, v171=True), 7)
        self.assertEqual(exitCodeOf(killed, tty=False, v171=False), -1)
        self.assertEqual(exitCodeOf(killed, tty=True, v171=False), 1)
        self.assertEqual(exitCodeOf(killed, tty=False, v171=True), 128 + signal.SIGKILL)
        self.assertEqual(exitCodeOf(killed, tty=True, v171=True), 1)
