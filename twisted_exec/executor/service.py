"""Services an application adds: the executor core and its transports.

Embedding in an existing Twisted application::

    from twisted_exec.executor.service import ExecutorService, LocalWebSocketService
    executor = ExecutorService(reactor)
    LocalWebSocketService(reactor, executor.executor.processorFactory,
                          "ws://127.0.0.1:8765").setServiceParent(executor)
    executor.setServiceParent(application)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredList, TimeoutError
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from twisted_exec.executor.core.interfaces import IProcessorFactory
from twisted_exec.executor.core.session import DETACH_TTL
from twisted_exec.executor.executor import Executor, ExecutorLimits
from twisted_exec.executor.resources.containment import restoreChildSignals
from twisted_exec.executor.transports.defaults import DEFAULT_MAX_MESSAGE_BYTES
from twisted_exec.net.leanreactor import leanImports
from twisted_exec.net.listen import (
    ListeningService,
    exitCleanlyAfterSignal,
    logToStderrUnder,
    parseListenUrl,
)
from twisted_exec.net.logs import installObserver
from twisted_exec.net.secretenv import SecretScrubber
from twisted_exec.net.wsauth import listenerProblem
from twisted_exec.net.wsauth_config import WsAuthMode

if TYPE_CHECKING:
    from twisted_exec.executor.transports.local_ws import LocalExecFactory

log = Logger()


class _SiteOnFirstUse(Factory):  # type: ignore[type-arg]
    """The listening factory: the websocket ``Site`` is built (and autobahn and twisted.web
    imported, about 60 % of our start-up) only when it is first needed.

    Why: the bound URL goes to stdout as soon as the port listens, before that import; the
    service builds the ``Site`` on the next reactor turn (before the reactor accepts a
    connection) or, at the latest, for the first connection. A client that connects at once
    waits in the listen backlog for that turn.
    """

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._site: Any = None

    def site(self) -> Any:
        if self._site is None:
            self._site = self._build()
            if self.numPorts:
                self._site.doStart()
        return self._site

    def startFactory(self) -> None:
        if self._site is not None:
            self._site.doStart()

    def stopFactory(self) -> None:
        if self._site is not None:
            self._site.doStop()

    def buildProtocol(self, addr: IAddress | None) -> Any:
        return self.site().buildProtocol(addr)


def _localWs() -> Any:
    """``executor/transports/local_ws``, imported with TLS deferred: the listener speaks none,
    and autobahn and twisted.web would load pyOpenSSL and cryptography (~12 MiB of RSS) at
    import, and without autobahn's WAMP serializer (``net/leanreactor.leanImports``)."""
    with leanImports():
        from twisted_exec.executor.transports import local_ws
    return local_ws


