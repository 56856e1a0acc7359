"""Local websocket mode: one JSON-RPC message per text frame, one processor per connection.

Served from a twisted.web ``Site`` so that, as with the reference, the websocket lives at ``/``,
``GET /readyz`` answers 200 for health checks and every other path is a 404.

Flow control (``docs/flow-control.md``): once the websocket is open, a ``TransportBackpressure``
push producer is registered on the TCP transport in place of twisted.web's ``HTTPChannel`` (which
registered itself for the upgrade request and which autobahn's ``WebSocketResource`` leaves
behind). When the transport's write buffer passes its high-water mark, the processor is paused
(process pipes stop being read) and so is reading from the peer; both resume once the buffer
has drained.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from zope.interface import implementer

from twisted_exec.executor.core.interfaces import IJsonRpcProcessor, IMessageSink, IProcessorFactory
from twisted_exec.executor.transports.defaults import (
    DEFAULT_MAX_MESSAGE_BYTES as DEFAULT_MAX_MESSAGE_BYTES,
)
from twisted_exec.net.autobahn_compat import (
    PromptFailMixin,
    betweenWholeFrames,
    canWriteFrameDirectly,
)
from twisted_exec.net.autobahn_ws import (
    WebSocketServerFactory,
    WebSocketServerProtocol,
    webSocketResource,
)
from twisted_exec.net.backpressure import TransportBackpressure
from twisted_exec.net.eagerwrite import writeNow
from twisted_exec.net.quietsite import QuietSite
from twisted_exec.net.upgradeguard import AuthorizedWebSocket, Refusals, UpgradeGuard
from twisted_exec.net.wsauth_config import WsAuthMode
from twisted_exec.wire.wstext import nextClientTextMessage, serverTextFrame

log = Logger()


@implementer(IMessageSink)
class _WebSocketSink:
    """Adapts autobahn's ``sendMessage(payload, isBinary)`` to :class:`IMessageSink`."""

    def __init__(self, protocol: WebSocketServerProtocol) -> None:
        self._protocol = protocol

    def sendMessage(self, payload: bytes) -> None:
        # Once our close frame is out (shutdown, or a peer's close), autobahn refuses to send;
        # the session is about to be detached and keeps process output for process/read.
        protocol = self._protocol
        if protocol.state != WebSocketServerProtocol.STATE_OPEN:
            log.debug("message dropped: the websocket is closing")
            return
        transport = protocol.transport
        if transport is not None and canWriteFrameDirectly(protocol, len(payload)):
            # The bytes sendMessage would write, without its per-call checks (wire/wstext),
            # sent now rather than on the next writable event (net/eagerwrite).
            writeNow(transport, serverTextFrame(payload))
            return
        protocol.sendMessage(payload, isBinary=False)

    def loseConnection(self) -> None:
        self._protocol.sendClose()


