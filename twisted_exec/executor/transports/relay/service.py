"""``makeRemoteService``: the remote executor as one ``IService`` (for twistd or embedding).

The service is a ``MultiService`` holding a ``ClientService`` that runs the registering endpoint.
A permanent registry error (bad configuration, 401/403) stops it and fires :meth:`whenFatal`; the
twistd wiring turns that into a non-zero exit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from treq.client import HTTPClient
from twisted.application.internet import ClientService
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import Agent

from twisted_exec.executor.core.interfaces import IProcessorFactory
from twisted_exec.executor.transports.relay.connector import (
    RegisteringEndpoint,
    RelayHandleFactory,
    retryDelay,
)
from twisted_exec.executor.transports.relay.demux import MAX_STREAMS
from twisted_exec.executor.transports.relay.protocol import (
    CLOSE_TIMEOUT,
    MAX_MESSAGE_BYTES,
    PING_INTERVAL,
    PONG_TIMEOUT,
    RelayClientFactory,
)
from twisted_exec.executor.transports.relay.registry import (
    DEFAULT_TIMEOUT,
    HTTPPoster,
    RegistryClient,
    RemoteConfig,
)
from twisted_exec.net.httpspolicy import TLSPolicyOnFirstUse
from twisted_exec.net.quietweb import QuietConnectionPool
from twisted_exec.net.wsendpoints import WebsocketEndpoints

log = Logger()


def defaultHttpClient(reactor: Any) -> HTTPClient:
    """treq over an ``Agent`` that verifies TLS (``BrowserLikePolicyForHTTPS``'s checks, loaded
    on first use: net/httpspolicy) and keeps no idle sockets.

    The pool's connection factories are quiet: no "Starting factory" line per registration.
    """
    pool = QuietConnectionPool(reactor, persistent=False)
    return HTTPClient(Agent(reactor, contextFactory=TLSPolicyOnFirstUse(), pool=pool))


@dataclass
class ConnectionInputs:
    """What a remote service's registry client, relay factory and endpoint are built from."""

    processorFactory: IProcessorFactory
    clock: IReactorTime
    http: HTTPPoster
    endpointFor: Callable[[str], IStreamClientEndpoint]
    registryTimeout: float
    #: The relay factory's options (ping, pong and close timeouts; message and stream caps).
    relayOptions: dict[str, Any]


class RemoteExecutorService(MultiService):
    """Registers, connects and keeps reconnecting; one processor per relay stream."""

    def __init__(
        self,
        reactor: Any,
        processorFactory: IProcessorFactory,
        config: RemoteConfig,
        *,
        http: HTTPPoster | None = None,
        endpointFor: Callable[[str], IStreamClientEndpoint] | None = None,
        retryPolicy: Callable[[int], float] = retryDelay,
        registryTimeout: float = DEFAULT_TIMEOUT,
        pingInterval: float = PING_INTERVAL,
        pongTimeout: float = PONG_TIMEOUT,
        maxMessageBytes: int = MAX_MESSAGE_BYTES,
        maxStreams: int | None = MAX_STREAMS,
        closeTimeout: float = CLOSE_TIMEOUT,
        metrics: Any = None,
    ) -> None:
        MultiService.__init__(self)
        clock: IReactorTime = reactor
        self._clock = clock
        self.fatalError: Failure | None = None
        self._fatalWaiters: list[Deferred[BaseException]] = []
        self.config = config
        self.relayFactory, self.endpoint = self._connection(
            ConnectionInputs(
                processorFactory,
                clock,
                http if http is not None else defaultHttpClient(reactor),
                endpointFor if endpointFor is not None else WebsocketEndpoints(reactor),
                registryTimeout,
                {
                    "pingInterval": pingInterval,
                    "pongTimeout": pongTimeout,
                    "maxMessageBytes": maxMessageBytes,
                    "maxStreams": maxStreams,
                    "closeTimeout": closeTimeout,
                },
            )
        )
        self.relayFactory.metrics = metrics
        self.endpoint.metrics = metrics
        self._retryPolicy = retryPolicy
        self.clientService = ClientService(
            self.endpoint, RelayHandleFactory(), retryPolicy=self._nextDelay, clock=clock
        )
        self.clientService.setServiceParent(self)

    def _connection(
        self, inputs: ConnectionInputs
    ) -> tuple[RelayClientFactory, RegisteringEndpoint]:
        """The registry client, relay factory and endpoint of 0.131's clear relay.

        The one thing ``--environment-id`` (``environment_service.py``) builds differently;
        the service around them (ClientService, retry line, fatal errors) is shared.
        """
        self.registry = RegistryClient(
            inputs.http, inputs.clock, self.config, timeout=inputs.registryTimeout
        )
        factory = RelayClientFactory(inputs.processorFactory, inputs.clock, **inputs.relayOptions)
        return factory, RegisteringEndpoint(self.registry, factory, inputs.endpointFor, self._fatal)

    def _nextDelay(self, failedAttempts: int) -> float:
        """``retryPolicy``, plus the one log line of a reconnect: what happened, and when next.

        Nothing is said once a permanent error stopped us (ClientService still asks for a
        delay while the failed attempt unwinds).
        """
        delay = self._retryPolicy(failedAttempts)
        if self.fatalError is None and self.running:
            endpoint = self.endpoint
            problem = endpoint.lastProblem or "connection to the rendezvous ended"
            emit = log.info if endpoint.lastWasDrop else log.warn
            emit("reconnecting in {delay:g} s: {problem}", delay=delay, problem=problem)
            endpoint.lastWasDrop = False
        return delay

    def stopService(self) -> Any:
        if self.fatalError is None:
            log.info("remote executor stopped: shutting down")
        return super().stopService()

    def whenFatal(self) -> Deferred[BaseException]:
        """Fires (after the service stopped) with the permanent error that stopped it.

        Never fires if none does. The exception's ``str()`` is the operator-facing message.
        """
        if self.fatalError is not None and not self.running:
            return succeed(_errorOf(self.fatalError))
        d: Deferred[BaseException] = Deferred()
        self._fatalWaiters.append(d)
        return d

    def _fatal(self, failure: Failure) -> None:
        if self.fatalError is not None:
            return
        self.fatalError = failure
        log.critical("remote executor stopped: {error}", error=str(failure.value))
        # Let the failed attempt finish unwinding through ClientService before stopping it.
        self._clock.callLater(0, self._stopAfterFatal)

    def _stopAfterFatal(self) -> None:
        d = self.stopService() if self.running else succeed(None)

        def notify(_: object) -> None:
            waiters, self._fatalWaiters = self._fatalWaiters, []
            assert self.fatalError is not None
            for w in waiters:
                w.callback(_errorOf(self.fatalError))

        d.addBoth(notify)  # type: ignore[union-attr]


def _errorOf(failure: Failure) -> BaseException:
    value = failure.value
    assert value is not None
    return value


def makeRemoteService(
    reactor: Any,
    processorFactory: IProcessorFactory,
    config: RemoteConfig,
    **kwargs: Any,
) -> RemoteExecutorService:
    """The remote executor service; ``kwargs`` are :class:`RemoteExecutorService`'s options."""
    return RemoteExecutorService(reactor, processorFactory, config, **kwargs)
