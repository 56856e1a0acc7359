"""One remote process as the harness follows it: output in ``seq`` order, then its exit code.

It needs only the few calls of :class:`ProcessSession` from its session, so it does not import
:mod:`.session` (which imports it to hand out :class:`RemoteProcess` from ``spawn``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred

from twisted_exec.harness.errors import StreamError
from twisted_exec.harness.notifications import Notification, NotificationCallback


class ProcessSession(Protocol):
    """What a :class:`RemoteProcess` uses of its :class:`~.session.ExecSession`."""

    def onNotification(self, callback: NotificationCallback) -> Callable[[], None]: ...

    def whenEnded(self) -> Deferred[StreamError]: ...

    def call(self, method: str, params: Any = None) -> Deferred[Any]: ...

    def write(self, processId: str, data: bytes) -> Deferred[str]: ...

    def terminate(self, processId: str) -> Deferred[bool]: ...


class RemoteProcess:
    """Follows one process's notifications and delivers them in ``seq`` order.

    The executor numbers a process's ``process/output``, ``process/exited`` and
    ``process/closed`` with one counter from 1. Ours sends them in order; the reference may
    send ``exited`` (even ``closed``) before the last output, so they are re-ordered here:
    output reaches :meth:`onOutput` callbacks strictly by seq, and :attr:`finished` fires with
    the exit code once ``closed`` and everything before it has arrived.
    """

    def __init__(self, session: ProcessSession, processId: str) -> None:
        self.session = session
        self.processId = processId
        self.exitCode: int | None = None
        self.done = False
        self._failure: StreamError | None = None
        self._finishedWaiters: list[Deferred[int]] = []
        self.output: list[tuple[str, bytes]] = []
        self._outputCallbacks: list[Callable[[str, bytes], None]] = []
        self._buffered: dict[int, Notification] = {}
        self._nextSeq = 1
        self._closedSeq: int | None = None
        self.keepOutput = True
        self._unsubscribe = session.onNotification(self._note)
        session.whenEnded().addCallback(self._streamEnded)

    @property
    def finished(self) -> Deferred[int]:
        """A new Deferred: the exit code once the process closed, or the stream's
        :class:`StreamError` if it ended first. (A fresh one per access, so a caller that does
        not ask is never left with an unhandled error.)"""
        d: Deferred[int] = Deferred()
        if self._failure is not None:
            d.errback(self._failure)
        elif self.done:
            d.callback(self.exitCode if self.exitCode is not None else -1)
        else:
            self._finishedWaiters.append(d)
        return d

    def _finish(self, failure: StreamError | None) -> None:
        if self.done or self._failure is not None:
            return
        self.detach()
        if failure is None:
            self.done = True
        else:
            self._failure = failure
        waiters, self._finishedWaiters = self._finishedWaiters, []
        for d in waiters:
            if failure is None:
                d.callback(self.exitCode if self.exitCode is not None else -1)
            else:
                d.errback(failure)

    def onOutput(self, callback: Callable[[str, bytes], None]) -> None:
        """``callback(stream, data)`` for each output chunk (stream: stdout, stderr or pty)."""
        self._outputCallbacks.append(callback)

    def write(self, data: bytes) -> Deferred[str]:
        return self.session.write(self.processId, data)

    def terminate(self) -> Deferred[bool]:
        return self.session.terminate(self.processId)

    def detach(self) -> None:
        self._unsubscribe()

    def _note(self, message: Notification) -> None:
        params = message.get("params")
        if not isinstance(params, dict) or params.get("processId") != self.processId:
            return
        seq = params.get("seq")
        if not isinstance(seq, int):
            return
        self._buffered[seq] = message
        while self._nextSeq in self._buffered:
            self._apply(self._buffered.pop(self._nextSeq))
            self._nextSeq += 1
        if self._closedSeq is not None and self._nextSeq > self._closedSeq:
            self._finish(None)

    def _apply(self, message: Notification) -> None:
        method = message.get("method")
        params = message["params"]
        if method == "process/output":
            data = base64.b64decode(params.get("chunk", ""))
            stream = str(params.get("stream", "stdout"))
            if self.keepOutput:
                self.output.append((stream, data))
            for callback in list(self._outputCallbacks):
                callback(stream, data)
        elif method == "process/exited":
            self.exitCode = int(params.get("exitCode", -1))
        elif method == "process/closed":
            self._closedSeq = int(params["seq"])

    def _streamEnded(self, error: StreamError) -> None:
        self._finish(error)

    def stdout(self) -> bytes:
        return b"".join(data for stream, data in self.output if stream in ("stdout", "pty"))

    def stderr(self) -> bytes:
        return b"".join(data for stream, data in self.output if stream == "stderr")
