"""``twistd codex-executor`` command line, and the service it makes."""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import urlsplit

from twisted.application.service import IService
from twisted.python import usage

from twisted_exec.executor import secrets, stdin_watch
from twisted_exec.executor.executor import MAX_PROCESSES, ExecutorLimits
from twisted_exec.executor.remote_services import addRemoteService, environmentBearer
from twisted_exec.executor.resources.processes import RETAIN_CLOSED
from twisted_exec.executor.service import ExecutorService, LocalWebSocketService
from twisted_exec.executor.transports.defaults import DEFAULT_MAX_MESSAGE_BYTES, MAX_STREAMS
from twisted_exec.net.leanreactor import UNUSED_OPTIONAL, leanImports, withoutOptional
from twisted_exec.net.listen import failIfBusy, parseListenUrl, printToStdout
from twisted_exec.net.logs import observerForTwistd
from twisted_exec.net.secretenv import SecretScrubber
from twisted_exec.net.twistdopts import OperatorOptions

TOKEN_VARIABLE = "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN"
DEFAULT_LISTEN = "ws://127.0.0.1:0"


class ExecutorOptions(OperatorOptions):
    programName = "twistd codex-executor"
    synopsis = (
        "[--listen ws://IP:PORT | --listen stdio] | [--remote URL --executor-id ID [--name NAME]]"
        " | [--remote URL --environment-id ID [--registration-bearer-stdin]]"
    )
    longdesc = (
        "Run a Codex exec-server executor. Local mode (the default) serves JSON-RPC over a "
        "websocket at --listen and prints the bound ws:// URL on stdout (port 0 picks a free "
        "port), or over stdin/stdout with --listen stdio. Remote mode registers with the "
        "executor registry at --remote (bearer token from the environment variable "
        f"{TOKEN_VARIABLE}) and serves harnesses through the rendezvous websocket it returns, "
        "reconnecting with exponential backoff (1 s doubling to 30 s). With --environment-id "
        "instead of --executor-id it registers an environment as Codex 0.171 does and every "
        "relay stream is end-to-end encrypted (Noise_hybridIK_25519+MLKEM768_AESGCM_SHA256)."
    )
    optParameters: list[list[Any]] = [
        [
            "listen",
            None,
            None,
            "Local mode address: ws://IP:PORT (port 0 picks one; the bound URL is printed) "
            f"or stdio. Default {DEFAULT_LISTEN} unless --remote is given.",
        ],
        [
            "remote",
            None,
            None,
            "Remote mode: base URL of the executor registry (POST "
            "{URL}/cloud/executor/{ID}/register). The bearer token is read from "
            f"${TOKEN_VARIABLE}, never from the command line.",
        ],
        [
            "executor-id",
            None,
            None,
            "Remote mode: this executor's id in the registry (0.131 clear relay).",
        ],
        [
            "environment-id",
            None,
            None,
            "Remote mode: register this environment (POST {URL}/cloud/environment/{ID}/register, "
            "bearer from --registration-bearer-stdin, else $CODEX_API_KEY, else "
            f"${TOKEN_VARIABLE}) and serve Noise-encrypted relay streams, as Codex 0.171.",
        ],
        [
            "name",
            None,
            None,
            "Remote mode: a human-readable executor name (logs; our rendezvous lists it).",
        ],
        [
            "metrics-listen",
            None,
            None,
            "Serve /metrics (Prometheus text) on this http://IP:PORT (remote mode has no "
            "listener of its own; in local mode /metrics is also on --listen).",
        ],
        [
            "session-ttl",
            None,
            10.0,
            "Seconds a session whose transport went away waits to be resumed before its "
            "processes are killed.",
            float,
        ],
        [
            "max-read-file-bytes",
            None,
            512 * 1024 * 1024,
            "Largest file fs/readFile returns, in bytes (the reference's limit: 512 MiB; "
            "0: no limit).",
            int,
        ],
        [
            "max-message-bytes",
            None,
            DEFAULT_MAX_MESSAGE_BYTES,
            "Largest message (a local websocket message, a stdio line or a relay frame), in "
            "bytes, received or sent: a larger inbound websocket message closes that websocket "
            "with code 1009, a larger stdio line is dropped with a log line, a larger reply "
            "becomes a JSON-RPC error naming the limit (default: the rendezvous' 64 MiB).",
            int,
        ],
        [
            "max-streams",
            None,
            MAX_STREAMS,
            "Remote mode: concurrent relay streams (sessions) per rendezvous websocket; one "
            "more gets a JSON-RPC error and a reset (0: no limit).",
            int,
        ],
        [
            "max-processes",
            None,
            MAX_PROCESSES,
            "Live processes per session; process/start beyond it is an error (0: no limit).",
            int,
        ],
        [
            "max-read-bytes",
            None,
            0,
            "Most output bytes one process/read returns (0: bounded only by the 1 MiB retained "
            "per process); the harness pages on with afterSeq.",
            int,
        ],
        [
            "concurrent-requests",
            None,
            1,
            "Requests of one connection (or relay stream) handled at once, as 0.171's option: "
            "with 1 (the default) one at a time, in order; with N, up to N in flight and "
            "replies leave as they are ready (out of order).",
            int,
        ],
        [
            "retain-closed-processes",
            None,
            RETAIN_CLOSED,
            "Closed processes per session whose output stays readable; older ones keep only "
            "their id and exit code (the reference keeps them all until the session ends).",
            int,
        ],
        *secrets.WS_AUTH_PARAMETERS,
    ]
    optFlags: list[list[Any]] = [
        *secrets.SECURITY_FLAGS,
        [
            "exit-on-stdin-close",
            None,
            "Exit when the parent-owned stdin pipe closes (as Codex 0.171; also "
            "$CODEX_EXEC_SERVER_EXIT_ON_STDIN_CLOSE). Not with --listen stdio, whose stdin is "
            "the protocol.",
        ],
    ]

    _LIMITS = (
        "retain-closed-processes",
        "max-read-file-bytes",
        "max-message-bytes",
        "max-streams",
        "max-processes",
        "max-read-bytes",
    )

    def postOptions(self) -> None:
        remote = self["remote"]
        if remote is not None:
            if not remote.strip():
                raise usage.UsageError("--remote needs the registry's base URL")
            if self["executor-id"] is not None and self["environment-id"] is not None:
                raise usage.UsageError("give either --executor-id or --environment-id, not both")
            if self["environment-id"] is not None:
                if not self["environment-id"].strip():
                    raise usage.UsageError(
                        "environment id is required for remote exec-server registration "
                        "(--environment-id ID)"
                    )
            elif not (self["executor-id"] or "").strip():
                raise usage.UsageError(
                    "executor id is required for remote exec-server registration (--executor-id ID)"
                )
        elif (
            self["executor-id"] is not None
            or self["environment-id"] is not None
            or self["name"] is not None
        ):
            raise usage.UsageError(
                "--executor-id, --environment-id and --name are for remote mode (--remote URL)"
            )
        for name in self._LIMITS:
            if self[name] < 0:
                raise usage.UsageError(f"--{name} must be 0 or more, got {self[name]}")
        if self["concurrent-requests"] < 1:
            raise usage.UsageError(
                f"--concurrent-requests must be at least 1, got {self['concurrent-requests']}"
            )
        if self["max-message-bytes"] == 0:
            raise usage.UsageError("--max-message-bytes must be more than 0")
        if self["metrics-listen"] is not None:
            try:
                parseListenUrl(self["metrics-listen"], "http", "")
            except ValueError as err:
                raise usage.UsageError(str(err).replace("--listen", "--metrics-listen")) from None
        listen = self["listen"]
        if listen is None and remote is None:
            self["listen"] = listen = DEFAULT_LISTEN
        if listen is not None and listen not in ("stdio", "stdio://"):
            try:
                parseListenUrl(listen)
            except ValueError as err:
                raise usage.UsageError(str(err)) from None
        secrets.checkOptions(self)


