"""One relay stream = one JSON-RPC session with the executor, from the harness side.

Sans-IO: an :class:`ExecSession` is handed a ``send(frameBytes)`` callable and fed the decoded
frames of its stream; the websocket lives in :mod:`.connection`. It frames like the Codex cloud
harness: an opening ``resume{next_seq: 0}``, then one data frame per JSON-RPC message with seq
0, 1, 2, ... (segment 0 of 1), and a ``reset`` to close.

Calls return Deferreds (``await`` them in a coroutine, or add callbacks): the result, or a
:class:`~.errors.CallError` for a JSON-RPC error, or a :class:`~.errors.StreamError` when the
stream ends first. Notifications reach callbacks (:meth:`ExecSession.onNotification`) and async
iterators (:meth:`ExecSession.notifications`).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_exec.harness.errors import CallError, StreamError
from twisted_exec.harness.notifications import Notification, NotificationCallback, NotificationQueue
from twisted_exec.harness.remote_process import RemoteProcess
from twisted_exec.wire.frames import SEQ_MODULUS, Data, Reset, encodeData, encodeReset, encodeResume
from twisted_exec.wire.rpcclient import Notification as RpcNotification
from twisted_exec.wire.rpcclient import Reply, RpcClientCore

log = Logger()

#: What the real Codex harness sends with ``process/start``: the child inherits the executor's
#: environment (the reference without ``envPolicy`` gives the child exactly ``env``).
INHERIT_ALL: dict[str, Any] = {
    "inherit": "all",
    "ignoreDefaultExcludes": True,
    "exclude": [],
    "set": {},
    "includeOnly": [],
}


class ExecSession:
    """The harness end of one stream; methods mirror the executor's JSON-RPC methods."""

    def __init__(
        self,
        streamId: str,
        send: Callable[[bytes], None],
        onEnded: Callable[[ExecSession], None] | None = None,
    ) -> None:
        self.streamId = streamId
        self.sessionId: str | None = None
        self._send = send
        self._onEnded = onEnded
        self._nextSeq = 0
        self._rpc: RpcClientCore[tuple[str, Deferred[Any]]] = RpcClientCore()
        self._callbacks: list[NotificationCallback] = []
        self._queues: set[NotificationQueue] = set()
        self.error: StreamError | None = None
        self.initializeResult: Any = None
        self.lastInboundSeq: int | None = None
        #: Send paths as ``file:`` URIs, as Codex 0.171 does (environment sessions).
        self.fileUris = False
        self._endWaiters: list[Deferred[StreamError]] = []

    def __repr__(self) -> str:
        return f"<ExecSession stream={self.streamId} session={self.sessionId}>"

    @property
    def ended(self) -> bool:
        return self.error is not None

    # -- framing ---------------------------------------------------------------------------

    def open(self) -> None:
        """Announce the stream (``resume{next_seq: 0}``), as the cloud harness does."""
        self._send(encodeResume(self.streamId, self._nextSeq))

    def _sendMessage(self, message: Mapping[str, Any]) -> None:
        seq, self._nextSeq = self._nextSeq, (self._nextSeq + 1) % SEQ_MODULUS
        self._send(encodeData(self.streamId, seq, json.dumps(message).encode()))

    def frameReceived(self, event: Data | Reset) -> None:
        """A decoded frame of this stream, from the connection."""
        if self.ended:
            return
        if isinstance(event, Reset):
            self._end(StreamError(event.reason))
            return
        if self.lastInboundSeq is not None and event.seq != (self.lastInboundSeq + 1) % SEQ_MODULUS:
            log.warn(
                "stream {streamId}: inbound seq {seq} after {last}",
                streamId=self.streamId,
                seq=event.seq,
                last=self.lastInboundSeq,
            )
        self.lastInboundSeq = event.seq
        try:
            message = json.loads(event.payload)
        except ValueError:
            log.warn("stream {streamId}: undecodable JSON dropped", streamId=self.streamId)
            return
        if not isinstance(message, dict):
            log.warn("stream {streamId}: non-object JSON dropped", streamId=self.streamId)
            return
        received = self._rpc.received(message)
        if isinstance(received, RpcNotification):
            self._notification(message)
            return
        if not isinstance(received, Reply):
            if "method" not in message:  # the executor sends no requests: those are ignored
                log.warn("stream {streamId}: reply to no request dropped", streamId=self.streamId)
            return
        method, d = received.pending
        error = received.error
        if error is not None:
            d.errback(
                CallError(
                    method,
                    int(error.get("code", 0)),
                    str(error.get("message", "")),
                    error.get("data"),
                )
            )
        else:
            d.callback(message.get("result"))

    def connectionLost(self, reason: str) -> None:
        """The websocket under this stream ended."""
        self._end(StreamError(reason))

    def _end(self, error: StreamError) -> None:
        if self.error is not None:
            return
        self.error = error
        for _, d in self._rpc.takeAll():
            d.errback(error)
        for queue in list(self._queues):
            queue.close()
        waiters, self._endWaiters = self._endWaiters, []
        for w in waiters:
            w.callback(error)
        if self._onEnded is not None:
            self._onEnded(self)

    def whenEnded(self) -> Deferred[StreamError]:
        """Fires with the :class:`StreamError` that ended the stream (never errbacks)."""
        if self.error is not None:
            return succeed(self.error)
        d: Deferred[StreamError] = Deferred()
        self._endWaiters.append(d)
        return d

    def close(self, reason: str = "harness closed the stream") -> None:
        """Reset the stream: the executor detaches the session (resumable for its TTL)."""
        if self.ended:
            return
        self._send(encodeReset(self.streamId, reason))
        self._end(StreamError(reason))

    # -- JSON-RPC --------------------------------------------------------------------------

    def call(self, method: str, params: Any = None) -> Deferred[Any]:
        """Send a request; fires with its ``result``."""
        d: Deferred[Any] = Deferred()
        if self.error is not None:
            d.errback(self.error)
            return d
        self._sendMessage(self._rpc.request(method, params, (method, d)))
        return d

    def notify(self, method: str, params: Any = None) -> None:
        if self.error is not None:
            raise self.error
        self._sendMessage(self._rpc.notification(method, params))

    def _notification(self, message: Notification) -> None:
        for callback in list(self._callbacks):
            try:
                callback(message)
            except Exception:
                log.failure("notification callback failed")
        for queue in list(self._queues):
            queue.put(message)

    def onNotification(self, callback: NotificationCallback) -> Callable[[], None]:
        """Call ``callback(message)`` for every notification; returns an unsubscribe function."""
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    def notifications(self) -> NotificationQueue:
        """``async for note in session.notifications(): ...`` (from now on, until the end)."""
        queue = NotificationQueue(self._queues.discard)
        if self.ended:
            queue.put(None)
        else:
            self._queues.add(queue)
        return queue

    def initialize(
        self, clientName: str = "twisted-exec", resumeSessionId: str | None = None
    ) -> Deferred[str]:
        """``initialize`` then ``initialized``; fires with the session id."""
        return Deferred.fromCoroutine(self._initialize(clientName, resumeSessionId))

    async def _initialize(self, clientName: str, resumeSessionId: str | None) -> str:
        params: dict[str, Any] = {"clientName": clientName}
        if resumeSessionId is not None:
            params["resumeSessionId"] = resumeSessionId
        result = await self.call("initialize", params)
        self.notify("initialized")
        self.sessionId = str(result["sessionId"])
        self.initializeResult = result
        return self.sessionId

    @property
    def usesFileUris(self) -> bool:
        """The executor speaks the 0.171 dialect (its initialize result has
        ``environmentInfo``): paths travel as ``file:`` URIs."""
        return (
            isinstance(self.initializeResult, dict) and "environmentInfo" in self.initializeResult
        )

    def wirePath(self, path: str) -> str:
        """``path`` as this executor's dialect takes it (a bare path, or a ``file:`` URI):
        URIs for an environment (Noise) session or an executor whose initialize says 0.171."""
        return self._path(path)

    # -- processes -------------------------------------------------------------------------

    def startProcess(
        self,
        argv: Sequence[str],
        cwd: str,
        *,
        processId: str | None = None,
        env: Mapping[str, str] | None = None,
        envPolicy: Mapping[str, Any] | None = INHERIT_ALL,
        tty: bool = False,
        pipeStdin: bool = False,
        arg0: str | None = None,
    ) -> Deferred[str]:
        """``process/start``; fires with the process id (a fresh UUID unless given)."""
        params: dict[str, Any] = {
            "processId": processId if processId is not None else str(uuid.uuid4()),
            "argv": list(argv),
            # 0.171 (environment sessions) names directories by file: URI.
            "cwd": self._path(cwd),
            "env": dict(env or {}),
            "tty": tty,
            "pipeStdin": pipeStdin,
        }
        if envPolicy is not None:
            params["envPolicy"] = dict(envPolicy)
        if arg0 is not None or self.fileUris:
            params["arg0"] = arg0
        if self.fileUris:
            params["sandbox"] = None
        return self.call("process/start", params).addCallback(lambda r: str(r["processId"]))

    def spawn(
        self,
        argv: Sequence[str],
        cwd: str,
        *,
        onOutput: Callable[[str, bytes], None] | None = None,
        keepOutput: bool = True,
        **kwargs: Any,
    ) -> Deferred[RemoteProcess]:
        """Start a process and follow its notifications (see :class:`RemoteProcess`).

        ``onOutput(stream, data)`` is attached before ``process/start`` is sent, so no output
        can slip past it; ``keepOutput=False`` does not accumulate output in memory.
        """
        processId = kwargs.pop("processId", None) or str(uuid.uuid4())
        process = RemoteProcess(self, processId)
        process.keepOutput = keepOutput
        if onOutput is not None:
            process.onOutput(onOutput)
        d = self.startProcess(argv, cwd, processId=processId, **kwargs)

        def started(_: str) -> RemoteProcess:
            return process

        def failed(failure: Failure) -> Failure:
            process.detach()
            return failure

        return d.addCallbacks(started, failed)

    def read(
        self,
        processId: str,
        afterSeq: int | None = None,
        maxBytes: int | None = None,
        waitMs: int | None = None,
    ) -> Deferred[dict[str, Any]]:
        """``process/read``: retained output after ``afterSeq`` (chunks stay base64)."""
        params: dict[str, Any] = {"processId": processId}
        for key, value in (("afterSeq", afterSeq), ("maxBytes", maxBytes), ("waitMs", waitMs)):
            if value is not None:
                params[key] = value
        return self.call("process/read", params)

    def write(self, processId: str, data: bytes) -> Deferred[str]:
        """``process/write``; fires with the status (``accepted``, ``stdinClosed``, ...)."""
        # writeId: 0.171 requires it (and drops a repeated one); 0.131 ignores extra fields.
        params = {
            "processId": processId,
            "chunk": base64.b64encode(data).decode(),
            "writeId": str(uuid.uuid4()),
        }
        return self.call("process/write", params).addCallback(lambda r: str(r["status"]))

    def terminate(self, processId: str) -> Deferred[bool]:
        """``process/terminate``; fires with whether the process was still running."""
        return self.call("process/terminate", {"processId": processId}).addCallback(
            lambda r: bool(r["running"])
        )

    def _path(self, path: str) -> str:
        """``path`` as this session's executor names paths: a ``file:`` URI for 0.171."""
        uris = self.fileUris or self.usesFileUris
        return Path(path).as_uri() if uris and path.startswith("/") else path

    # -- files -----------------------------------------------------------------------------

    def readFile(self, path: str) -> Deferred[bytes]:
        return self.call("fs/readFile", {"path": self._path(path)}).addCallback(
            lambda r: base64.b64decode(r["dataBase64"])
        )

    def writeFile(self, path: str, data: bytes) -> Deferred[None]:
        params = {"path": self._path(path), "dataBase64": base64.b64encode(data).decode()}
        return self.call("fs/writeFile", params).addCallback(lambda _: None)

    def getMetadata(self, path: str) -> Deferred[dict[str, Any]]:
        return self.call("fs/getMetadata", {"path": self._path(path)})

    def readDirectory(self, path: str) -> Deferred[list[dict[str, Any]]]:
        return self.call("fs/readDirectory", {"path": self._path(path)}).addCallback(
            lambda r: list(r["entries"])
        )

    def createDirectory(self, path: str, recursive: bool = True) -> Deferred[None]:
        params = {"path": self._path(path), "recursive": recursive}
        return self.call("fs/createDirectory", params).addCallback(lambda _: None)

    def remove(self, path: str, recursive: bool = True, force: bool = True) -> Deferred[None]:
        params = {"path": self._path(path), "recursive": recursive, "force": force}
        return self.call("fs/remove", params).addCallback(lambda _: None)

    def copy(
        self, sourcePath: str, destinationPath: str, recursive: bool = False
    ) -> Deferred[None]:
        params = {
            "sourcePath": self._path(sourcePath),
            "destinationPath": self._path(destinationPath),
            "recursive": recursive,
        }
        return self.call("fs/copy", params).addCallback(lambda _: None)
