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

import binascii
import json
import os
import signal
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_exec.executor.core.output_buffer import Chunk, Closed, Event, Exited, OutputBuffer
from twisted_exec.executor.resources.process_spawn import _pendingBytes
from twisted_exec.wire.jsonrpc import EncodedParams

log = Logger()


_DRAIN_READS = 64


class EntryOwner(Protocol):
    """What an entry needs of its :class:`~.processes.ProcessTable` (no import cycle)."""

    retainBytes: int
    exitGrace: float
    paused: bool
    reactor: Any
    notify: Callable[[str, Any], None]

    def _closedOne(self) -> None: ...

    def _reapedOne(self) -> None: ...

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
    """State of one started process: its buffer, transport and exit/close sequencing."""

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
        self.transport: Any = None
        #: process/closeStdin ended the stdin (later writes answer stdinClosed).
        self.stdinEnded = False
        self.pgid: int | None = None
        self.isReaped = False
        self.terminated = False
        self.exitCode = 0
        #: Started by a 0.171 request: 128 + signal for a signal's death, ``sandboxDenied``.
        self.v171 = False
        #: writeIds already handled (0.171 de-duplicates a repeated one), newest last.
        self.writeIds: dict[str, None] = {}
        self._openOutputs = {1, 2}
        self._grace: IDelayedCall | None = None
        self._graceDue = False  # the grace ran out while paused: drain once resumed
        # stream -> the JSON around seq and chunk in process/output params (see _outputParams)
        self._outputFraming: dict[str, tuple[bytes, bytes]] = {}

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
        chunk = binascii.b2a_base64(event.data, newline=False)
        raw = b"".join((framing[0], b"%d" % event.seq, framing[1], chunk, b'"}'))
        value = {
            "processId": self.processId,
            "seq": event.seq,
            "stream": event.stream,
            "chunk": chunk.decode("ascii"),
        }
        return EncodedParams(value, raw)

    def dataReceived(self, childFD: int, data: bytes) -> None:
        stream = "pty" if self.tty else ("stdout" if childFD == 1 else "stderr")
        self.buffer.appendOutput(stream, data)

    def pipeClosed(self, childFD: int) -> None:
        self._openOutputs.discard(childFD)
        if not self._openOutputs:
            self._outputClosed()

    def ended(self) -> None:
        # Reaped and every pipe (or the pty) closed.
        self._openOutputs.clear()
        self._outputClosed()

    def reaped(self, reason: Failure) -> None:
        self.isReaped = True
        self.table._reapedOne()
        value = reason.value
        code = getattr(value, "exitCode", None)
        signum = getattr(value, "signal", None)
        if code is None and self.v171 and signum and not self.tty:
            # 0.171 reports a piped child's signal death as a shell would: 128 + the signal
            # (probed); a pty child still reports portable-pty's 1, as in 0.131
            code = 128 + signum
        elif code is None:
            # Killed by a signal: -1 for pipes; portable-pty reports 1 for a pty (probed).
            code = 1 if self.tty else -1
        self.exitCode = code
        if not self.tty and self.pipeStdin:
            self.transport.closeStdin()
        if not self._openOutputs:
            self._finish()
        else:
            self._grace = self.table.reactor.callLater(self.table.exitGrace, self._graceExpired)

    def _outputClosed(self) -> None:
        if self.isReaped:
            self._finish()

    def _graceExpired(self) -> None:
        """The output is still open ``exitGrace`` after the exit (a grandchild holds it, or the
        reactor was busy): read what is already buffered in the pipes, then send ``exited``.

        Reading the bytes pending *now* keeps the promise that everything the child wrote
        before it exited precedes ``exited``, even when the reactor did not get to the pipes
        in time (e.g. a long run of spawns). Bounded, as a grandchild may keep writing.
        """
        self._grace = None
        if self.table.paused:
            # Reading now would bypass the pause; the pipes are read again on resume.
            self._graceDue = True
            return
        for reader in self._readers():
            for _ in range(_DRAIN_READS):
                try:
                    pending = _pendingBytes(reader.fileno())
                except OSError:
                    break
                if pending <= 0 or reader.doRead() is not None:
                    break
        self._sendExited()

    def _readers(self) -> list[Any]:
        transport = self.transport
        if transport is None or not getattr(transport, "connected", True):
            return []
        if self.tty:
            return [transport]
        return [transport.pipes[fd] for fd in (1, 2) if fd in transport.pipes]

    def _sendExited(self) -> None:
        if not self.buffer.exited:
            self.buffer.markExited(self.exitCode)

    def pause(self) -> None:
        if self.transport is not None and not self.buffer.closed:
            self.transport.pauseProducing()

    def resume(self) -> None:
        if self.transport is not None and not self.buffer.closed:
            self.transport.resumeProducing()
        if self._graceDue:
            self._graceDue = False
            self._grace = self.table.reactor.callLater(self.table.exitGrace, self._graceExpired)

    def _finish(self) -> None:
        self._graceDue = False
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        if self.buffer.closed:
            return
        self.table._closedOne()
        self.buffer.markFinished(self.exitCode)
        self.table._retire(self)

    def killGroup(self, signum: int = signal.SIGKILL) -> None:
        if self.pgid is None:
            return
        try:
            os.killpg(self.pgid, signum)
        except ProcessLookupError:
            pass
        except OSError as err:
            log.warn("killpg({pgid}) failed: {err}", pgid=self.pgid, err=err)
