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
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredList, TimeoutError
from twisted.logger import Logger

from twisted_exec.executor.core.interfaces import IProcessorFactory
from twisted_exec.executor.core.session import DETACH_TTL
from twisted_exec.executor.executor import Executor, ExecutorLimits
from twisted_exec.executor.transports.local_ws import (
    DEFAULT_MAX_MESSAGE_BYTES,
    LocalExecFactory,
    makeSite,
)
from twisted_exec.net.listen import (
    ListeningService,
    exitCleanlyAfterSignal,
    logToStderrUnder,
    parseListenUrl,
)
from twisted_exec.net.logs import installObserver
from twisted_exec.net.secretenv import SecretScrubber
from twisted_exec.net.wsauth import WsAuthMode, listenerProblem

log = Logger()


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
    ) -> None:
        super().__init__(reactor, parseListenUrl(listenUrl), announce)
        #: ``--ws-auth``: who may open the websocket (``None``: anyone who reaches the port,
        #: which is why a bind beyond loopback needs ``insecureNoAuth`` then).
        self.auth = auth
        problem = listenerProblem(self.address.host, auth, insecureNoAuth)
        if problem is not None:
            raise ValueError(problem)
        self.metrics = metrics
        self.factory = LocalExecFactory(processorFactory, reactor, maxMessageBytes)

    def makeFactory(self) -> Any:
        return makeSite(self.factory, self.address.host, self.auth, metrics=self.metrics)

    async def _stop(self) -> None:
        await self.stopListening()
        # Close frames only leave on a later reactor turn: wait for them (bounded), or
        # twistd's shutdown tears the sockets down first and clients see 1006, not 1000.
        protocols = list(self.factory.connections)
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
    ) -> None:
        super().__init__()
        self.executor = Executor(
            reactor, ttl=ttl, limits=limits, environ=environ, scrubber=scrubber
        )

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

        def shutdown(result: object) -> object:
            self.executor.shutdown()
            exitCleanlyAfterSignal(self.executor.reactor)  # SIGTERM ... exits 0
            return result

        return d.addBoth(shutdown)
