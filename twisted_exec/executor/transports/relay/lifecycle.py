"""The lifecycle of one relay stream, as a typed state machine shared by both relay demuxes.

A stream (one ``stream_id`` on a relay websocket, clear 0.131 or Noise 0.171) is created with
its processor (clear: on its first data frame; Noise: once the harness key is validated and
``handshake{msg2}`` sent) and is then:

- *running*;
- *window paused*: its own delivery window (clear relay, ``window.py``) is full because its
  harness stopped reading; the processor is paused until half of it is acknowledged;
- *ending*: reset by the peer, closed by its session, stalled, or the websocket lost: nothing
  more reaches the processor but the one ``connectionLost()``, delivered as soon as no call
  into the processor is on the stack (at once, or when a session that closed its own sink
  from inside ``messageReceived`` returns from it);
- *closed*: ``connectionLost()`` delivered.

Two holds decide whether a processor runs: its window (per stream, here) and the websocket's
write buffer (every stream at once, so one fact of the demux, ``streams.StreamTable``, not
repeated per stream: a pause of the websocket then costs no machine input per stream, which
matters because Automat finds a transition by a linear scan, about 0.25 µs per transition).

The Noise handshake that precedes a Noise stream is not a state here: until it completes there
is no processor, no record layer and no sink, only a pending validation that the Noise demux
keeps in its own table (``noise_stream.PendingHandshake``) under other limits.

The machine is sans-IO and its outputs never call out: every input only moves the state and
answers what the caller must do now (pause or resume the processor, deliver
``connectionLost()``). The demux makes those calls itself, outside the machine, so a processor
that reenters the demux (closes its sink while it is paused) is seen at once, as before, rather
than queued by Automat's reentrancy rule. The per-frame and per-resume paths never enter the
machine: they read :attr:`StreamCore.live` and :attr:`StreamCore.windowHeld`, which only the
machine's transitions write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from twisted_exec.executor.core.interfaces import IJsonRpcProcessor
from twisted_exec.executor.core.lazymachine import LazyMachine

if TYPE_CHECKING:
    from automat import TypeMachine


class StreamLifecycle(Protocol):
    """The events of one stream's life. Each answers whether the caller must act now."""

    def windowPaused(self) -> bool:
        """This stream's window is full (its harness is not reading). ``True``: pause now."""

    def windowResumed(self) -> bool:
        """Half of this stream's window was acknowledged. ``True``: resume now, unless the
        websocket holds every stream."""

    def end(self) -> None:
        """Reset, closed, stalled or the websocket lost: nothing more reaches the processor."""

    def drained(self) -> bool:
        """No call into the processor is on the stack. ``True``: deliver connectionLost now."""


class StreamCore:
    """What every stream has, whichever relay: its id, its processor, its call depth.

    ``delivering`` counts the calls into the processor in progress (so an end inside one of
    them defers ``connectionLost()``). ``live`` (``False`` once the stream ended) and
    ``windowHeld`` (its window pauses it) are written by the lifecycle's transitions only and
    kept as plain attributes because the per-frame and per-resume paths read them.
    """

    __slots__ = ("delivering", "lifecycle", "live", "processor", "streamId", "windowHeld")

    def __init__(self, streamId: str, processor: IJsonRpcProcessor) -> None:
        self.streamId = streamId
        self.processor = processor
        self.delivering = 0
        self.live = True
        self.windowHeld = False
        self.lifecycle: StreamLifecycle = StreamMachine(self)


def _buildMachine() -> TypeMachine[StreamLifecycle, StreamCore]:
    from automat import TypeMachineBuilder  # here: importing Automat costs ~10 ms

    machine = TypeMachineBuilder(StreamLifecycle, StreamCore)
    running = machine.state("Running")
    windowPaused = machine.state("WindowPaused")
    ending = machine.state("Ending")
    closed = machine.state("Closed")
    I = StreamLifecycle  # noqa: E741 - the table below reads as one line per transition

    @running.upon(I.windowPaused).to(windowPaused)
    def _hold(lifecycle: StreamLifecycle, core: StreamCore) -> bool:
        core.windowHeld = True
        return True

    @windowPaused.upon(I.windowResumed).to(running)
    def _release(lifecycle: StreamLifecycle, core: StreamCore) -> bool:
        core.windowHeld = False
        return True

    # A pause of what is paused, a resume of what runs: nothing to do (the window does not
    # send these, but a machine that answers every input in every state cannot be wedged).
    running.upon(I.windowResumed).loop().returns(False)
    windowPaused.upon(I.windowPaused).loop().returns(False)

    @running.upon(I.end).to(ending)
    @windowPaused.upon(I.end).to(ending)
    def _end(lifecycle: StreamLifecycle, core: StreamCore) -> None:
        core.live = False
        core.windowHeld = False

    # While live, a call returning owes nothing.
    running.upon(I.drained).loop().returns(False)
    windowPaused.upon(I.drained).loop().returns(False)

    ending.upon(I.drained).to(closed).returns(True)
    # Ended: nothing more for the processor, whatever still arrives (a late window callback),
    # a second end is the same end, and connectionLost() is delivered once.
    for done in (ending, closed):
        done.upon(I.windowPaused).loop().returns(False)
        done.upon(I.windowResumed).loop().returns(False)
        done.upon(I.end).loop().returns(None)
    closed.upon(I.drained).loop().returns(False)
    return machine.build()


#: Builds a stream's lifecycle in ``Running`` over its :class:`StreamCore`.
StreamMachine: LazyMachine[StreamCore, StreamLifecycle] = LazyMachine("relay stream", _buildMachine)
