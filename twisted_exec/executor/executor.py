"""The executor core, wired once per service: sessions, their resources, the filesystem.

Local websocket, stdio and relay transports all build their processors from one
:class:`Executor`, so a session detached from one transport can be resumed from another.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.defer import Deferred, DeferredSemaphore, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from twisted_exec.executor.core.interfaces import IHttpRequester, IProcessTable, ISessionResources
from twisted_exec.executor.core.limits import MAX_PROCESSES, Limits
from twisted_exec.executor.core.processor_factory import ExecProcessorFactory
from twisted_exec.executor.core.session import DETACH_TTL, Session, SessionRegistry
from twisted_exec.executor.resources.containment import Containment
from twisted_exec.net.secretenv import SecretScrubber

if TYPE_CHECKING:
    from twisted_exec.executor.resources.processes import ProcessTable
    from twisted_exec.net.metrics import ExecutorMetrics

log = Logger()


#: The executor's limits: one object for counts and byte budgets (``core/limits.py``). The old
#: name stays for callers that build it by keyword.
ExecutorLimits = Limits

#: Worker threads for spawning processes (off the reactor thread).
SPAWN_THREADS = 4

#: Seconds :meth:`Executor.shutdown` waits for killed processes to end before it gives up.
SHUTDOWN_GRACE = 5.0


@implementer(ISessionResources)
class SessionResources:
    """What one session owns: its processes, its HTTP requests and its share of the fs pool.

    ``fsGate`` admits at most ``Limits.maxFsInFlight`` of the session's ``fs/*`` calls onto
    the shared thread pool at once, so one session cannot take every thread.
    """

    def __init__(
        self, processes: IProcessTable, http: IHttpRequester, maxFsInFlight: int = 4
    ) -> None:
        self.processes = processes
        self.http = http
        self.fsGate = DeferredSemaphore(maxFsInFlight)

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


def whenAllFired(
    clock: IReactorTime, waits: Sequence[Deferred[None]], grace: float
) -> Deferred[int]:
    """Fires with 0 once every one of ``waits`` fired, or after ``grace`` seconds with how many
    had not (never errbacks: a shutdown must go on whatever one process does)."""
    pending = [wait for wait in waits if not wait.called]
    if not pending:
        return succeed(0)
    done: Deferred[int] = Deferred()
    left = [len(pending)]

    def giveUp() -> None:
        if not done.called:
            done.callback(left[0])

    timer = clock.callLater(grace, giveUp)

    def one(result: object) -> None:
        left[0] -= 1
        if left[0] == 0 and not done.called:
            timer.cancel()
            done.callback(0)

    for wait in pending:
        wait.addBoth(one)
    return done


@implementer(IHttpRequester)
class DeferredHttpRequester:
    """A session's ``http/request`` side, built on its first request.

    The real :class:`~twisted_exec.executor.resources.http_request.HttpRequester` imports
    ``twisted.web.client`` (~15 ms and a few MiB) and builds an ``Agent`` with a connection pool:
    every ``initialize`` makes a session, few sessions send ``http/request``.
    """

    def __init__(self, reactor: Any, notify: Any, maxBufferedBody: int) -> None:
        self.reactor = reactor
        self.notify = notify
        self.maxBufferedBody = maxBufferedBody
        self.paused = False
        self.real: IHttpRequester | None = None

    def request(self, p: Any) -> Any:
        if self.real is None:
            from twisted_exec.executor.resources.http_request import HttpRequester

            self.real = HttpRequester(
                self.reactor, self.notify, maxBufferedBody=self.maxBufferedBody
            )
            if self.paused:
                self.real.pauseProducing()
        return self.real.request(p)

    def cancelAll(self) -> None:
        if self.real is not None:
            self.real.cancelAll()

    def pauseProducing(self) -> None:
        self.paused = True
        if self.real is not None:
            self.real.pauseProducing()

    def resumeProducing(self) -> None:
        self.paused = False
        if self.real is not None:
            self.real.resumeProducing()


class Executor:
    """One executor: a session registry and a processor factory that transports share.

    ``metrics=False``: count nothing (:attr:`metrics` is None), for a process that serves no
    ``/metrics``: stdio without ``--metrics-listen`` (prometheus_client is ~7 ms and ~3 MiB of
    every stdio session's start-up).
    """

    def __init__(
        self,
        reactor: Any,
        *,
        ttl: float = DETACH_TTL,
        limits: Limits | None = None,
        environ: Mapping[str, str] | None = None,
        containment: Containment | None = None,
        scrubber: SecretScrubber | None = None,
        metrics: bool = True,
        shutdownGrace: float = SHUTDOWN_GRACE,
    ) -> None:
        from twisted.python.threadpool import ThreadPool

        from twisted_exec.executor.resources.filesystem import FileSystem
        from twisted_exec.executor.resources.offload import OffloadPool

        self.reactor = reactor
        self.limits = limits or Limits()
        self.environ = environ
        #: Orphan tracking (subreaper); the service enables it in a real executor process.
        self.containment = containment if containment is not None else Containment()
        #: Shared by every session's ProcessTable: credentials never reach a child.
        self.scrubber = scrubber if scrubber is not None else SecretScrubber()
        self.registry = SessionRegistry(reactor, self._makeResources, ttl)
        #: How long :meth:`shutdown` waits for the killed processes to end.
        self.shutdownGrace = shutdownGrace
        # Every session's process table, closed sessions' too (their killed children may not
        # have ended yet); weak, so a table goes once its session and processes are gone.
        self._tables: weakref.WeakSet[ProcessTable] = weakref.WeakSet()
        # fs/* system calls run on our lean pool (same contract as Twisted's ThreadPool; see
        # offload.py for why), stopped in shutdown().
        self.offload = OffloadPool(maxThreads=self.limits.fsThreads)
        # Spawns (PATH lookup, fork, exec wait) on threads of their own, so that fs calls
        # stuck on a slow filesystem never hold up a process/start (process_prespawn.py).
        self.spawnPool = OffloadPool(maxThreads=SPAWN_THREADS)
        self.filesystem = FileSystem(
            reactor,
            threadpool=cast(ThreadPool, self.offload),
            maxReadBytes=self.limits.readFileLimit(),
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
        self._countMetrics = metrics
        self._metrics: ExecutorMetrics | None = None
        self.processorFactory = ExecProcessorFactory(
            self.registry,
            self.filesystem,
            methods=self.methods,
            environment=self.environment,
            concurrentRequests=self.limits.concurrentRequests,
            limits=self.limits,
            clock=reactor,
            onRequestDone=self._requestDone if metrics else None,
        )

    @property
    def metrics(self) -> ExecutorMetrics | None:
        """The executor's metrics, built on first use (prometheus_client is not imported before
        the local listener prints its URL: its site asks for them on the next reactor turn);
        None with ``metrics=False``."""
        if self._metrics is None and self._countMetrics:
            self._metrics = executorMetrics(self.registry)
        return self._metrics

    def _requestDone(self, method: str, seconds: float) -> None:
        metrics = self.metrics
        if metrics is not None:
            metrics.requestDone(method, seconds)

    def _processStarted(self) -> None:
        metrics = self.metrics
        if metrics is not None:
            metrics.processStarted()

    def _makeResources(self, session: Session) -> SessionResources:
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
            limits=self.limits,
            containment=self.containment,
            spawnPool=self.spawnPool,
        )
        http = DeferredHttpRequester(self.reactor, session.notify, self.limits.httpBodyLimit())
        if self._countMetrics:
            processes.onStarted = self._processStarted
        self._tables.add(processes)
        return SessionResources(processes, http, self.limits.maxFsInFlight)

    def shutdown(self) -> Deferred[None]:
        """End every session and kill every process (service stop).

        Fires once every killed child has ended (reaped, its pipes closed: no reader or process
        transport left in the reactor), or after :attr:`shutdownGrace` seconds, logging how
        many had not: a service's stop must not return while its children still run.
        """
        count = len(self.registry)
        self.registry.closeAll()
        self.containment.killEverything()
        self.fsStreams.close()
        self.offload.stop()
        self.spawnPool.stop()
        if count:
            log.info("closed {count} session(s) on shutdown", count=count)
        waits = [wait for table in list(self._tables) for wait in table.whenAllEnded()]
        grace = self.shutdownGrace

        def report(left: int) -> None:
            if left:
                log.warn(
                    "shutdown: {left} killed process(es) had not ended after {grace}s",
                    left=left,
                    grace=grace,
                )

        return whenAllFired(self.reactor, waits, grace).addCallback(report)


__all__ = [
    "MAX_PROCESSES",
    "SHUTDOWN_GRACE",
    "Executor",
    "ExecutorLimits",
    "Limits",
    "SessionResources",
    "whenAllFired",
]
