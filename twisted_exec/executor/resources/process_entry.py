"""One process of a session: its output log, notifications, exit grace and process group.

Notification order (better than the reference, which races)
-----------------------------------------------------------
All events of a process go through one
:class:`~twisted_exec.executor.core.output_buffer.OutputBuffer`, so
notifications leave strictly in seq order. When the child is reaped we wait for its output to
close (everything it wrote is read) but at most ``exitGrace`` seconds (a background grandchild may
hold the pipe open) before ``exited``; ``closed`` follows once the output is closed.

Flow control
------------
The process transports are push producers: :meth:`ProcessTable.pauseAll` stops reading every
pipe (and pty) of the session, so a child that outruns a slow websocket blocks on its full pipe
instead of filling our memory; :meth:`ProcessTable.resumeAll` reads on. Processes started while
paused start paused. The exit grace drain (which reads pipes directly) waits for the resume, so
``exited`` still follows all the output. :meth:`ProcessTable.killAll` resumes first: a pipe that
is not read never reports EOF, and the process would never end (nor its fds close).
See ``docs/flow-control.md``.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from twisted_exec.executor.core.output_buffer import Chunk, Closed, Event, Exited, OutputBuffer
from twisted_exec.executor.resources.process_lifecycle import (
    LifecycleOwner,
    ProcessCore,
    ProcessMachine,
)
from twisted_exec.wire.base64fast import encodeBase64
from twisted_exec.wire.jsonrpc import EncodedParams


class EntryOwner(LifecycleOwner, Protocol):
    """What an entry needs of its :class:`~.processes.ProcessTable` (no import cycle)."""

    retainBytes: int

    def notify(self, method: str, params: Any) -> None: ...

    def _retire(self, entry: _Entry) -> None: ...


class _Tombstone(NamedTuple):
    """What is left of an old closed process: enough to answer read, write and start."""

    nextSeq: int
    exitCode: int
    tty: bool
    pipeStdin: bool
    terminated: bool


class _Protocol(ProcessProtocol):
    def __init__(self, entry: _Entry) -> None:
        self.entry = entry

    def connectionMade(self) -> None:
        # Runs inside the transport's constructor, before a child that is already gone can be
        # reaped (Twisted tries waitpid at once), so the entry always knows its transport.
        transport = self.transport
        self.entry.transport = transport
        self.entry.pgid = transport.pid if transport is not None else None

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        self.entry.dataReceived(childFD, data)

    def childConnectionLost(self, childFD: int) -> None:
        self.entry.pipeClosed(childFD)

    def processExited(self, reason: Failure) -> None:
        self.entry.reaped(reason)

    def processEnded(self, reason: Failure) -> None:
        self.entry.ended()


class _Entry:
    """One started process: a thin class over its :class:`.process_lifecycle.ProcessMachine`.

    The transport's callbacks (through :class:`_Protocol`) and the table's requests become the
    machine's inputs; what the table reads of a process (transport, exit code, ...) lives in the
    machine's :class:`~.process_lifecycle.ProcessCore`. Kept here: the notifications' framing
    and what only ``process/write`` and ``process/closeStdin`` use.
    """

    def __init__(
        self,
        table: EntryOwner,
        processId: str,
        tty: bool,
        pipeStdin: bool,
    ) -> None:
        self.table = table
        self.processId = processId
        self.tty = tty
        self.pipeStdin = pipeStdin
        self.buffer = OutputBuffer(table.retainBytes, self._emit)
        self.core = ProcessCore(table, self.buffer, tty, pipeStdin, self._retire)
        self._machine = ProcessMachine(self.core)
        #: process/closeStdin ended the stdin (later writes answer stdinClosed).
        self.stdinEnded = False
        #: Started by a 0.171 request: 128 + signal for a signal's death, ``sandboxDenied``.
        self.v171 = False
        #: writeIds already handled (0.171 de-duplicates a repeated one), newest last.
        self.writeIds: dict[str, None] = {}
        self._openOutputs = {1, 2}
        #: ``processEnded`` came: reaped and every pipe closed, nothing of it left in the reactor.
        self.hasEnded = False
        self._endWaiters: list[Deferred[None]] = []
        # stream -> the JSON around seq and chunk in process/output params (see _outputParams)
        self._outputFraming: dict[str, tuple[bytes, bytes]] = {}

    # -- what the table reads ---------------------------------------------------------------

    @property
    def transport(self) -> Any:
        return self.core.transport

    @transport.setter
    def transport(self, transport: Any) -> None:
        self.core.transport = transport

    @property
    def pgid(self) -> int | None:
        return self.core.pgid

    @pgid.setter
    def pgid(self, pgid: int | None) -> None:
        self.core.pgid = pgid

    @property
    def isReaped(self) -> bool:
        return self.core.exitCode is not None

    @property
    def exitCode(self) -> int:
        return 0 if self.core.exitCode is None else self.core.exitCode

    @property
    def terminated(self) -> bool:
        return self.core.terminated

    @property
    def state(self) -> str:
        """The lifecycle state's name (tests, debugging)."""
        return self._machine.stateName()

    # the buffer's observer: one notification per event, in seq order
    def _emit(self, event: Event) -> None:
        notify = self.table.notify
        if isinstance(event, Chunk):
            notify("process/output", self._outputParams(event))
        elif isinstance(event, Exited):
            exited: dict[str, Any] = {
                "processId": self.processId,
                "seq": event.seq,
                "exitCode": event.exitCode,
            }
            if self.v171:
                exited["sandboxDenied"] = False
            notify("process/exited", exited)
        elif isinstance(event, Closed):
            notify("process/closed", {"processId": self.processId, "seq": event.seq})

    def _outputParams(self, event: Chunk) -> EncodedParams:
        """``process/output`` params with their JSON built directly (the hot path of streaming).

        Byte for byte what ``json.dumps(params, separators=(",", ":"), ensure_ascii=False)``
        gives: the processId and stream are encoded by ``json`` (once per stream), the seq is an
        int and base64 never needs escaping.
        """
        framing = self._outputFraming.get(event.stream)
        if framing is None:
            pid = json.dumps(self.processId, ensure_ascii=False).encode("utf-8")
            stream = json.dumps(event.stream, ensure_ascii=False).encode("utf-8")
            framing = (b'{"processId":' + pid + b',"seq":', b',"stream":' + stream + b',"chunk":"')
            self._outputFraming[event.stream] = framing
        chunk = encodeBase64(event.data)
        raw = b"".join((framing[0], b"%d" % event.seq, framing[1], chunk, b'"}'))
        value = {
            "processId": self.processId,
            "seq": event.seq,
            "stream": event.stream,
            "chunk": chunk.decode("ascii"),
        }
        return EncodedParams(value, raw)

    # -- the transport's events ---------------------------------------------------------------

    def dataReceived(self, childFD: int, data: bytes) -> None:
        """Output goes straight to the buffer, not through the machine: it changes no state
        (see :mod:`.process_lifecycle`), and a transition per chunk cost ~8 µs, more than the
        rest of handling an 8 KiB chunk."""
        if self.buffer.closed:
            return  # nothing can follow ``closed`` (the flag code raised into the reactor)
        stream = "pty" if self.tty else ("stdout" if childFD == 1 else "stderr")
        self.buffer.appendOutput(stream, data)

    def pipeClosed(self, childFD: int) -> None:
        if childFD in self._openOutputs:
            self._openOutputs.discard(childFD)
            if not self._openOutputs:
                self._machine.outputClosed()

    def ended(self) -> None:
        # Reaped and every pipe (or the pty) closed.
        self._openOutputs.clear()
        self._machine.outputClosed()
        self._fireEnded()

    def neverStarted(self) -> None:
        """The spawn failed or was abandoned: no child of ours, nothing to wait for."""
        self._fireEnded()

    def _fireEnded(self) -> None:
        self.hasEnded = True
        waiters, self._endWaiters = self._endWaiters, []
        for waiter in waiters:
            waiter.callback(None)

    def whenEnded(self) -> Deferred[None]:
        """Fires once ``processEnded`` came (at once if it did): the executor's shutdown waits
        for it, so that no reader or process transport outlives the service.

        Not a machine state: ``closed`` can be reached before the transport's last pipe (stdin)
        is gone, and what shutdown must wait for is the transport leaving the reactor.
        """
        if self.hasEnded:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._endWaiters.append(waiter)
        return waiter

    def reaped(self, reason: Failure) -> None:
        self.core.exitCode = exitCodeOf(reason, tty=self.tty, v171=self.v171)
        self._machine.reaped()

    # -- the table's requests -----------------------------------------------------------------

    def pause(self) -> None:
        self._machine.pause()

    def resume(self) -> None:
        self._machine.resume()

    def interrupt(self) -> None:
        self._machine.interrupt()

    def terminate(self) -> bool:
        """SIGKILL the group of a running child; whether it was still running."""
        running = not self.isReaped
        self._machine.terminate()
        return running

    def kill(self) -> None:
        self._machine.kill()

    def _retire(self) -> None:
        self.table._retire(self)

    def tombstone(self) -> _Tombstone:
        """Forget this closed process; what is left of it."""
        self._machine.forget()
        return _Tombstone(
            self.buffer.lastSeq + 1, self.exitCode, self.tty, self.pipeStdin, self.terminated
        )


def exitCodeOf(reason: Failure, *, tty: bool, v171: bool) -> int:
    """The exit code a reaped child reports, as the reference's dialect gives it (probed)."""
    value = reason.value
    code = getattr(value, "exitCode", None)
    signum = getattr(value, "signal", None)
    if code is None and v171 and signum and not tty:
        # 0.171 reports a piped child's signal death as a shell would: 128 + the signal
        # (probed); a pty child still reports portable-pty's 1, as in 0.131
        return int(128 + signum)
    if code is None:
        # Killed by a signal: -1 for pipes; portable-pty reports 1 for a pty (probed).
        return 1 if tty else -1
    return int(code)
