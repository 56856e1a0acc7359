"""``twistd codex-rendezvous``: the command line and the ``IService`` it makes."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any
from urllib.parse import urlsplit

from twisted.application.service import IService
from twisted.internet.defer import TimeoutError, ensureDeferred
from twisted.logger import ILogObserver, Logger
from twisted.python import usage

from twisted_exec.net.httpguard import DEFAULT_REQUEST_TIMEOUT
from twisted_exec.net.listen import (
    ListenAddress,
    ListeningService,
    exitCleanlyAfterSignal,
    failIfBusy,
    logToStderrUnder,
    parseListenUrl,
    printToStdout,
)
from twisted_exec.net.logs import LoggingMultiService, installObserver, observerForTwistd
from twisted_exec.net.metrics_web import MetricsService
from twisted_exec.net.quietsite import silenceAccessLog
from twisted_exec.net.secretenv import SECRET_VARIABLES, scrubOwnEnvironment
from twisted_exec.net.twistdopts import OperatorOptions
from twisted_exec.rendezvous.auth import (
    DEFAULT_SIGNATURE_TTL,
    TOKENS_ENV,
    TokenConfigError,
    TokenSet,
    UrlSigner,
)
from twisted_exec.rendezvous.router import MAX_STREAMS_PER_HARNESS
from twisted_exec.rendezvous.server import RendezvousLimits, RendezvousServer
from twisted_exec.rendezvous.tenancy import DEFAULT_MAX_EXECUTORS

log = Logger()

DEFAULT_LISTEN = "http://127.0.0.1:8765"


def parseListen(url: str) -> ListenAddress:
    """``http://IP:PORT`` → address (port 0 picks a free one); a clear ValueError otherwise."""
    return parseListenUrl(url, "http", "")


class RendezvousService(ListeningService):
    """Listens for the registry and both websocket routes; announces the bound base URL."""

    listeningMessage = "codex rendezvous listening on {url}"

    def __init__(
        self,
        reactor: Any,
        server: RendezvousServer,
        listenUrl: str,
        *,
        announce: Callable[[str], None] | None = None,
        logToStderr: bool = False,
        logObserver: ILogObserver | None = None,
    ) -> None:
        super().__init__(reactor, parseListen(listenUrl), announce)
        self.server = server
        self.logToStderr = logToStderr
        self.logObserver = logObserver

    def setServiceParent(self, parent: Any) -> None:
        """Under ``twistd -n`` without ``--logfile``, logs go to stderr: stdout is the URL."""
        super().setServiceParent(parent)
        if self.logObserver is not None:
            installObserver(parent, self.logObserver)
        elif self.logToStderr:
            logToStderrUnder(parent)

    def makeFactory(self) -> Any:
        return silenceAccessLog(self.server.site())

    def stopService(self) -> Any:
        super().stopService()
        return ensureDeferred(self._stop())

    async def _stop(self) -> None:
        await self.stopListening()
        self.server.closeAll()
        closing = self.server.whenAllClosed()
        closing.addTimeout(self.closeTimeout, self.reactor)
        with suppress(TimeoutError):
            await closing
        self.server.abortAll()
        exitCleanlyAfterSignal(self.reactor)


