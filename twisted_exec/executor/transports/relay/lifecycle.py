"""The lifecycle of one relay stream, as a typed state machine shared by both relay demuxes.

A stream (one ``stream_id`` on a relay websocket, clear 0.131 or Noise 0.171) is created with
its processor (clear: on its first data frame; Noise: once the harness key is validated and
``handshake{msg2}`` sent) and then:

- is *paused* by the websocket's backpressure (every stream at once), by its own delivery
  window (clear relay, ``window.py``: its harness stopped reading), or by both; its processor
  runs only while neither holds it back, so it is paused on the first hold and resumed when the
  last one lets go;
- *ends* (reset by the peer, closed by its session, stalled, websocket lost), after which
  nothing reaches its processor but the one ``connectionLost()``. A stream that ends while a
  call into its processor is on the stack (a session that closes its own sink from inside
  ``messageReceived``) owes that ``connectionLost()`` until the call returns: it is *ending*,
  then *closed* once drained.

The Noise handshake that precedes a Noise stream is not a state here: until it completes there
is no processor, no record layer and no sink, only a pending validation that the Noise demux
keeps in its own table (``noise_stream.PendingHandshake``) under other limits.

The machine is sans-IO and its outputs never call out: every input only moves the state and
answers what the caller must do now (pause or resume the processor, deliver
``connectionLost()``). The demux makes those calls itself, outside the machine, so a processor
that reenters the demux (pauses the websocket while it resumes, closes its sink while it is
paused) is seen at once, as before, rather than queued by Automat's reentrancy rule. The
per-frame path never enters the machine: it reads :attr:`StreamCore.live`, which only the
machine's ``end`` writes.
"""

from __future__ import annotations

from typing import Protocol

from automat import TypeMachine, TypeMachineBuilder

from twisted_exec.executor.core.interfaces import IJsonRpcProcessor


class StreamLifecycle(Protocol):
    """The events of one stream's life. Each answers whether the caller must act now."""

    def socketPaused(self) -> bool:
        """The websocket's write buffer is full. ``True``: pause the processor now."""

    def socketResumed(self) -> bool:
        """The websocket's write buffer drained. ``True``: resume the processor now."""

    def windowPaused(self) -> bool:
        """This stream's window is full (its harness is not reading). ``True``: pause now."""

    def windowResumed(self) -> bool:
        """Half of this stream's window was acknowledged. ``True``: resume now."""

    def end(self) -> None:
        """Reset, closed, stalled or the websocket lost: nothing more reaches the processor."""

    def drained(self) -> bool:
        """No call into the processor is on the stack. ``True``: deliver connectionLost now."""


class StreamCore:
    """What every stream has, whichever relay: its id, its processor, its call depth.

    ``delivering`` counts the calls into the processor in progress (so an end inside one of
    them defers ``connectionLost()``); ``live`` is ``False`` once the stream ended, kept as a
    plain attribute because the per-frame path reads it.
    """

    __slots__ = ("delivering", "lifecycle", "live", "processor", "streamId")

    def __init__(self, streamId: str, processor: IJsonRpcProcessor) -> None:
        self.streamId = streamId
        self.processor = processor
        self.delivering = 0
        self.live = True
        self.lifecycle: StreamLifecycle = StreamMachine(self)


def _buildMachine() -> TypeMachine[StreamLifecycle, StreamCore]:
    machine = TypeMachineBuilder(StreamLifecycle, StreamCore)
    running = machine.state("Running")
    socketPaused = machine.state("SocketPaused")
    windowPaused = machine.state("WindowPaused")
    bothPaused = machine.state("BothPaused")
    ending = machine.state("Ending")
    closed = machine.state("Closed")
    I = StreamLifecycle  # noqa: E741 - the table below reads as one line per transition

    # Automat finds a transition by scanning them in the order they are declared here, so the
    # websocket's pause and resume of a running stream (the common ones, once per stream each
    # time the write buffer fills and drains) come first. A hold that changes nothing (a second
    # pause, a resume of what is not paused) is a loop that asks for no call: the processor
    # sees one pause and one resume per held period.
    running.upon(I.socketPaused).to(socketPaused).returns(True)
    socketPaused.upon(I.socketResumed).to(running).returns(True)
    running.upon(I.socketResumed).loop().returns(False)
    socketPaused.upon(I.socketPaused).loop().returns(False)

    running.upon(I.windowPaused).to(windowPaused).returns(True)
    windowPaused.upon(I.windowResumed).to(running).returns(True)
    running.upon(I.windowResumed).loop().returns(False)
    windowPaused.upon(I.windowPaused).loop().returns(False)

    socketPaused.upon(I.windowPaused).to(bothPaused).returns(False)
    socketPaused.upon(I.windowResumed).loop().returns(False)
    windowPaused.upon(I.socketPaused).to(bothPaused).returns(False)
    windowPaused.upon(I.socketResumed).loop().returns(False)

    bothPaused.upon(I.socketResumed).to(windowPaused).returns(False)
    bothPaused.upon(I.windowResumed).to(socketPaused).returns(False)
    bothPaused.upon(I.socketPaused).loop().returns(False)
    bothPaused.upon(I.windowPaused).loop().returns(False)

    for live in (running, socketPaused, windowPaused, bothPaused):

        @live.upon(I.end).to(ending)
        def _end(lifecycle: StreamLifecycle, core: StreamCore) -> None:
            core.live = False

        live.upon(I.drained).loop().returns(False)

    ending.upon(I.drained).to(closed).returns(True)
    # Ended: nothing more for the processor, whatever still arrives (a late window callback,
    # the websocket's pause), and a second end is the same end.
    for done in (ending, closed):
        for ignored in (I.socketPaused, I.socketResumed, I.windowPaused, I.windowResumed):
            done.upon(ignored).loop().returns(False)
        done.upon(I.end).loop().returns(None)
    closed.upon(I.drained).loop().returns(False)
    return machine.build()


#: Builds a stream's lifecycle in ``Running`` over its :class:`StreamCore`.
StreamMachine = _buildMachine()
