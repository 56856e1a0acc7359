"""``RendezvousServer``: registry, websocket admission and router, as one twisted.web resource.

One port serves everything (``/cloud/...``, ``/executor/{id}``, ``/harness/{id}``,
``/readyz``), so a user points the executor and the harness at the same base URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from autobahn.twisted.resource import WebSocketResource
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from twisted_exec.net.metrics import MetricsResource, RendezvousMetrics
from twisted_exec.rendezvous.auth import TokenSet, UrlSigner
from twisted_exec.rendezvous.environment_resource import CloudRoot, EnvironmentRendezvous
from twisted_exec.rendezvous.registry import CloudResource
from twisted_exec.rendezvous.router import Router
from twisted_exec.rendezvous.websocket import (
    ExecutorLink,
    HarnessLink,
    RendezvousWebSocket,
    RendezvousWebSocketFactory,
)

log = Logger()

# A relay frame carries one whole JSON-RPC message: fs/readFile of a 48 MiB file is 64 MiB of
# base64 JSON. The executor's own limit is the same.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
PING_INTERVAL = 30.0
IDLE_TIMEOUT = 90.0


class _AnyChild(Resource):
    """``/executor/<anything>`` and ``/harness/<anything>`` → the websocket resource."""

    def __init__(self, child: Any) -> None:
        super().__init__()
        self._child = child

    def getChild(self, path: bytes, request: Request) -> Any:
        return self._child


class _Ready(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        return b"ok\n"


def rendezvousMetrics(server: RendezvousServer) -> RendezvousMetrics:
    """The server's metrics, with the gauges read from its state at scrape time."""
    metrics = RendezvousMetrics()
    router = server.router
    metrics.gaugeFrom(
        "codex_rendezvous_executors_connected",
        "Executors with a websocket to the rendezvous now",
        lambda: sum(1 for r in router.records() if r.connected),
    )
    metrics.gaugeFrom(
        "codex_rendezvous_harnesses_connected",
        "Harness websockets open now",
        lambda: sum(server.harnessCounts().values()),
    )
    metrics.gaugeFrom(
        "codex_rendezvous_streams", "Relay streams routed now", lambda: router.routeCount()
    )
    return metrics


