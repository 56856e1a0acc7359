"""The lifecycle of one started process, as a typed state machine (sans-IO).

Why a machine
-------------
A process's end is two independent events, the child being reaped and its output closing (a
background grandchild may hold the pipes open long after), plus an exit grace timer that may run
out while the session's transport is paused. Kept as flags (reaped, open outputs, grace pending,
grace due, exited, closed), several combinations were possible that mean nothing; here each
meaningful combination is one state, and every event is an input of :class:`ProcessEvents`:

==============  ================================================================================
running         the child runs and its output is open (the first state; a child that is still
                being spawned is running too, with no transport yet)
outputClosed    every output closed, the child not reaped yet
draining        reaped, output still open: wait at most ``exitGrace`` for it (the state's data
                is the grace timer)
drainHeld       the grace ran out while the session was paused: drain once resumed
exited          ``process/exited`` sent; the output is still held open (by a grandchild)
closed          ``exited`` and ``closed`` sent, the transport dropped (retained for reads)
tombstoned      the table replaced the entry by a ``_Tombstone``; nothing happens any more
==============  ================================================================================

Every input is accepted in every state: one that cannot matter there is ignored, as the flag
code ignored it (e.g. ``terminate`` after the reap, ``resume`` once closed), so nothing the
reactor delivers late raises into it.

Output is not an input: it changes no state and is appended in every state but ``closed`` (the
buffer knows that one), and it is the hot path of streaming, where a transition cost more than
the rest of the chunk's handling (see :meth:`~.process_entry._Entry.dataReceived`).

Re-entrancy: Automat queues an input that arrives while a transition runs and delivers it after.
So the grace timer drains the pipes *before* it feeds :meth:`ProcessEvents.graceExpired` (output
read by the drain must precede ``exited``, not be queued behind it); see :func:`_graceTimer`.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from twisted_exec.executor.core.lazymachine import LazyMachine
from twisted_exec.executor.core.output_buffer import OutputBuffer
from twisted_exec.executor.resources.process_spawn import _pendingBytes

log = Logger()

#: At most this many reads of one pipe (or the pty) when the exit grace runs out.
DRAIN_READS = 64


class LifecycleOwner(Protocol):
    """What a process's lifecycle needs of its table."""

    exitGrace: float
    paused: bool
    reactor: Any

    def _closedOne(self) -> None: ...

    def _reapedOne(self) -> None: ...


class ProcessEvents(Protocol):
    """The inputs of the machine: what happens to a process, from its transport or the table."""

    def outputClosed(self) -> None:
        """Every output of the child is closed (all its pipes, or the pty)."""

    def reaped(self) -> None:
        """The child was reaped; :attr:`ProcessCore.exitCode` holds its exit code."""

    def graceExpired(self) -> None:
        """The exit grace ran out and the pipes were drained: send ``exited``."""

    def graceHeld(self) -> None:
        """The exit grace ran out while the session is paused: drain once resumed."""

    def pause(self) -> None:
        """The session's transport is full: stop reading the child's output."""

    def resume(self) -> None:
        """Read the child's output again."""

    def interrupt(self) -> None:
        """``process/signal interrupt``: SIGINT to the process group while the child runs."""

    def terminate(self) -> None:
        """``process/terminate``: SIGKILL to the process group while the child runs."""

    def kill(self) -> None:
        """The session ends: SIGKILL to the group unless the output is closed already."""

    def forget(self) -> None:
        """The table keeps only a tombstone of this (closed) process."""

    def stateName(self) -> str:
        """The current state's name (tests and debugging; not for use inside a transition)."""


@dataclass
class ProcessCore:
    """The data shared by every state: what was learned of the process and whom to tell."""

    owner: LifecycleOwner
    buffer: OutputBuffer
    tty: bool
    pipeStdin: bool
    #: Called once the process closed, after ``closed`` was sent (the table retires it).
    retire: Callable[[], None]
    transport: Any = None
    pgid: int | None = None
    #: Set just before :meth:`ProcessEvents.reaped`; ``None`` while the child runs.
    exitCode: int | None = None
    #: Killed by ``process/terminate`` or the session's end (later writes fail, as probed).
    terminated: bool = False
    drainReads: int = field(default=DRAIN_READS)

    def killGroup(self, signum: int) -> None:
        if self.pgid is None:
            return
        try:
            os.killpg(self.pgid, signum)
        except ProcessLookupError:
            pass
        except OSError as err:
            log.warn("killpg({pgid}) failed: {err}", pgid=self.pgid, err=err)

    def pauseTransport(self) -> None:
        if self.transport is not None:
            self.transport.pauseProducing()

    def resumeTransport(self) -> None:
        if self.transport is not None:
            self.transport.resumeProducing()

    def drain(self) -> None:
        """Read what is pending in the pipes *now* (bounded: a grandchild may keep writing).

        Keeps the promise that everything the child wrote before it exited precedes
        ``exited``, even when the reactor did not get to the pipes within the grace.
        """
        for reader in self._readers():
            for _ in range(self.drainReads):
                try:
                    pending = _pendingBytes(reader.fileno())
                except OSError:
                    break
                if pending <= 0 or reader.doRead() is not None:
                    break

    def _readers(self) -> list[Any]:
        transport = self.transport
        if transport is None or not getattr(transport, "connected", True):
            return []
        if self.tty:
            return [transport]
        return [transport.pipes[fd] for fd in (1, 2) if fd in transport.pipes]


def _graceTimer(machine: ProcessEvents, core: ProcessCore) -> None:
    """The grace timer fired: drain first (outside any transition, see the module docstring)."""
    if core.owner.paused:
        # Reading now would bypass the pause; the pipes are read again on resume.
        machine.graceHeld()
        return
    core.drain()
    machine.graceExpired()