class LocalExecProtocol(PromptFailMixin, WebSocketServerProtocol):  # type: ignore[misc]
    """Forwards open/message/close to a processor and nothing else."""

    processor: IJsonRpcProcessor | None = None
    backpressure: TransportBackpressure | None = None
    maxMessagePayloadSize: int  # autobahn copies it from the factory's options
    _handshakeTimer: Any = None

    def connectionMade(self) -> None:
        # Our own open-handshake deadline on the injected reactor: autobahn's uses txaio's
        # batched timers, which linger in the reactor after cancellation.
        super().connectionMade()
        self._lostWaiters = []
        self._handshakeTimer = self.factory.reactor.callLater(
            self.factory.openHandshakeSeconds, self._handshakeTimedOut
        )

    def _handshakeTimedOut(self) -> None:
        self._handshakeTimer = None
        log.info("websocket open handshake timed out; dropping the connection")
        self.dropConnection(abort=True)

    def _cancelHandshakeTimer(self) -> None:
        if self._handshakeTimer is not None and self._handshakeTimer.active():
            self._handshakeTimer.cancel()
        self._handshakeTimer = None

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancelHandshakeTimer()
        super().connectionLost(reason)
        waiters, self._lostWaiters = self._lostWaiters, []
        for waiter in waiters:
            waiter.callback(None)

    _lostWaiters: list[Deferred[None]]

    def whenLost(self) -> Deferred[None]:
        """Fires once the TCP connection is gone (for a shutdown that lets close frames out)."""
        d: Deferred[None] = Deferred()
        if self.transport is None or getattr(self.transport, "disconnected", False):
            d.callback(None)
        else:
            self._lostWaiters.append(d)
        return d

    def onOpen(self) -> None:
        self._cancelHandshakeTimer()
        peer: Any = self.transport.getPeer()  # type: ignore[union-attr]
        context = f"websocket JSON-RPC message from exec-server websocket {peer.host}:{peer.port}"
        self.processor = self.factory.processorFactory.buildProcessor(context)
        self.processor.makeConnection(_WebSocketSink(self))
        self.factory.connections.add(self)
        self._registerBackpressure(self.processor)

    def _registerBackpressure(self, processor: IJsonRpcProcessor) -> None:
        transport: Any = self.transport
        if transport is None or getattr(transport, "disconnected", False):
            return
        if getattr(transport, "producer", None) is not None:
            # twisted.web's HTTPChannel, registered for the upgrade request.
            transport.unregisterProducer()
        self.backpressure = TransportBackpressure(self, processor)
        transport.registerProducer(self.backpressure, True)

    def dataReceived(self, data: bytes) -> None:
        # Whole masked text frames, between frames, go straight to onMessage (wire/wstext);
        # the rest (handshake, control frames, fragments, anything to refuse) to autobahn,
        # in order: only while autobahn has nothing buffered and no frame or message begun.
        offset = 0
        if betweenWholeFrames(self):
            limit = self.maxMessagePayloadSize
            processor = self.processor
            while processor is not None and self.state == WebSocketServerProtocol.STATE_OPEN:
                found = nextClientTextMessage(data, offset, limit)
                if found is None:
                    break
                payload, offset = found
                processor.messageReceived(payload)
                processor = self.processor
            if offset == len(data):
                return
        super().dataReceived(data[offset:] if offset else data)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.processor is not None:
            self.processor.messageReceived(payload)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.connections.discard(self)
        self.backpressure = None
        if self.processor is not None:
            processor, self.processor = self.processor, None
            processor.connectionLost()


class LocalExecFactory(WebSocketServerFactory):  # type: ignore[misc]
    protocol = LocalExecProtocol

    def __init__(
        self,
        processorFactory: IProcessorFactory,
        reactor: Any,
        maxMessageBytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        openHandshakeSeconds: float = 30.0,
    ) -> None:
        super().__init__(reactor=reactor)
        self.openHandshakeSeconds = openHandshakeSeconds
        self.processorFactory = processorFactory
        self.connections: set[LocalExecProtocol] = set()
        self.setProtocolOptions(
            maxMessagePayloadSize=maxMessageBytes,
            maxFramePayloadSize=maxMessageBytes,
            autoPingInterval=0,
            openHandshakeTimeout=0,
            closeHandshakeTimeout=0,  # batched txaio timer; _stop drops the TCP itself
            failByDrop=False,  # PromptFailMixin: a close frame with the reason, then the FIN
        )


class _Ready(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return b""

    render_HEAD = render_GET


class _NotFound(Resource):
    """An empty 404, as the reference answers for any path but ``/`` and ``/readyz``."""

    isLeaf = True

    def render(self, request: Request) -> bytes:
        request.setResponseCode(404)
        return b""


class _Root(Resource):
    """``/`` is the websocket, ``/readyz`` a health check, anything else a 404."""

    def __init__(self, websocket: Any) -> None:
        super().__init__()
        self._websocket = websocket
        self.putChild(b"readyz", _Ready())

    def getChild(self, path: bytes, request: Request) -> Resource:
        if path == b"" and not request.postpath:
            return self._websocket  # type: ignore[return-value]
        return _NotFound()

    def render(self, request: Request) -> Any:
        return self._websocket.render(request)


def makeSite(
    factory: LocalExecFactory,
    bindHost: str = "127.0.0.1",
    auth: WsAuthMode | None = None,
    clock: IReactorTime | None = None,
    metrics: Any = None,
) -> Site:
    """The listener's site: Origin/Host refused first (any path), then routing, then the
    bearer check of the upgrade (``net/wsauth``: the 0.171 answers). With ``metrics`` (an
    ``ExecutorMetrics``), ``/metrics`` too, unauthenticated like ``/readyz`` (counts only). No
    access log lines (``/readyz`` probes and scrapes would flood the log)."""
    clock = clock if clock is not None else factory.reactor
    refusals = Refusals(clock)
    websocket = AuthorizedWebSocket(webSocketResource(factory), auth, clock, refusals)
    root = _Root(websocket)
    if metrics is not None:
        from twisted_exec.net.metrics_web import MetricsResource

        root.putChild(b"metrics", MetricsResource(metrics))
    site = QuietSite(UpgradeGuard(root, bindHost, clock, refusals))
    site.displayTracebacks = False
    return site