class RendezvousServer:
    """The registry + rendezvous.

    ``tokens`` is ``None`` only for test doubles that want the harness route open; the service
    always passes a :class:`TokenSet`. ``answerPings`` exists for fault tests (a half-open
    rendezvous); ``checkSignature`` likewise.
    """

    linkForExecutor: type[ExecutorLink] = ExecutorLink

    def __init__(
        self,
        clock: IReactorTime,
        tokens: TokenSet | None,
        *,
        signer: UrlSigner | None = None,
        publicUrl: str | None = None,
        maxMessageBytes: int = MAX_MESSAGE_BYTES,
        pingInterval: float | None = PING_INTERVAL,
        idleTimeout: float | None = IDLE_TIMEOUT,
    ) -> None:
        self.clock = clock
        self.tokens = tokens
        self.signer = signer if signer is not None else UrlSigner(clock)
        self.publicUrl = publicUrl
        self.router = Router(clock)
        #: Codex 0.171's environment registry and Noise relay routes (their own router).
        self.environments = EnvironmentRendezvous(clock, self.signer)
        self.answerPings = True
        #: Every websocket is pinged this often, and dropped when nothing (pong, ping, frame)
        #: came from it for ``idleTimeout`` seconds: a half-open harness would otherwise hold
        #: its streams (and the sessions behind them) forever. ``None`` disables either.
        self.pingInterval = pingInterval
        self.idleTimeout = idleTimeout
        self.checkSignature = True
        self.websocketFactory = RendezvousWebSocketFactory(self, maxMessageBytes)
        self.protocols: set[RendezvousWebSocket] = set()
        self._emptyWaiters: list[Deferred[None]] = []
        self.metrics = rendezvousMetrics(self)
        self.router.onRouted = self.metrics.routed

    def harnessCounts(self) -> dict[str, int]:
        """Harness websockets open now, by executor id."""
        counts: dict[str, int] = {}
        for protocol in self.protocols:
            link = protocol.link
            if isinstance(link, HarnessLink):
                counts[link.executorId] = counts.get(link.executorId, 0) + 1
        return counts

    def __repr__(self) -> str:
        return f"<RendezvousServer tokens={self.tokens!r} signer={self.signer!r}>"

    def resource(self) -> IResource:
        root = Resource()
        websocket = WebSocketResource(self.websocketFactory)
        root.putChild(b"cloud", CloudRoot(self, CloudResource(self)))
        root.putChild(b"executor", _AnyChild(websocket))
        root.putChild(b"harness", _AnyChild(websocket))
        root.putChild(b"ws", _AnyChild(websocket))  # /ws/environment/{id}?role=...
        root.putChild(b"readyz", _Ready())
        root.putChild(b"metrics", MetricsResource(self.metrics))
        return root

    def executorUrl(self, executorId: str, wsBase: str) -> str:
        """A fresh signed one-time URL for ``executorId`` under ``wsBase`` (``ws://host:port``)."""
        sig = self.signer.sign(executorId)
        return f"{wsBase.rstrip('/')}/executor/{quote(executorId, safe='')}?sig={sig}"

    # -- websocket admission (raise ConnectionDeny to refuse) -------------------------------

    def admitExecutor(
        self, protocol: RendezvousWebSocket, executorId: str, request: ConnectionRequest
    ) -> ExecutorLink:
        sig = request.params.get("sig", [None])[0]
        if self.checkSignature and not self.signer.verify(executorId, sig):
            log.info("executor {ident!r} refused: bad or spent signature", ident=executorId)
            self.metrics.websocket("executor", "refused")
            raise ConnectionDeny(403, "invalid, expired or spent executor signature")
        self.protocols.add(protocol)
        self.metrics.websocket("executor", "admitted")
        return self.linkForExecutor(protocol, executorId, request)

    def admitHarness(
        self, protocol: RendezvousWebSocket, executorId: str, request: ConnectionRequest
    ) -> HarnessLink:
        try:
            link = self._admitHarness(protocol, executorId, request)
        except ConnectionDeny:
            self.metrics.websocket("harness", "refused")
            raise
        self.metrics.websocket("harness", "admitted")
        return link

    def _admitHarness(
        self, protocol: RendezvousWebSocket, executorId: str, request: ConnectionRequest
    ) -> HarnessLink:
        if self.tokens is not None and not self.tokens.checkAuthorization(
            request.headers.get("authorization")
        ):
            raise ConnectionDeny(401, "invalid bearer token")
        record = self.router.record(executorId)
        if record is None:
            raise ConnectionDeny(404, f"unknown executor {executorId!r}")
        if not record.connected:
            raise ConnectionDeny(503, f"executor {executorId!r} is not connected")
        self.protocols.add(protocol)
        return HarnessLink(protocol, executorId)

    def forget(self, protocol: RendezvousWebSocket) -> None:
        self.protocols.discard(protocol)
        if not self.protocols:
            waiters, self._emptyWaiters = self._emptyWaiters, []
            for d in waiters:
                d.callback(None)

    def whenAllClosed(self) -> Deferred[None]:
        """Fires once no admitted websocket is left."""
        if not self.protocols:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._emptyWaiters.append(d)
        return d

    def closeAll(self, code: int = 1000, reason: str = "rendezvous shutting down") -> None:
        """Start a close handshake on every websocket (used when the service stops)."""
        for protocol in list(self.protocols):
            if protocol.state == RendezvousWebSocket.STATE_OPEN:
                protocol.sendClose(code, reason)

    def abortAll(self) -> None:
        for protocol in list(self.protocols):
            transport: Any = protocol.transport
            if transport is not None:
                transport.abortConnection()
