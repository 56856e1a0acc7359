"""``--environment-id``: register an environment, hold its relay websocket, serve Noise streams.

As Codex 0.171 (``remote.rs`` ``run_remote_environment_connections``):

- the executor's Noise identity (X25519 + ML-KEM-768) is generated once per process, in
  memory only, and reused across reconnects and re-registrations (nothing is written to disk:
  0.171 keeps no key file, so neither do we; a restart is a new identity and a new
  registration);
- the registration is reused across websocket reconnects and made again only when the
  rendezvous refuses the websocket upgrade with a 4xx (the URL's signature expired, the
  registration was replaced) — or, for us, when registering has not succeeded yet;
- every stream on the websocket is served by :class:`NoiseRelayDemux`; websocket messages are
  capped at 256 KiB.

Reconnecting runs under the same ``ClientService`` policy as ``--executor-id`` (1 s doubling to
30 s); configuration and 401/403 errors are permanent and stop the service, as there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_exec.executor.core.interfaces import IProcessorFactory
from twisted_exec.executor.transports.relay.connector import (
    RegisteringEndpoint,
)
from twisted_exec.executor.transports.relay.environment_registry import (
    EnvironmentConfig,
    EnvironmentRegistration,
    EnvironmentRegistryClient,
)
from twisted_exec.executor.transports.relay.noise_demux import NoiseRelayDemux
from twisted_exec.executor.transports.relay.protocol import (
    Demux,
    RelayClientFactory,
    RelayClientProtocol,
)
from twisted_exec.executor.transports.relay.registry import RegistryPermanentError
from twisted_exec.executor.transports.relay.service import (
    ConnectionInputs,
    RemoteExecutorService,
)
from twisted_exec.net.urls import redactUrl
from twisted_exec.wire import noise

log = Logger()

#: 0.171's websocket frame and message cap on a Noise relay (``noise_relay/mod.rs``).
NOISE_MAX_MESSAGE_BYTES = 256 * 1024
REGISTERED_MESSAGE = "codex exec-server environment {environmentId} registered (Noise relay)"
# autobahn: "WebSocket connection upgrade failed [403]: ..." (older: "(403 - Forbidden)").
_UPGRADE_4XX = re.compile(r"upgrade failed \W*4\d\d\b")


class NoiseRelayClientFactory(RelayClientFactory):
    """Relay websockets whose streams are Noise sessions bound to the current registration."""

    def __init__(
        self,
        processorFactory: IProcessorFactory,
        clock: IReactorTime,
        identity: noise.NoiseIdentity,
        registry: EnvironmentRegistryClient,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("maxMessageBytes", NOISE_MAX_MESSAGE_BYTES)
        super().__init__(processorFactory, clock, **kwargs)
        self.identity = identity
        self.registry = registry
        self.registration: EnvironmentRegistration | None = None

    def buildDemux(self, send: Callable[[bytes], None], abandon: Callable[[], None]) -> Demux:
        registration = self.registration
        assert registration is not None
        registry = self.registry

        def validate(
            key: noise.NoisePublicKey, authorization: str, streamId: str
        ) -> Deferred[bool]:
            return registry.validate(
                registration.executorRegistrationId, key, authorization, streamId
            )

        return NoiseRelayDemux(
            self.processorFactory,
            send,
            identity=self.identity,
            environmentId=registration.environmentId,
            executorRegistrationId=registration.executorRegistrationId,
            validator=validate,
            clock=self.clock,
            onExhausted=abandon,
        )


@implementer(IStreamClientEndpoint)
class EnvironmentEndpoint(RegisteringEndpoint):
    """``connect()`` = register (once, or again after a 4xx upgrade), dial, wait for open."""

    def __init__(
        self,
        registry: EnvironmentRegistryClient,
        relayFactory: NoiseRelayClientFactory,
        endpointFor: Callable[[str], IStreamClientEndpoint],
        onFatal: Callable[[Failure], None],
    ) -> None:
        # The base keeps the state _attach and the retry line use (current, lastProblem,
        # metrics...); its own register() is never called here (see _connectEnvironment).
        super().__init__(cast(Any, registry), relayFactory, endpointFor, onFatal)
        self._envRegistry = registry
        self._noiseFactory = relayFactory

    def __repr__(self) -> str:
        return f"<EnvironmentEndpoint {self._envRegistry.config.url('register')}>"

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        return Deferred.fromCoroutine(self._connectEnvironment(protocolFactory))

    async def _connectEnvironment(self, protocolFactory: IProtocolFactory) -> IProtocol:
        factory = self._noiseFactory
        if factory.registration is None:
            try:
                registration = await self._envRegistry.register(factory.identity.publicKey)
            except RegistryPermanentError:
                self._onFatal(Failure())
                raise
            except Exception as e:
                log.warn("environment registration failed (will retry): {error}", error=str(e))
                raise
            self.registrations += 1
            factory.registration = registration
            log.info(REGISTERED_MESSAGE, environmentId=registration.environmentId)
        registration = factory.registration
        factory.pointAt(registration.url)
        url = redactUrl(registration.url)
        try:
            connected = await self._endpointFor(registration.url).connect(factory)
            relay = cast(RelayClientProtocol, connected)
        except Exception as e:
            log.warn(
                "relay websocket connection to {url} failed (will retry): {error}",
                url=url,
                error=str(e) or type(e).__name__,
            )
            raise
        try:
            return await self._attach(relay, protocolFactory, url)
        except Exception as e:
            if _UPGRADE_4XX.search(str(e)):
                # The rendezvous refused this registration's URL: register again next time.
                factory.registration = None
            raise


class EnvironmentExecutorService(RemoteExecutorService):
    """The ``--environment-id`` executor: same lifecycle and fatal-error contract as 0.131's."""

    def __init__(
        self,
        reactor: Any,
        processorFactory: IProcessorFactory,
        config: EnvironmentConfig,
        *,
        identity: noise.NoiseIdentity | None = None,
        **options: Any,
    ) -> None:
        """``options`` are :class:`RemoteExecutorService`'s (``http``, ``endpointFor``,
        ``retryPolicy``, ``registryTimeout``, ``pingInterval``, ``pongTimeout``,
        ``closeTimeout``, ``metrics``); ``maxMessageBytes`` and ``maxStreams`` do not apply
        (see :meth:`_connection`)."""
        self.identity = identity if identity is not None else noise.NoiseIdentity.generate()
        self.environmentConfig = config
        super().__init__(reactor, processorFactory, cast(Any, config), **options)

    def _connection(
        self, inputs: ConnectionInputs
    ) -> tuple[RelayClientFactory, RegisteringEndpoint]:
        """0.171's environment registry, Noise relay factory and (re-)registering endpoint.

        The message cap is 0.171's (``NOISE_MAX_MESSAGE_BYTES``) and the stream limits are the
        Noise demux's own, so the clear relay's ``maxMessageBytes``/``maxStreams`` do not apply.
        """
        options = dict(inputs.relayOptions)
        del options["maxMessageBytes"], options["maxStreams"]
        registry = EnvironmentRegistryClient(
            inputs.http, inputs.clock, self.environmentConfig, timeout=inputs.registryTimeout
        )
        self.environmentRegistry = registry
        factory = NoiseRelayClientFactory(
            inputs.processorFactory, inputs.clock, self.identity, registry, **options
        )
        return factory, EnvironmentEndpoint(registry, factory, inputs.endpointFor, self._fatal)