def makeService(options: ExecutorOptions, reactor: Any = None) -> IService:
    """Build the executor service for parsed options."""
    # stdio and the local listener speak no TLS, nor remote mode with a plain http registry
    # until a wss or https URL comes: the reactor and the remote stack without pyOpenSSL, loaded
    # on first use (~40 ms and ~12 MiB; net/leanreactor.py)
    deferTLS = options["remote"] is None or not _isHttps(options["remote"])
    if reactor is None and deferTLS:
        from twisted_exec.net.leanreactor import importReactorDeferringTLS

        reactor = importReactorDeferringTLS()
    elif reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = _reactor
    limits = ExecutorLimits(
        maxMessageBytes=options["max-message-bytes"],
        maxReadFileBytes=options["max-read-file-bytes"] or None,
        maxProcesses=options["max-processes"] or None,
        maxReadBytes=options["max-read-bytes"] or None,
        retainClosed=options["retain-closed-processes"],
        concurrentRequests=options["concurrent-requests"],
    )
    maxMessageBytes: int = options["max-message-bytes"]
    # Credentials first: read them, then blank them from our environment block, and let no
    # child see them whatever its envPolicy (executor/secrets.py).
    scrubber = SecretScrubber()
    wsAuth = secrets.wsAuth(options, scrubber)
    registrationEnv = (
        secrets.registrationEnviron(options) if options["remote"] is not None else None
    )
    environmentToken = (
        environmentBearer(options, registrationEnv or {})
        if options["remote"] is not None and options["environment-id"] is not None
        else None
    )
    secrets.secureEnvironment(
        scrubber,
        registrationEnv.get(secrets.REGISTRATION_TOKEN_ENV) if registrationEnv else None,
        environmentToken,
    )
    stdio = options["listen"] in ("stdio", "stdio://")
    # Only the local listener and --metrics-listen serve /metrics: without either (stdio, remote
    # mode alone) nobody can read a count, so count nothing (no prometheus_client, ~1.2 MiB)
    countMetrics = options["metrics-listen"] is not None or (
        options["listen"] is not None and not stdio
    )
    top = ExecutorService(
        reactor,
        ttl=options["session-ttl"],
        limits=limits,
        scrubber=scrubber,
        metrics=countMetrics,
    )
    twistd = getattr(options, "parent", None)
    if twistd is not None and hasattr(twistd, "get"):
        top.logToStderr = bool(
            twistd.get("nodaemon") and not twistd.get("logfile") and not twistd.get("logger")
        )
        top.logObserver = observerForTwistd(twistd, options["log-format"], options["log-level"])
    if options["metrics-listen"] is not None:
        from twisted_exec.net.metrics_web import MetricsService

        metrics = top.executor.metrics
        assert metrics is not None  # countMetrics above

        MetricsService(reactor, metrics, options["metrics-listen"]).setServiceParent(top)
    factory = top.executor.processorFactory
    listen = options["listen"]
    if stdio:
        from twisted_exec.executor.transports.stdio import makeStdioService

        makeStdioService(reactor, factory, top, maxLineBytes=maxMessageBytes).setServiceParent(top)
    elif listen is not None:
        if twistd is not None:
            failIfBusy(parseListenUrl(listen))
        try:
            local = LocalWebSocketService(
                reactor,
                factory,
                listen,
                announce=printToStdout,
                maxMessageBytes=maxMessageBytes,
                auth=wsAuth,
                insecureNoAuth=bool(options["insecure-no-auth"]),
                metricsFrom=lambda: top.executor.metrics,
            )
        except ValueError as err:  # a bind beyond loopback without --ws-auth
            raise SystemExit(f"Error: {err}") from None
        local.exitOnListenError = twistd is not None
        local.setServiceParent(top)
    if options["remote"] is not None:
        with leanImports() if deferTLS else withoutOptional(*UNUSED_OPTIONAL):
            addRemoteService(
                options,
                reactor,
                factory,
                top,
                twistd,
                registrationEnv=registrationEnv or {},
                environmentToken=environmentToken,
                maxMessageBytes=maxMessageBytes,
                metrics=top.executor.metrics,
            )
    if listen not in ("stdio", "stdio://") and (
        options["exit-on-stdin-close"] or stdin_watch.wantedByEnvironment()
    ):
        stdin_watch.StdinWatch(reactor).setServiceParent(top)
    return top


def _isHttps(url: str) -> bool:
    return urlsplit(url.strip()).scheme.lower() == "https"


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - thin convenience
    """``python -m twisted_exec`` = ``twistd -n codex-executor``."""
    from twisted.scripts.twistd import run

    sys.argv = ["twistd", "-n", "codex-executor", *(argv if argv is not None else sys.argv[1:])]
    run()