class RendezvousOptions(OperatorOptions):
    programName = "twistd codex-rendezvous"
    synopsis = "[--listen http://IP:PORT] [--public-url URL] [--tokens-file FILE]"
    longdesc = (
        "Run an executor registry and relay rendezvous. Executors register with POST "
        "{URL}/cloud/executor/{ID}/register and dial the signed one-time websocket URL they get "
        "back; harnesses connect to {URL}/harness/{ID} with a bearer token and exchange relay "
        "frames with that executor. Codex 0.171 executors and harnesses use the environment "
        "registry instead (POST {URL}/cloud/environment/{ID}/register, /connect, /validate) "
        "and Noise-encrypted relays the rendezvous routes without decrypting. "
        "Accepted bearer tokens come from --tokens-file, else "
        f"${TOKENS_ENV} (comma or space separated), else $CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN; "
        "never from the command line. The bound URL is printed on stdout (port 0 picks one)."
    )
    optParameters: list[list[Any]] = [
        ["listen", None, DEFAULT_LISTEN, "Address to serve on: http://IP:PORT (port 0 picks one)."],
        [
            "public-url",
            None,
            None,
            "Base URL executors and harnesses reach this service by (http:// or https://, e.g. "
            "behind a TLS proxy); default: the Host header of each registration.",
        ],
        ["tokens-file", None, None, "File of accepted bearer tokens, one per line (# comments)."],
        [
            "metrics-listen",
            None,
            None,
            "Also serve /metrics (Prometheus text) on this http://IP:PORT; /metrics on --listen "
            "is always there.",
        ],
        [
            "signature-ttl",
            None,
            DEFAULT_SIGNATURE_TTL,
            "Seconds a registered executor URL stays valid (it is also single-use).",
            float,
        ],
        [
            "max-streams-per-harness",
            None,
            MAX_STREAMS_PER_HARNESS,
            "Streams one harness websocket may hold; a frame opening one more gets a reset "
            "(0: no limit).",
            int,
        ],
        [
            "max-executors-per-token",
            None,
            DEFAULT_MAX_EXECUTORS,
            "Executor ids one token may register (a tokens-file line may say otherwise with "
            "max-executors=N; 0: no limit).",
            int,
        ],
        [
            "max-connections-per-ip",
            None,
            RendezvousLimits.maxConnectionsPerIp,
            "Open TCP connections from one peer address (0: no limit).",
            int,
        ],
        [
            "max-connections",
            None,
            RendezvousLimits.maxConnections,
            "Open TCP connections in total (0: no limit).",
            int,
        ],
        [
            "request-timeout",
            None,
            DEFAULT_REQUEST_TIMEOUT,
            "Seconds an HTTP request (headers and body) may take to arrive; a trickle of bytes "
            "does not extend it.",
            float,
        ],
    ]

    _LIMITS = (
        "max-streams-per-harness",
        "max-executors-per-token",
        "max-connections-per-ip",
        "max-connections",
    )

    def postOptions(self) -> None:
        try:
            parseListen(self["listen"])
        except ValueError as err:
            raise usage.UsageError(str(err)) from None
        public = self["public-url"]
        if public is not None and urlsplit(public).scheme not in ("http", "https"):
            raise usage.UsageError(f"--public-url expects http(s)://HOST[:PORT], got {public!r}")
        if self["signature-ttl"] <= 0:
            raise usage.UsageError("--signature-ttl must be positive")
        for name in self._LIMITS:
            if self[name] < 0:
                raise usage.UsageError(f"--{name} must be 0 or more, got {self[name]}")
        if self["request-timeout"] <= 0:
            raise usage.UsageError("--request-timeout must be positive")
        if self["metrics-listen"] is not None:
            try:
                parseListenUrl(self["metrics-listen"], "http", "")
            except ValueError as err:
                raise usage.UsageError(str(err).replace("--listen", "--metrics-listen")) from None


def makeService(options: RendezvousOptions, reactor: Any = None) -> IService:
    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = _reactor
    try:
        tokens = TokenSet.load(options["tokens-file"])
    except TokenConfigError as err:
        raise SystemExit(f"Error: {err}") from None
    # Read once; gone from /proc/<pid>/environ from now on (net/secretenv).
    scrubOwnEnvironment(SECRET_VARIABLES)
    limits = RendezvousLimits(
        maxStreamsPerHarness=options["max-streams-per-harness"] or None,
        maxExecutorsPerToken=options["max-executors-per-token"] or None,
        maxConnectionsPerIp=options["max-connections-per-ip"] or None,
        maxConnections=options["max-connections"] or None,
        requestTimeout=options["request-timeout"],
    )
    server = RendezvousServer(
        reactor,
        tokens,
        signer=UrlSigner(reactor, ttl=options["signature-ttl"]),
        publicUrl=options["public-url"],
        limits=limits,
    )
    twistd = getattr(options, "parent", None)
    logToStderr = bool(
        twistd is not None
        and hasattr(twistd, "get")
        and twistd.get("nodaemon")
        and not twistd.get("logfile")
        and not twistd.get("logger")
    )
    observer = observerForTwistd(twistd, options["log-format"], options["log-level"])
    service = RendezvousService(
        reactor,
        server,
        options["listen"],
        announce=printToStdout,
        logToStderr=logToStderr and observer is None,
    )
    service.exitOnListenError = True
    if twistd is not None:
        failIfBusy(service.address)
    top = LoggingMultiService(observer)
    service.setServiceParent(top)
    if options["metrics-listen"] is not None:
        MetricsService(reactor, server.metrics, options["metrics-listen"]).setServiceParent(top)
    return top
