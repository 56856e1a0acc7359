"""The registering endpoint, and the backoff policy ``ClientService`` runs it under.

Every ``connect()`` registers first and then dials the websocket URL the registry returned, so each
reconnect re-registers (the URL carries a fresh signature). ``ClientService`` resets its backoff
when ``connect()`` *and* ``prepareConnection`` succeed; we make ``prepareConnection`` wait for the
websocket opening handshake, so a TCP connection whose upgrade is refused counts as a failure and
the delay keeps growing (1, 2, 4 ... 30 s, no jitter, as the reference).

Permanent registry errors (bad configuration, 401/403) are reported through ``onFatal``; the
service stops retrying. Everything else is logged and retried.

Logs name the registry by its base URL and the websocket by :func:`redactUrl` (no query string):
the token and the URL's signature never reach a log line.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import (
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
)
from twisted.internet.ssl import optionsForClientTLS
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .protocol import RelayClientFactory, RelayClientProtocol
from .registry import Registration, RegistryClient, RegistryPermanentError, redactUrl

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


class WebsocketEndpoints:
    """Builds the TCP (``ws://``) or verified-TLS (``wss://``) endpoint for a registered URL."""

    def __init__(self, reactor: object, connectTimeout: float = 30.0) -> None:
        self._reactor = reactor
        self._timeout = connectTimeout

    def __call__(self, url: str) -> IStreamClientEndpoint:
        parts = urlsplit(url)
        host = parts.hostname
        if not host:
            raise ValueError(f"websocket URL without a host: {redactUrl(url)}")
        secure = parts.scheme.lower() == "wss"
        port = parts.port or (443 if secure else 80)
        endpoint: IStreamClientEndpoint = HostnameEndpoint(
            self._reactor, host, port, timeout=self._timeout
        )
        if secure:
            endpoint = wrapClientTLS(optionsForClientTLS(host), endpoint)
        return endpoint


@implementer(IStreamClientEndpoint)
class RegisteringEndpoint:
    """``connect()`` = register, then dial the returned websocket URL with ``relayFactory``."""

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

    def __repr__(self) -> str:
        # ClientService logs its endpoint: name the registry, never the token.
        return f"<RegisteringEndpoint {self._registry.config.registrationUrl}>"

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        return Deferred.fromCoroutine(self._connect(protocolFactory))

    async def _connect(self, protocolFactory: IProtocolFactory) -> IProtocol:
        try:
            registration: Registration = await self._registry.register()
        except RegistryPermanentError:
            failure = Failure()
            self._onFatal(failure)
            raise
        except Exception as e:
            log.warn("executor registration failed (will retry): {error}", error=str(e))
            raise
        self.registrations += 1
        log.info(REGISTERED_MESSAGE, executorId=registration.executorId)
        self._relayFactory.pointAt(registration.url)
        try:
            endpoint = self._endpointFor(registration.url)
            protocol: IProtocol = await endpoint.connect(protocolFactory)
        except Exception as e:
            log.warn(
                "relay websocket connection to {url} failed (will retry): {error}",
                url=redactUrl(registration.url),
                error=str(e) or type(e).__name__,
            )
            raise
        return protocol


def waitForHandshake(protocol: IProtocol) -> Deferred[RelayClientProtocol]:
    """``prepareConnection`` for ``ClientService``: succeed only once the websocket is open."""
    relay: RelayClientProtocol = protocol  # type: ignore[assignment]  # proxied by ClientService
    opened: Deferred[RelayClientProtocol] = relay.opened

    def failed(failure: Failure) -> Failure:
        log.warn("relay websocket handshake failed (will retry): {error}", error=failure.value)
        return failure

    # Chain a new Deferred so the protocol keeps its own result for other observers.
    result: Deferred[RelayClientProtocol] = Deferred()
    opened.addCallbacks(_passTo(result), _failTo(result))
    return result.addErrback(failed)


def _passTo(d: Deferred[RelayClientProtocol]) -> Callable[[RelayClientProtocol], object]:
    def cb(value: RelayClientProtocol) -> RelayClientProtocol:
        d.callback(value)
        return value

    return cb


def _failTo(d: Deferred[RelayClientProtocol]) -> Callable[[Failure], None]:
    def eb(failure: Failure) -> None:
        d.errback(failure)

    return eb
