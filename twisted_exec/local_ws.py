"""Local websocket mode: one JSON-RPC message per text frame, one processor per connection.

Served from a twisted.web ``Site`` so that, as with the reference, the websocket lives at ``/``,
``GET /readyz`` answers 200 for health checks and every other path is a 404.
"""

from __future__ import annotations

from typing import Any

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from zope.interface import implementer

from .interfaces import IJsonRpcProcessor, IMessageSink, IProcessorFactory

log = Logger()

DEFAULT_MAX_MESSAGE_BYTES = 128 * 1024 * 1024


@implementer(IMessageSink)
class _WebSocketSink:
    """Adapts autobahn's ``sendMessage(payload, isBinary)`` to :class:`IMessageSink`."""

    def __init__(self, protocol: WebSocketServerProtocol) -> None:
        self._protocol = protocol

    def sendMessage(self, payload: bytes) -> None:
        self._protocol.sendMessage(payload, isBinary=False)

    def loseConnection(self) -> None:
        self._protocol.sendClose()


class LocalExecProtocol(WebSocketServerProtocol):  # type: ignore[misc]
    """Forwards open/message/close to a processor and nothing else."""

    processor: IJsonRpcProcessor | None = None

    def onOpen(self) -> None:
        peer: Any = self.transport.getPeer()  # type: ignore[union-attr]
        context = f"websocket JSON-RPC message from exec-server websocket {peer.host}:{peer.port}"
        self.processor = self.factory.processorFactory.buildProcessor(context)
        self.processor.makeConnection(_WebSocketSink(self))
        self.factory.connections.add(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.processor is not None:
            self.processor.messageReceived(payload)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.connections.discard(self)
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
    ) -> None:
        super().__init__(reactor=reactor)
        self.processorFactory = processorFactory
        self.connections: set[LocalExecProtocol] = set()
        self.setProtocolOptions(
            maxMessagePayloadSize=maxMessageBytes,
            maxFramePayloadSize=maxMessageBytes,
            autoPingInterval=0,
            openHandshakeTimeout=30,
            closeHandshakeTimeout=1,
        )


class _Ready(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return b""

    render_HEAD = render_GET


class _Root(Resource):
    """``/`` is the websocket, ``/readyz`` a health check, anything else a 404."""

    def __init__(self, websocket: WebSocketResource) -> None:
        super().__init__()
        self._websocket = websocket
        self.putChild(b"readyz", _Ready())

    def getChild(self, path: bytes, request: Request) -> Resource:
        if path == b"" and not request.postpath:
            return self._websocket  # type: ignore[return-value]
        return super().getChild(path, request)

    def render(self, request: Request) -> Any:
        return self._websocket.render(request)


def makeSite(factory: LocalExecFactory) -> Site:
    site = Site(_Root(WebSocketResource(factory)))
    site.noisy = False
    site.displayTracebacks = False
    return site
