"""A recording websocket proxy: sits between a client (the Codex CLI) and an exec-server.

Every text or binary message is forwarded unchanged and appended to :attr:`WebSocketRecorder.events`
with its connection number and direction, so a test can compare what two exec-servers answered to
the same client.  Each accepted connection opens its own upstream connection; messages that arrive
before the upstream is open are queued.  When either side closes, the other is closed too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from autobahn.twisted.websocket import (
    WebSocketClientFactory,
    WebSocketClientProtocol,
    WebSocketServerFactory,
    WebSocketServerProtocol,
)
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IListeningPort, IReactorTCP
from twisted.logger import Logger

from twisted_exec.net.nodelay import NoDelayMixin

log = Logger()

#: Directions of recorded events.
CLIENT_TO_SERVER = "c2s"
SERVER_TO_CLIENT = "s2c"


# A transparent proxy: no size limits, and no autobahn handshake timers (they run on txaio's
# batched timers, which linger in the reactor after the connection is gone).
_OPTIONS: dict[str, Any] = {
    "maxMessagePayloadSize": 0,
    "maxFramePayloadSize": 0,
    "openHandshakeTimeout": 0,
    "closeHandshakeTimeout": 0,
}


@dataclass(frozen=True)
class RecordedEvent:
    """One message (``kind`` "text"/"binary") or lifecycle event ("open"/"close")."""

    connection: int
    direction: str
    kind: str
    payload: bytes
    at: float


class WebSocketRecorder:
    """Listen on loopback and forward each connection to ``upstreamUrl``."""

    def __init__(
        self,
        reactor: IReactorTCP,
        upstreamUrl: str,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reactor = reactor
        self.upstreamUrl = upstreamUrl
        self.now = now
        self.events: list[RecordedEvent] = []
        #: The HTTP headers of each client's websocket upgrade request.
        self.upgradeHeaders: list[dict[str, str]] = []
        self._port: IListeningPort | None = None
        self._connections = 0
        self._live: set[Any] = set()
        self._idleWaiters: list[Deferred[None]] = []

    def record(self, connection: int, direction: str, kind: str, payload: bytes = b"") -> None:
        self.events.append(RecordedEvent(connection, direction, kind, payload, self.now()))

    def listen(self, interface: str = "127.0.0.1") -> IListeningPort:
        factory = _DownstreamFactory(reactor=self.reactor)
        factory.setProtocolOptions(**_OPTIONS)
        factory.recorder = self
        self._port = self.reactor.listenTCP(0, factory, interface=interface)
        return self._port

    @property
    def url(self) -> str:
        assert self._port is not None, "call listen() first"
        address = self._port.getHost()
        return f"ws://{address.host}:{address.port}"  # type: ignore[attr-defined]

    def stop(self) -> Deferred[None]:
        """Stop listening, abort the connections still open, and wait until all are gone."""
        port, self._port = self._port, None
        stopped: Deferred[Any] = (
            succeed(None) if port is None else maybeDeferred(port.stopListening)
        )
        for proto in list(self._live):
            proto.dropConnection(abort=True)
        return stopped.addCallback(lambda _: self._whenIdle())

    def _whenIdle(self) -> Deferred[None]:
        if not self._live:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._idleWaiters.append(d)
        return d

    def connectionMade(self, proto: Any) -> None:
        self._live.add(proto)

    def connectionLost(self, proto: Any) -> None:
        self._live.discard(proto)
        if not self._live:
            waiters, self._idleWaiters = self._idleWaiters, []
            for d in waiters:
                d.callback(None)

    def newConnection(self) -> int:
        self._connections += 1
        return self._connections

    def connectUpstream(self, downstream: _DownstreamProtocol) -> None:
        parts = urlsplit(self.upstreamUrl)
        factory = _UpstreamFactory(self.upstreamUrl, reactor=self.reactor)
        factory.setProtocolOptions(**_OPTIONS)
        factory.downstream = downstream
        self.reactor.connectTCP(parts.hostname or "127.0.0.1", parts.port or 80, factory)


class _Tracked(NoDelayMixin):
    """Mixin: report the TCP connection's life to the recorder (for a clean shutdown)."""

    def _recorder(self) -> WebSocketRecorder:
        raise NotImplementedError

    def connectionMade(self) -> None:
        self._recorder().connectionMade(self)
        super().connectionMade()  # type: ignore[misc]

    def connectionLost(self, reason: Any) -> None:
        try:
            super().connectionLost(reason)  # type: ignore[misc]
        finally:
            self._recorder().connectionLost(self)