class LocalWebSocketService(ListeningService):
    """Listens on ``ws://IP:PORT`` and announces the bound URL (port 0 picks a free port)."""

    listeningMessage = "codex exec-server listening on {url}"

    def __init__(
        self,
        reactor: Any,
        processorFactory: IProcessorFactory,
        listenUrl: str,
        *,
        announce: Callable[[str], None] | None = None,
        maxMessageBytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        auth: WsAuthMode | None = None,
        insecureNoAuth: bool = False,
        metrics: Any = None,
        metricsFrom: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(reactor, parseListenUrl(listenUrl), announce)
        #: ``--ws-auth``: who may open the websocket (``None``: anyone who reaches the port,
        #: which is why a bind beyond loopback needs ``insecureNoAuth`` then).
        self.auth = auth
        problem = listenerProblem(self.address.host, auth, insecureNoAuth)
        if problem is not None:
            raise ValueError(problem)
        #: ``/metrics`` on the listener: ``metrics``, or what ``metricsFrom()`` returns when the
        #: site is built (after the URL is printed: prometheus_client is not a start-up cost).
        self.metrics = metrics
        self.metricsFrom = metricsFrom
        self.processorFactory = processorFactory
        self.maxMessageBytes = maxMessageBytes
        self._factory: LocalExecFactory | None = None
        self._listening = _SiteOnFirstUse(self._makeSite)

    @property
    def factory(self) -> LocalExecFactory:
        """The websocket factory (built, with the imports it needs, on first use)."""
        if self._factory is None:
            self._factory = _localWs().LocalExecFactory(
                self.processorFactory, self.reactor, self.maxMessageBytes
            )
        return self._factory

    def _makeSite(self) -> Any:
        if self.metrics is None and self.metricsFrom is not None:
            self.metrics = self.metricsFrom()
        return _localWs().makeSite(self.factory, self.address.host, self.auth, metrics=self.metrics)

    def makeFactory(self) -> Any:
        return self._listening

    def privilegedStartService(self) -> None:
        super().privilegedStartService()  # listens and announces the URL
        # The websocket stack, imported now that the URL is out (see _SiteOnFirstUse).
        self.reactor.callLater(0, self._listening.site)

    async def _stop(self) -> None:
        await self.stopListening()
        # Close frames only leave on a later reactor turn: wait for them (bounded), or
        # twistd's shutdown tears the sockets down first and clients see 1006, not 1000.
        protocols = list(self._factory.connections) if self._factory is not None else []
        lost = [protocol.whenLost() for protocol in protocols]
        for protocol in protocols:
            protocol.sendClose(code=1000, reason="executor shutting down")
            protocol.dropConnection(abort=False)
        if lost:
            closing = DeferredList(lost, consumeErrors=True)
            closing.addTimeout(self.closeTimeout, self.reactor)
            with suppress(TimeoutError):
                await closing  # on timeout the waiters are cancelled and it fires anyway
            # Stragglers (a peer that stopped reading keeps our close frame in the kernel) are
            # aborted; an abort completes on a later reactor turn, so wait for it too: when
            # stopService fires, every connection is really gone.
            aborted: list[Deferred[None]] = []
            for protocol in protocols:
                transport: Any = protocol.transport
                if transport is not None and not transport.disconnected:
                    aborted.append(protocol.whenLost())
                    transport.abortConnection()
            if aborted:
                gone = DeferredList(aborted, consumeErrors=True)
                gone.addTimeout(self.closeTimeout, self.reactor)
                with suppress(TimeoutError):
                    await gone

    def stopService(self) -> Any:
        from twisted.internet.defer import ensureDeferred

        super().stopService()
        return ensureDeferred(self._stop())


class ExecutorService(MultiService):
    """Owns the :class:`Executor`; stopping it closes transports first, then kills processes."""

    def __init__(
        self,
        reactor: Any,
        *,
        ttl: float = DETACH_TTL,
        limits: ExecutorLimits | None = None,
        environ: Mapping[str, str] | None = None,
        scrubber: SecretScrubber | None = None,
        metrics: bool = True,
    ) -> None:
        super().__init__()
        self.executor = Executor(
            reactor, ttl=ttl, limits=limits, environ=environ, scrubber=scrubber, metrics=metrics
        )
        self._sweep: LoopingCall | None = None

    #: Seconds between sweeps for adopted orphans that exited (containment.py).
    sweepInterval = 1.0

    def startService(self) -> None:
        """Containment first: from now on orphans of our children are re-parented to us."""
        containment = self.executor.containment
        if containment.enable():
            self._sweep = LoopingCall(containment.sweep)
            self._sweep.clock = self.executor.reactor
            self._sweep.start(self.sweepInterval, now=False)
        restoreChildSignals()
        super().startService()

    logToStderr = False
    #: The log observer twistd should use (``--log-format``/``--log-level``), if any.
    logObserver: Any = None

    def setServiceParent(self, parent: Any) -> None:
        """Under ``twistd -n`` without ``--logfile``, send logs to stderr, not stdout.

        stdout carries the bound URL (local mode) or the protocol itself (stdio mode), as with
        the reference. twistd reads an ``ILogObserver`` component of the application, when there
        is one, before it falls back to stdout.
        """
        super().setServiceParent(parent)
        if self.logObserver is not None:
            installObserver(parent, self.logObserver)
        elif self.logToStderr:
            logToStderrUnder(parent)

    def stopService(self) -> Any:
        d = super().stopService()

        def shutdown(result: object) -> Any:
            if self._sweep is not None and self._sweep.running:
                self._sweep.stop()
            ended = self.executor.shutdown()  # fires once the killed children are gone
            exitCleanlyAfterSignal(self.executor.reactor)  # SIGTERM ... exits 0
            return ended.addCallback(lambda _: result)

        return d.addBoth(shutdown)
