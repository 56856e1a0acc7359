"""``RendezvousServer``: registry, websocket admission and router, as one twisted.web resource.

One port serves everything (``/cloud/...``, ``/executor/{id}``, ``/harness/{id}``,
``/readyz``), so a user points the executor and the harness at the same base URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from autobahn.twisted.resource import WebSocketResource
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.http_headers import Headers
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from twisted_exec.net.httpguard import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_REQUEST_TIMEOUT,
    ConnectionLimiter,
    GuardedSite,
    Verdict,
)
from twisted_exec.net.metrics import RendezvousMetrics
from twisted_exec.net.metrics_web import MetricsResource
from twisted_exec.rendezvous.auth import TokenSet, UrlSigner
from twisted_exec.rendezvous.environment_resource import CloudRoot, EnvironmentRendezvous
from twisted_exec.rendezvous.registry import CloudResource, errorBody
from twisted_exec.rendezvous.router import MAX_STREAMS_PER_HARNESS, Router
from twisted_exec.rendezvous.tenancy import DEFAULT_MAX_EXECUTORS, EXECUTOR, Tenancy
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


@dataclass(frozen=True)
class RendezvousLimits:
    """What one peer may take of the rendezvous (``twistd codex-rendezvous`` options)."""

    maxStreamsPerHarness: int | None = MAX_STREAMS_PER_HARNESS
    maxExecutorsPerToken: int | None = DEFAULT_MAX_EXECUTORS
    maxConnectionsPerIp: int | None = 256
    maxConnections: int | None = 4096
    maxBodyBytes: int | None = DEFAULT_MAX_BODY_BYTES
    requestTimeout: float | None = DEFAULT_REQUEST_TIMEOUT


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
        limits: RendezvousLimits | None = None,
    ) -> None:
        self.clock = clock
        self.tokens = tokens
        self.signer = signer if signer is not None else UrlSigner(clock)
        self.publicUrl = publicUrl
        self.limits = limits if limits is not None else RendezvousLimits()
        #: Who owns which id and may reach what (``tenancy``); with ``tokens=None`` (an open
        #: test rendezvous) every rule admits everyone.
        self.tenancy = Tenancy(self.limits.maxExecutorsPerToken)
        self.router = Router(clock, self.limits.maxStreamsPerHarness)
        self.connections = ConnectionLimiter(
            self.limits.maxConnectionsPerIp, self.limits.maxConnections
        )
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

    def site(self) -> GuardedSite:
        """The HTTP side: deadlines, the token (and the id's owner) checked before any body is
        read, a body cap, connection caps (``net/httpguard``)."""
        return GuardedSite(
            self.resource(),
            self.clock,
            requestTimeout=self.limits.requestTimeout,
            maxBodyBytes=self.limits.maxBodyBytes,
            earlyVerdict=self.earlyVerdict,
            limiter=self.connections,
        )

    def earlyVerdict(
        self, method: bytes, path: bytes, headers: Headers, length: int | None
    ) -> Verdict | None:
        """A ``/cloud/...`` request's answer from its headers alone, when they settle it."""
        if self.tokens is None or not path.startswith(b"/cloud/"):
            return None
        values = headers.getRawHeaders(b"authorization")
        header = values[0] if values else None
        principal = self.tokens.principalFor(header)
        if principal is None:
            return Verdict(
                401,
                errorBody("unauthorized", "invalid bearer token"),
                (("www-authenticate", 'Bearer realm="codex-rendezvous"'),),
            )
        parts = [unquote(p.decode("latin-1")) for p in path.split(b"?")[0].split(b"/")[2:]]
        isRegistration = len(parts) == 3 and parts[0] == "executor" and parts[2] == "register"
        if method == b"POST" and isRegistration:
            denial = self.tenancy.registrationDenial(principal, EXECUTOR, parts[1])
            if denial is not None:
                return Verdict(denial.status, errorBody(denial.code, denial.message))
        return None

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
        principal = None
        if self.tokens is not None:
            principal = self.tokens.principalFor(request.headers.get("authorization"))
            if principal is None:
                raise ConnectionDeny(401, "invalid bearer token")
        record = self.router.record(executorId)
        if record is None:
            raise ConnectionDeny(404, f"unknown executor {executorId!r}")
        # Registration already tells whether an id is free (200) or held (409); what a token
        # must not do is reach another tenant's executor.
        denial = self.tenancy.reachDenial(principal, EXECUTOR, executorId)
        if denial is not None:
            log.info(
                "harness of {who} refused for executor {ident!r}: not its tenant",
                who=principal.name if principal is not None else "?",
                ident=executorId,
            )
            raise ConnectionDeny(403, denial.message)
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
