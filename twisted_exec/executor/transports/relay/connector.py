"""The registering endpoint, and the backoff policy ``ClientService`` runs it under.

Every ``connect()`` registers first and then dials the websocket URL the registry returned, so each
reconnect re-registers (the URL carries a fresh signature). ``ClientService`` resets its backoff
when ``connect()`` succeeds, and ours succeeds only once the websocket opening handshake is
complete, so a TCP connection whose upgrade is refused counts as a failure and the delay keeps
growing (1, 2, 4 ... 30 s, no jitter, as the reference).

Permanent registry errors (bad configuration, 401/403) are reported through ``onFatal``; the
service stops retrying. Everything else is logged and retried.

Logs name the registry by its base URL and the websocket by :func:`redactUrl` (no query string):
the token and the URL's signature never reach a log line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
    ITransport,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_exec.executor.transports.relay.protocol import RelayClientFactory, RelayClientProtocol
from twisted_exec.executor.transports.relay.registry import (
    Registration,
    RegistryClient,
    RegistryPermanentError,
)
from twisted_exec.net.urls import redactUrl

log = Logger()

INITIAL_DELAY = 1.0
MAX_DELAY = 30.0
REGISTERED_MESSAGE = "codex exec-server remote executor registered with executor_id {executorId}"


def retryDelay(failedAttempts: int) -> float:
    """``ClientService`` retry policy: 1 s after the first failure, doubling, capped at 30 s.

    ``ClientService`` counts from 1 (a dropped connection is failure 1), so the reference's
    "reconnect 1 s after a drop, then 1, 2, 4, 8 ..." is ``2 ** (n - 1)``.
    """
    exponent = max(0, min(failedAttempts - 1, 16))
    return float(min(INITIAL_DELAY * 2**exponent, MAX_DELAY))


class RelayHandle(Protocol):
    """What ``ClientService`` holds for one open relay websocket.

    ``ClientService`` only needs to see a connection once it counts as made, and to hear when it
    ends; the websocket itself is the :class:`RelayClientProtocol` the endpoint dialled.
    """


class RelayHandleFactory(Factory):
    protocol = RelayHandle


@implementer(IStreamClientEndpoint)
class RegisteringEndpoint:
    """``connect()`` = register, dial the returned URL, and wait for the websocket to open.

    Why the handshake wait lives here and not in ``ClientService``'s ``prepareConnection``: when
    a connection ends while ``prepareConnection`` is pending (a refused upgrade), ``ClientService``
    (Twisted 26.10) gets a disconnect notification in a state that has no transition for it and
    raises ``automat.NoTransition`` out of ``connectionLost``. So ``ClientService`` is shown the
    connection only once the websocket is open: the factory it passes in builds a
    :class:`RelayHandle` that we attach to the relay's transport, and we tell it when the relay
    closes. A TCP connection whose upgrade fails is therefore a failed attempt.
    """

    def __init__(
        self,
        registry: RegistryClient,
        relayFactory: RelayClientFactory,
        endpointFor: Callable[[str], IStreamClientEndpoint],
        onFatal: Callable[[Failure], None],
    ) -> None:
        self._registry = registry
        self._relayFactory = relayFactory
        self._endpointFor = endpointFor
        self._onFatal = onFatal
        self.registrations = 0
        self.current: RelayClientProtocol | None = None
        #: What ended the last attempt or connection (for the retry log line), if anything.
        self.lastProblem: str | None = None
        #: Whether that was an open connection dropping (info) rather than a failure (warn).
        self.lastWasDrop = False
        #: An ``ExecutorMetrics`` (registrations and connections by outcome), when set.
        self.metrics: Any = None

    def __repr__(self) -> str:
        # ClientService logs its endpoint: name the registry, never the token.
        return f"<RegisteringEndpoint {self._registry.config.registrationUrl}>"

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        return Deferred.fromCoroutine(self._connect(protocolFactory))

    async def _connect(self, protocolFactory: IProtocolFactory) -> IProtocol:
        # Failures are not logged here: the service's retry line says what failed and when
        # the next attempt is ("reconnecting in 2 s: ..."), one line per attempt.
        metrics = self.metrics
        try:
            registration: Registration = await self._registry.register()
        except RegistryPermanentError:
            if metrics is not None:
                metrics.registration("refused")
            failure = Failure()
            self._onFatal(failure)
            raise
        except Exception as e:
            if metrics is not None:
                metrics.registration("failed")
            self.lastProblem = str(e)
            raise
        if metrics is not None:
            metrics.registration("ok")
        self.registrations += 1
        log.info(REGISTERED_MESSAGE, executorId=registration.executorId)
        self._relayFactory.pointAt(registration.url)
        url = redactUrl(registration.url)
        try:
            endpoint = self._endpointFor(registration.url)
            connected = await endpoint.connect(self._relayFactory)
            relay = cast(RelayClientProtocol, connected)
        except Exception as e:
            self._failedConnection(f"relay websocket connection to {url} failed: {describe(e)}")
            raise
        return await self._attach(relay, protocolFactory, url)

    async def _attach(
        self, relay: RelayClientProtocol, protocolFactory: IProtocolFactory, url: str
    ) -> IProtocol:
        """Wait for the websocket to open, then show ClientService a handle for it."""
        try:
            await _whenOpen(relay)
        except Exception as e:
            self._failedConnection(f"relay websocket handshake with {url} failed: {describe(e)}")
            raise
        if self.metrics is not None:
            self.metrics.connection("open")
        self.lastProblem = None
        log.info("connected to the rendezvous at {url}", url=url)
        transport = relay.transport
        assert transport is not None
        handle = protocolFactory.buildProtocol(transport.getPeer())
        assert handle is not None
        handle.makeConnection(cast(ITransport, _ClosingTransport(relay, transport)))
        self.current = relay

        def closed(_: object) -> None:
            if self.current is relay:
                self.current = None
            self.lastProblem = f"lost the relay websocket to {url} ({relay.closeReason})"
            self.lastWasDrop = True
            handle.connectionLost(Failure(ConnectionDone("relay websocket closed")))

        relay.closed.addCallback(closed)
        return handle

    def _failedConnection(self, problem: str) -> None:
        if self.metrics is not None:
            self.metrics.connection("failed")
        self.lastProblem = problem
        self.lastWasDrop = False


def describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


class _ClosingTransport:
    """What ``ClientService`` sees as the connection's transport.

    ``ClientService.stopService`` calls ``loseConnection()`` on it: that must be a websocket close
    (a close frame, bounded by the relay's ``closeTimeout``), not a bare TCP FIN.
    """

    def __init__(self, relay: RelayClientProtocol, transport: Any) -> None:
        self._relay = relay
        self._transport = transport

    def loseConnection(self) -> None:
        self._relay.closeForShutdown()

    def abortConnection(self) -> None:
        self._transport.abortConnection()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _whenOpen(relay: RelayClientProtocol) -> Deferred[RelayClientProtocol]:
    """``relay.opened``, cancellable: cancelling aborts the half-open connection."""

    def cancel(d: Deferred[RelayClientProtocol]) -> None:
        transport: Any = relay.transport
        if transport is not None:
            transport.abortConnection()

    result: Deferred[RelayClientProtocol] = Deferred(cancel)

    def opened(value: RelayClientProtocol) -> RelayClientProtocol:
        if not result.called:
            result.callback(value)
        return value

    def failed(failure: Failure) -> None:
        if not result.called:
            result.errback(failure)

    relay.opened.addCallbacks(opened, failed)
    return result