class _DownstreamProtocol(_Tracked, WebSocketServerProtocol):  # type: ignore[misc]
    """The client's side of the proxy."""

    def _recorder(self) -> WebSocketRecorder:
        recorder: WebSocketRecorder = self.factory.recorder
        return recorder

    recorder: WebSocketRecorder
    connection: int
    upstream: _UpstreamProtocol | None
    pending: list[tuple[bytes, bool]]
    closed: bool

    def onConnect(self, request: Any) -> None:
        self.recorder = self.factory.recorder
        self.connection = self.recorder.newConnection()
        self.upstream = None
        self.pending = []
        self.closed = False
        self.recorder.upgradeHeaders.append(dict(request.headers))
        self.recorder.connectUpstream(self)

    def onOpen(self) -> None:
        self.recorder.record(self.connection, CLIENT_TO_SERVER, "open")

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.recorder.record(
            self.connection, CLIENT_TO_SERVER, "binary" if isBinary else "text", payload
        )
        if self.upstream is None:
            self.pending.append((payload, isBinary))
        else:
            self.upstream.sendMessage(payload, isBinary)

    def upstreamOpened(self, upstream: _UpstreamProtocol) -> None:
        self.upstream = upstream
        pending, self.pending = self.pending, []
        for payload, isBinary in pending:
            upstream.sendMessage(payload, isBinary)
        if self.closed:
            upstream.dropConnection(abort=True)

    def upstreamClosed(self) -> None:
        if not self.closed:
            self.dropConnection(abort=True)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if getattr(self, "recorder", None) is None:
            return  # the upgrade never completed
        self.closed = True
        self.recorder.record(self.connection, CLIENT_TO_SERVER, "close", str(code).encode())
        if self.upstream is not None:
            self.upstream.dropConnection(abort=True)


class _UpstreamProtocol(_Tracked, WebSocketClientProtocol):  # type: ignore[misc]
    """The exec-server's side of the proxy."""

    def _recorder(self) -> WebSocketRecorder:
        recorder: WebSocketRecorder = self.factory.downstream.recorder
        return recorder

    def onOpen(self) -> None:
        self.downstream: _DownstreamProtocol = self.factory.downstream
        self.downstream.upstreamOpened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        down = self.downstream
        down.recorder.record(
            down.connection, SERVER_TO_CLIENT, "binary" if isBinary else "text", payload
        )
        down.sendMessage(payload, isBinary)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        down: _DownstreamProtocol = self.factory.downstream
        down.recorder.record(down.connection, SERVER_TO_CLIENT, "close", str(code).encode())
        down.upstreamClosed()


class _DownstreamFactory(WebSocketServerFactory):  # type: ignore[misc]
    protocol = _DownstreamProtocol
    recorder: WebSocketRecorder


class _UpstreamFactory(WebSocketClientFactory):  # type: ignore[misc]
    protocol = _UpstreamProtocol
    downstream: _DownstreamProtocol

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        log.warn("ws recorder: cannot reach {url}: {reason}", url=self.url, reason=reason.value)
        down = self.downstream
        down.recorder.record(down.connection, SERVER_TO_CLIENT, "close", b"connect-failed")
        down.upstreamClosed()
