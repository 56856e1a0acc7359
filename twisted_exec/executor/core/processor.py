"""One JSON-RPC endpoint per connection or relay stream: handshake, method table, strict order.

The request half (calling the method, answering it) is :mod:`.dispatch`; the factory is
:mod:`.processor_factory`. The processor is transport-agnostic: a transport feeds it raw
messages with :meth:`ExecProcessor.messageReceived` and gives it an :class:`IMessageSink` for
replies. Like the reference, by default it handles one request at a time in arrival order, so
replies leave in request order; a ``process/read`` that long-polls holds back the requests
behind it. With ``concurrentRequests`` N (0.171's ``--concurrent-requests``), up to N requests
are in flight and each reply leaves when it is ready, so replies may overtake each other, as in
0.171.

Where the reference silently destroys a session (an id of null, a response object, an unknown
notification, a batch), we answer with a JSON-RPC error and carry on: nothing a client sends may
lose later messages.

Flow control (``docs/flow-control.md``): while the transport has paused us, queued requests wait
and the session's producers (process pipes, HTTP body streams) are paused at their source.

No reply leaves that the peer would refuse: one longer than ``Limits.maxReplyBytes`` (the
websocket message limit less a relay frame's envelope) is replaced by a JSON-RPC error naming the
limit, so a too-large answer fails one request instead of the whole connection (issue 15).

The queue of messages waiting behind a slow request is bounded in count (``maxQueued``) and in
bytes (``Limits.maxQueuedBytes``): a peer that
piles up more gets an error for each request beyond it (the reply overtakes the queued ones),
and notifications beyond it are dropped with a log line.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger
from zope.interface import implementer

from twisted_exec.compat import params
from twisted_exec.executor.core.dialect import Dialect
from twisted_exec.executor.core.dispatch import MethodTable, RequestDispatch, State
from twisted_exec.executor.core.interfaces import (
    IConnectionResource,
    IJsonRpcProcessor,
    IMessageSink,
)
from twisted_exec.executor.core.limits import Limits
from twisted_exec.executor.core.session import Session, SessionRegistry
from twisted_exec.wire import jsonrpc
from twisted_exec.wire.errors import INVALID_REQUEST, METHOD_NOT_FOUND, RpcError

log = Logger()

#: Messages one session may have waiting behind the request in progress.
MAX_QUEUED = 1024
#: 0.171's code for ``session <id> is already attached to another connection`` (0.131: -32600).
SESSION_ATTACHED_171 = -32010


@implementer(IJsonRpcProcessor)
class ExecProcessor(RequestDispatch):
    """The JSON-RPC session endpoint of one connection."""

    def __init__(
        self,
        registry: SessionRegistry,
        filesystem: Any,
        parseErrorContext: str | None,
        maxQueued: int | None = MAX_QUEUED,
        *,
        methods: MethodTable,
        environment: Any = None,
        concurrentRequests: int = 1,
        limits: Limits | None = None,
    ) -> None:
        self.registry = registry
        self.limits = limits if limits is not None else Limits()
        self.maxQueued = maxQueued
        if concurrentRequests < 1:
            raise ValueError(f"concurrentRequests must be at least 1, got {concurrentRequests}")
        self.concurrentRequests = concurrentRequests
        self.filesystem = filesystem
        self.parseErrorContext = parseErrorContext
        self.methods = methods
        self.environment = environment
        #: The session's dialect: 0.131 until a 0.171-only request (sticky; see core/dialect.py).
        self.dialect = Dialect.V131
        self.session: Session | None = None
        self._sink: IMessageSink | None = None
        self._state = State.NEW
        self._queue: deque[bytes] = deque()
        self._inFlight = 0  # requests started whose reply is not sent yet
        self._queuedBytes = 0
        self._draining = False
        self._closed = False
        self._paused = False
        #: ``onRequestDone(method, seconds)`` after each request's reply (metrics), with clock.
        self.onRequestDone: Callable[[str, float], None] | None = None
        self.clock: Any = None
        self._perConnection: dict[str, Any] = {}

    # -- IJsonRpcProcessor --------------------------------------------------------------------

    def makeConnection(self, sink: IMessageSink) -> None:
        self._sink = sink

    def messageReceived(self, payload: bytes) -> None:
        if self._closed:
            return
        if self.maxQueued is not None and len(self._queue) >= self.maxQueued:
            self._refuse(
                payload, f"too many pending messages on this session (limit {self.maxQueued})"
            )
            return
        problem = self.limits.queueProblem(len(self._queue), self._queuedBytes, len(payload))
        if problem is not None:
            self._refuse(payload, problem)
            return
        self._queue.append(payload)
        self._queuedBytes += len(payload)
        self._drain()

    def _refuse(self, payload: bytes, reason: str) -> None:
        message = jsonrpc.decode(payload)
        if isinstance(message, jsonrpc.Request):
            self._replyError(message.id, INVALID_REQUEST, reason)
        else:
            log.warn("message dropped: {reason}", reason=reason)

    def connectionLost(self) -> None:
        """Detach: the session and its processes wait for a resume (10 s by default).

        A detached session is never left paused: its processes run on, their output retained
        (the newest ``retainBytes`` per process) for ``process/read`` after a resume, as the
        reference does.
        """
        self._shutdown()
        if self.session is not None:
            self.registry.detach(self.session)

    def closeSession(self) -> None:
        """The transport ended for good (stdio EOF): end the session now, killing its processes."""
        self._shutdown()
        if self.session is not None:
            self.registry.close(self.session)

    def connectionResource(self, key: str, factory: Callable[[], IConnectionResource]) -> Any:
        """This connection's ``key`` object (made by ``factory`` on first use), not the
        session's: the reference ties fs handles and the missing-path watch to the connection.
        Each is ``close()``d when the connection ends."""
        resource = self._perConnection.get(key)
        if resource is None:
            if self._closed:
                raise RpcError(INVALID_REQUEST, "the connection is closed")
            resource = self._perConnection[key] = factory()
        return resource

    def notify(self, method: str, notificationParams: dict[str, Any]) -> None:
        """A notification to this connection (dropped once it is gone)."""
        self._notify(method, notificationParams)

    def _shutdown(self) -> None:
        self._closed = True
        resources, self._perConnection = self._perConnection, {}
        for resource in resources.values():
            try:
                resource.close()
            except Exception:
                log.failure("closing a per-connection resource failed")
        self._queue.clear()
        self._queuedBytes = 0
        self._sink = None
        if self._paused:
            self._paused = False
            self._forwardPause(False)

    # -- flow control (IPushProducer-like; see docs/flow-control.md) -------------------------

    def pauseProducing(self) -> None:
        if self._paused or self._closed:
            return
        self._paused = True
        self._forwardPause(True)

    def resumeProducing(self) -> None:
        if not self._paused or self._closed:
            return
        self._paused = False
        self._forwardPause(False)
        self._drain()

    @property
    def paused(self) -> bool:
        return self._paused

    def _forwardPause(self, paused: bool) -> None:
        """Pause or resume the session's producers (its ``ISessionResources``)."""
        resources = self.session.resources if self.session is not None else None
        if resources is None:
            return
        if paused:
            resources.pauseProducing()
        else:
            resources.resumeProducing()

    # -- outbound -----------------------------------------------------------------------------

    def _send(self, payload: bytes) -> None:
        if self._sink is not None:
            self._sink.sendMessage(payload)

    def _notify(self, method: str, notificationParams: dict[str, Any]) -> None:
        self._send(jsonrpc.encodeNotification(method, notificationParams))

    def _reply(self, requestId: jsonrpc.RequestId, result: object) -> None:
        payload = jsonrpc.encodeResult(requestId, result)
        problem = self.limits.replyProblem(len(payload))
        if problem is not None:
            log.warn("reply to request {id} refused: {problem}", id=requestId, problem=problem)
            payload = jsonrpc.encodeError(requestId, INVALID_REQUEST, problem)
        self._send(payload)

    def _replyError(
        self, requestId: jsonrpc.RequestId, code: int, message: str, data: object = None
    ) -> None:
        self._send(jsonrpc.encodeError(requestId, code, message, data))

    # -- the queue ----------------------------------------------------------------------------

    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            while (
                self._queue
                and self._inFlight < self.concurrentRequests
                and not self._closed
                and not self._paused
            ):
                payload = self._queue.popleft()
                self._queuedBytes -= len(payload)
                self._handle(payload)
        finally:
            self._draining = False

    # -- dispatch -----------------------------------------------------------------------------

    def _handle(self, payload: bytes) -> None:
        message = jsonrpc.decode(payload)
        if isinstance(message, jsonrpc.Request):
            self._handleRequest(message)
        elif isinstance(message, jsonrpc.Notification):
            self._handleNotification(message)
        elif isinstance(message, jsonrpc.Malformed):
            log.warn("malformed JSON-RPC message: {message}", message=message.message)
            self._replyError(message.id, message.code, message.message)
        else:
            self._handleUnparseable(message)

    def _handleUnparseable(self, message: jsonrpc.Unparseable) -> None:
        if self.parseErrorContext is None:
            log.warn("dropped a message that is not JSON-RPC: {detail}", detail=message.detail)
            return
        self._replyError(
            -1, INVALID_REQUEST, f"failed to parse {self.parseErrorContext}: {message.detail}"
        )

    def _handleNotification(self, message: jsonrpc.Notification) -> None:
        if message.method == "initialized":
            if self._state is State.INITIALIZING:
                self._state = State.READY
            elif self._state is State.NEW:
                self._replyError(
                    -1, INVALID_REQUEST, "client must call initialize before sending initialized"
                )
            return
        self._replyError(
            -1, METHOD_NOT_FOUND, f"exec-server does not handle notification `{message.method}`"
        )

    # -- initialize ---------------------------------------------------------------------------

    def initialize(self, p: params.InitializeParams) -> dict[str, Any]:
        """``{sessionId}``, in both dialects: the first message cannot tell a 0.131 client from
        a 0.171 one, and a 0.131 client must keep every byte; 0.171 clients then ask
        ``environment/info`` (docs/decisions.md)."""
        if self._state is not State.NEW:
            raise RpcError(INVALID_REQUEST, "initialize may only be sent once per connection")
        if p.resumeSessionId is not None:
            self.session = self._resume(p.resumeSessionId)
            self.dialect = max(self.dialect, self.session.dialect)
            self.session.dialect = self.dialect
        else:
            self.session = self.registry.create(self._notify)
            self.session.dialect = self.dialect
        if self._paused:
            self._forwardPause(True)
        self._state = State.INITIALIZING
        return {"sessionId": self.session.sessionId}

    def _resume(self, sessionId: str) -> Session:
        try:
            return self.registry.resume(sessionId, self._notify)
        except RpcError as err:
            # 0.171 answers a resume of an attached session with its own code (probed)
            existing = self.registry.get(sessionId)
            if existing is not None and existing.attached and existing.dialect >= Dialect.V171:
                raise RpcError(SESSION_ATTACHED_171, err.message) from None
            raise
