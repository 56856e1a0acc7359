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

from twisted_exec.net.listen import (
    ListenAddress,
    ListeningService,
    exitCleanlyAfterSignal,
    failIfBusy,
    logToStderrUnder,
    parseListenUrl,
    printToStdout,
)
from twisted_exec.net.logs import (
    LoggingMultiService,
    QuietSite,
    installObserver,
    observerForTwistd,
)
from twisted_exec.net.metrics import MetricsService
from twisted_exec.net.twistdopts import OperatorOptions
from twisted_exec.rendezvous.auth import (
    DEFAULT_SIGNATURE_TTL,
    TOKENS_ENV,
    TokenConfigError,
    TokenSet,
    UrlSigner,
)
from twisted_exec.rendezvous.server import RendezvousServer

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
        return QuietSite(self.server.resource())

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
    ]

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
        raise SystemExit(f"Error: {err}") from None  # a configuration error: exit 1
    server = RendezvousServer(
        reactor,
        tokens,
        signer=UrlSigner(reactor, ttl=options["signature-ttl"]),
        publicUrl=options["public-url"],
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