def _startGrace(machine: ProcessEvents, core: ProcessCore) -> IDelayedCall:
    delayed: IDelayedCall = core.owner.reactor.callLater(
        core.owner.exitGrace, _graceTimer, machine, core
    )
    return delayed


def ignore(m: ProcessEvents, core: ProcessCore, *args: object) -> None:
    """An event that cannot matter in the state it arrives in (the flag code ignored it too)."""


def _buildMachine() -> Callable[[ProcessCore], ProcessEvents]:
    from automat import TypeMachineBuilder  # here: importing Automat costs ~10 ms

    builder = TypeMachineBuilder(ProcessEvents, ProcessCore)
    running = builder.state("running")
    outputClosed = builder.state("outputClosed")
    draining = builder.state("draining", _startGrace)
    drainHeld = builder.state("drainHeld")
    exited = builder.state("exited")
    closed = builder.state("closed")
    tombstoned = builder.state("tombstoned")
    E = ProcessEvents

    def afterReap(core: ProcessCore) -> None:
        core.owner._reapedOne()
        if not core.tty and core.pipeStdin:
            core.transport.closeStdin()

    def finish(core: ProcessCore) -> None:
        assert core.exitCode is not None
        core.owner._closedOne()
        core.buffer.markFinished(core.exitCode)
        core.retire()

    def pause(m: ProcessEvents, core: ProcessCore) -> None:
        core.pauseTransport()

    def resume(m: ProcessEvents, core: ProcessCore) -> None:
        core.resumeTransport()

    def interrupt(m: ProcessEvents, core: ProcessCore) -> None:
        core.killGroup(signal.SIGINT)

    def kill(m: ProcessEvents, core: ProcessCore) -> None:
        core.terminated = True
        core.killGroup(signal.SIGKILL)

    # -- the child runs ---------------------------------------------------------------------
    for alive in (running, outputClosed):
        alive.upon(E.interrupt).loop()(interrupt)
        alive.upon(E.terminate).loop()(kill)
        alive.upon(E.kill).loop()(kill)
    running.upon(E.outputClosed).to(outputClosed)(ignore)

    @running.upon(E.reaped).to(draining)
    def reapedWithOutputOpen(m: ProcessEvents, core: ProcessCore) -> None:
        afterReap(core)

    @outputClosed.upon(E.reaped).to(closed)
    def reapedAfterOutput(m: ProcessEvents, core: ProcessCore) -> None:
        afterReap(core)
        finish(core)

    # -- reaped, waiting for the output -------------------------------------------------------
    @draining.upon(E.outputClosed).to(closed)
    def closedWithinGrace(m: ProcessEvents, core: ProcessCore, grace: IDelayedCall) -> None:
        if grace.active():
            grace.cancel()
        finish(core)

    @draining.upon(E.graceExpired).to(exited)
    def sendExited(m: ProcessEvents, core: ProcessCore, grace: IDelayedCall) -> None:
        assert core.exitCode is not None
        core.buffer.markExited(core.exitCode)

    draining.upon(E.graceHeld).to(drainHeld)(ignore)
    drainHeld.upon(E.resume).to(draining)(resume)

    @drainHeld.upon(E.outputClosed).to(closed)
    @exited.upon(E.outputClosed).to(closed)
    def closedAfterGrace(m: ProcessEvents, core: ProcessCore) -> None:
        finish(core)

    # draining's data (the grace timer) matters only to the transitions above: nodata=True
    draining.upon(E.kill, nodata=True).loop()(kill)
    draining.upon(E.pause, nodata=True).loop()(pause)
    draining.upon(E.resume, nodata=True).loop()(resume)
    for late in (E.interrupt, E.terminate, E.reaped, E.forget):
        draining.upon(late, nodata=True).loop()(ignore)
    for reaped in (drainHeld, exited):
        reaped.upon(E.kill).loop()(kill)
        for late in (E.interrupt, E.terminate, E.reaped):
            reaped.upon(late).loop()(ignore)

    # -- everything else ----------------------------------------------------------------------
    for notClosed in (running, outputClosed, drainHeld, exited):
        notClosed.upon(E.pause).loop()(pause)
        notClosed.upon(E.forget).loop()(ignore)
    for resumable in (running, outputClosed, exited):
        resumable.upon(E.resume).loop()(resume)
    for quiet in (running, outputClosed, drainHeld, exited):
        quiet.upon(E.graceExpired).loop()(ignore)
        quiet.upon(E.graceHeld).loop()(ignore)
    outputClosed.upon(E.outputClosed).loop()(ignore)
    for gone in (closed, tombstoned):
        for event in (
            E.outputClosed,
            E.reaped,
            E.graceExpired,
            E.graceHeld,
            E.pause,
            E.resume,
            E.interrupt,
            E.terminate,
            E.kill,
        ):
            gone.upon(event).loop()(ignore)
    closed.upon(E.forget).to(tombstoned)(ignore)
    tombstoned.upon(E.forget).loop()(ignore)

    for state in (running, outputClosed, drainHeld, exited, closed, tombstoned):
        state.upon(E.stateName).loop().returns(state.name)
    draining.upon(E.stateName, nodata=True).loop().returns(draining.name)
    return builder.build()


#: Builds the machine of one process around its :class:`ProcessCore`.
ProcessMachine: LazyMachine[ProcessCore, ProcessEvents] = LazyMachine("process", _buildMachine)

__all__ = ["DRAIN_READS", "LifecycleOwner", "ProcessCore", "ProcessEvents", "ProcessMachine"]
