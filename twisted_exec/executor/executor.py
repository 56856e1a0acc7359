"""The executor core, wired once per service: sessions, their resources, the filesystem.

Local websocket, stdio and relay transports all build their processors from one
:class:`Executor`, so a session detached from one transport can be resumed from another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from twisted.logger import Logger
from zope.interface import implementer

from twisted_exec.executor.core.interfaces import IHttpRequester, IProcessTable, ISessionResources
from twisted_exec.executor.core.processor import ExecProcessorFactory
from twisted_exec.executor.core.session import DETACH_TTL, Session, SessionRegistry
from twisted_exec.executor.resources.processes import RETAIN_CLOSED
from twisted_exec.net.secretenv import SecretScrubber

if TYPE_CHECKING:
    from twisted_exec.net.metrics import ExecutorMetrics

log = Logger()


#: Default of ``--max-processes``: live processes per session (the reference has no limit).
MAX_PROCESSES = 128


@dataclass
class ExecutorLimits:
    """Tunable limits of the executor core (None means unlimited); see README "Limits".

    ``retainBytes`` and ``maxReadFileBytes`` default to the reference's values; ``maxProcesses``
    is ours (the reference lets one session fork without bound). ``maxReadBytes`` caps one
    ``process/read`` response's output; ``None`` leaves ``retainBytes`` as the only bound.
    ``retainClosed`` closed processes per session keep their output; older ones are tombstoned
    (see ``processes.py``).
    """

    retainBytes: int = 1 << 20
    maxReadFileBytes: int | None = 512 * 1024 * 1024
    maxProcesses: int | None = MAX_PROCESSES
    maxReadBytes: int | None = None
    retainClosed: int = RETAIN_CLOSED


@implementer(ISessionResources)
class SessionResources:
    """What one session owns: its processes and its HTTP requests."""

    def __init__(self, processes: IProcessTable, http: IHttpRequester) -> None:
        self.processes = processes
        self.http = http

    def close(self) -> None:
        self.processes.killAll()
        self.http.cancelAll()

    def pauseProducing(self) -> None:
        """The session's transport is full: stop reading process pipes and HTTP bodies."""
        self.processes.pauseAll()
        self.http.pauseProducing()

    def resumeProducing(self) -> None:
        self.processes.resumeAll()
        self.http.resumeProducing()


def executorMetrics(registry: SessionRegistry) -> ExecutorMetrics:
    """The executor's metrics, with the gauges read from the session registry at scrape time.

    (prometheus_client is imported here, not at module import: ~0.1 s of start-up.)
    """
    from twisted_exec.net.metrics import ExecutorMetrics

    metrics = ExecutorMetrics()

    def running() -> int:
        total = 0
        for session in registry.sessions():
            resources: Any = session.resources
            total += getattr(getattr(resources, "processes", None), "runningCount", 0)
        return total

    metrics.gaugeFrom(
        "codex_exec_sessions", "Sessions open (attached or detached)", registry.__len__
    )
    metrics.gaugeFrom(
        "codex_exec_sessions_detached",
        "Sessions whose transport went away, waiting to be resumed",
        lambda: sum(1 for session in registry.sessions() if not session.attached),
    )
    metrics.gaugeFrom("codex_exec_processes_running", "Processes whose output is open", running)
    return metrics


class Executor:
    """One executor: a session registry and a processor factory that transports share."""

    def __init__(
        self,
        reactor: Any,
        *,
        ttl: float = DETACH_TTL,
        limits: ExecutorLimits | None = None,
        environ: Mapping[str, str] | None = None,
        scrubber: SecretScrubber | None = None,
    ) -> None:
        from twisted.python.threadpool import ThreadPool

        from twisted_exec.executor.resources.filesystem import FileSystem
        from twisted_exec.executor.resources.offload import OffloadPool

        self.reactor = reactor
        self.limits = limits or ExecutorLimits()
        self.environ = environ
        #: Shared by every session's ProcessTable: credentials never reach a child.
        self.scrubber = scrubber if scrubber is not None else SecretScrubber()
        self.registry = SessionRegistry(reactor, self._makeResources, ttl)
        # fs/* system calls run on our lean pool (same contract as Twisted's ThreadPool; see
        # offload.py for why), stopped in shutdown().
        self.offload = OffloadPool()
        self.filesystem = FileSystem(
            reactor,
            threadpool=cast(ThreadPool, self.offload),
            maxReadBytes=self.limits.maxReadFileBytes,
        )
        from twisted_exec.executor.methods import buildRegistry
        from twisted_exec.executor.methods.environment import LocalEnvironment

        #: Every method of both dialects (executor/methods); more can be added before serving.
        self.methods = buildRegistry()
        # the new 0.171 fs methods: per-connection handles and watch, one inotify hub
        from twisted_exec.executor.methods import fs171

        self.fsStreams = fs171.FsStreams(reactor, self.offload)
        fs171.register(self.methods, self.fsStreams)
        self.environment = LocalEnvironment(environ)
        self.metrics = executorMetrics(self.registry)
        self.processorFactory = ExecProcessorFactory(
            self.registry,
            self.filesystem,
            methods=self.methods,
            environment=self.environment,
            clock=reactor,
            onRequestDone=self.metrics.requestDone,
        )

    def _makeResources(self, session: Session) -> SessionResources:
        from twisted_exec.executor.resources.http_request import HttpRequester
        from twisted_exec.executor.resources.processes import ProcessTable

        processes = ProcessTable(
            self.reactor,
            session.notify,
            retainBytes=self.limits.retainBytes,
            environ=self.environ,
            scrubber=self.scrubber,
            maxProcesses=self.limits.maxProcesses,
            maxReadBytes=self.limits.maxReadBytes,
            retainClosed=self.limits.retainClosed,
        )
        processes.onStarted = self.metrics.processStarted
        return SessionResources(processes, HttpRequester(self.reactor, session.notify))

    def shutdown(self) -> None:
        """End every session and kill every process (service stop)."""
        count = len(self.registry)
        self.registry.closeAll()
        self.fsStreams.close()
        self.offload.stop()
        if count:
            log.info("closed {count} session(s) on shutdown", count=count)
