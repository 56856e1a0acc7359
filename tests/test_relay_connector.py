"""Reconnect policy under ClientService, driven by task.Clock with in-memory endpoints.

The registry is the test registry's real resource (via StubTreq); the websocket side is the real
autobahn client protocol talking to a scripted server over a string transport.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from treq.testing import StubTreq
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from tests.test_relay_demux import EchoFactory, captureLogs
from twisted_exec.executor.transports.relay.connector import retryDelay
from twisted_exec.executor.transports.relay.registry import (
    TOKEN_ENV,
    RegistryAuthError,
    RemoteConfig,
)
from twisted_exec.executor.transports.relay.service import makeRemoteService
from twisted_exec.testing.registry import FakeRegistry, RecordedRequest, Reply, errorBody

TOKEN = "tok-CONNECTOR-secret"
SIG = "SIG-do-not-log"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def stopOnClock(service: Any, clock: Clock) -> Deferred[None] | None:
    """Stop a service whose relay is open on a memory transport that never answers the close:
    the bounded close handshake aborts it once ``closeTimeout`` passes on the clock."""
    if not service.running:
        return None
    d: Deferred[None] = service.stopService()
    clock.advance(service.relayFactory.closeTimeout)
    return d


def startOnClock(
    case: TestCase,
    clock: Clock,
    factory: Any,
    registry: Any,
    endpoints: Any,
    token: str,
    registryUrl: str = "http://r.example",
) -> Any:
    """A remote service as ``exec-1`` serving ``factory``, all on ``clock``: ``registry`` answers
    through StubTreq, ``endpoints`` (an :class:`_Endpoints`) makes its memory connections.
    Stopped at cleanup with :func:`stopOnClock`."""
    config = RemoteConfig.fromInputs(registryUrl, "exec-1", environ={TOKEN_ENV: token})
    service = makeRemoteService(
        clock, factory, config, http=StubTreq(registry.resource()), endpointFor=endpoints
    )
    service.startService()
    case.addCleanup(stopOnClock, service, clock)
    return service


class _Transport(StringTransport):
    """A string transport that reports the loss to its protocol, as a real one would."""

    protocol: Any

    def __init__(self) -> None:
        super().__init__()
        self.lost = False

    def loseConnection(self) -> None:
        self._lose()

    def unregisterProducer(self) -> None:
        self.producer = None  # autobahn unregisters unconditionally

    def abortConnection(self) -> None:
        self._lose()

    def _lose(self) -> None:
        if not self.lost:
            self.lost = True
            self.protocol.connectionLost(Failure(ConnectionDone()))


@implementer(IStreamClientEndpoint)
class _ScriptedEndpoint:
    """One connection attempt: ``refuse``, ``open`` (handshake completes) or ``reject`` (404)."""

    def __init__(self, owner: _Endpoints, mode: str) -> None:
        self.owner = owner
        self.mode = mode

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        if self.mode == "refuse":
            return fail(ConnectionRefusedError("refused"))
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 80))
        assert protocol is not None
        transport = _Transport()
        transport.protocol = protocol
        protocol.makeConnection(transport)
        request = transport.value().decode()
        key = next(
            line.split(":", 1)[1].strip()
            for line in request.split("\r\n")
            if line.lower().startswith("sec-websocket-key:")
        )
        d = succeed(protocol)
        if self.mode == "open":
            accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
            response = (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            )
            protocol.dataReceived(response.encode())
            self.owner.open.append(transport)
        else:
            # Let the caller see the protocol first, then the server refuses the upgrade.
            def reject(p: IProtocol) -> IProtocol:
                self.owner.clock.callLater(
                    0, protocol.dataReceived, b"HTTP/1.1 404 Not Found\r\n\r\n"
                )
                return p

            d.addCallback(reject)
        return d


class _Endpoints:
    def __init__(self, clock: Clock, modes: list[str]) -> None:
        self.clock = clock
        self.modes = modes
        self.urls: list[str] = []
        self.open: list[_Transport] = []

    def __call__(self, url: str) -> IStreamClientEndpoint:
        self.urls.append(url)
        mode = self.modes.pop(0) if self.modes else "open"
        return _ScriptedEndpoint(self, mode)


class _TimedRegistry(FakeRegistry):
    def __init__(self, clock: Clock) -> None:
        super().__init__(TOKEN, lambda ident: f"ws://relay.example/executor/{ident}?sig={SIG}")
        self.clock = clock
        self.times: list[float] = []

    def _reply(self, recorded: RecordedRequest) -> Reply:
        self.times.append(self.clock.seconds())
        return super()._reply(recorded)


class ReconnectTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.logs = captureLogs(self)
        self.registry = _TimedRegistry(self.clock)

    def tearDown(self) -> None:
        text = "\n".join(self.logs)
        self.assertNotIn(TOKEN, text)
        self.assertNotIn(SIG, text)

    def start(self, modes: list[str], token: str = TOKEN) -> Any:
        self.endpoints = _Endpoints(self.clock, list(modes))
        service = startOnClock(
            self,
            self.clock,
            EchoFactory(),
            self.registry,
            self.endpoints,
            token,
            "http://registry.example",
        )
        self.clock.advance(0)
        return service

    def advance(self, seconds: float, step: float = 0.25) -> None:
        for _ in range(round(seconds / step)):
            self.clock.advance(step)

    def test_policy(self) -> None:
        self.assertEqual([retryDelay(n) for n in range(1, 9)], [1, 2, 4, 8, 16, 30, 30, 30])

    def test_reconnectReregisters(self) -> None:
        service = self.start([])
        self.assertEqual(self.registry.times, [0])
        self.assertEqual(len(self.endpoints.open), 1)
        self.assertTrue(
            any("registered with executor_id exec-1" in line for line in self.logs), self.logs
        )
        for drop in range(3):
            self.endpoints.open[-1].loseConnection()
            t = self.clock.seconds()
            self.advance(0.75)
            self.assertEqual(len(self.registry.times), drop + 1)
            self.advance(0.25)
            # Always 1 s: the completed handshake reset the backoff.
            self.assertEqual(self.registry.times[-1], t + 1.0)
            self.assertEqual(len(self.endpoints.open), drop + 2)
        self.assertEqual(service.endpoint.registrations, 4)
        self.assertEqual(len(self.endpoints.urls), 4)

    def test_500RetriedWithGrowingDelays(self) -> None:
        self.registry.script(*[Reply(500, errorBody("internal", "down"))] * 7)
        self.start([])
        self.advance(100)
        gaps = [b - a for a, b in zip(self.registry.times, self.registry.times[1:], strict=False)]
        self.assertEqual(gaps, [1, 2, 4, 8, 16, 30, 30])
        self.assertEqual(len(self.endpoints.open), 1)
        self.assertTrue(
            any("(500 Internal Server Error, internal): down" in line for line in self.logs)
        )

    def test_connectionRefusedRetried(self) -> None:
        self.start(["refuse", "refuse", "refuse"])
        self.advance(20)
        self.assertEqual(self.registry.times, [0, 1, 3, 7])
        self.assertEqual(len(self.endpoints.open), 1)
        self.assertTrue(
            any(
                "relay websocket connection to ws://relay.example/executor/exec-1?<redacted>"
                in line
                for line in self.logs
            ),
            self.logs,
        )

    def test_refusedUpgradeDoesNotResetBackoff(self) -> None:
        """TCP connects but the upgrade fails: still a failed attempt, the delay keeps growing."""
        self.start(["reject", "reject", "reject"])
        self.advance(20)
        self.assertEqual(self.registry.times, [0, 1, 3, 7])
        self.assertEqual(len(self.endpoints.open), 1)
        # Once open, the backoff is reset: a drop is followed by a 1 s wait again.
        t = self.clock.seconds()
        self.endpoints.open[-1].loseConnection()
        self.advance(1)
        self.assertEqual(self.registry.times[-1], t + 1)

    def test_401StopsWithRegistryMessage(self) -> None:
        service = self.start([], token="wrong-token")
        fatal = service.whenFatal()
        self.advance(1)
        error = self.successResultOf(fatal)
        self.assertIsInstance(error, RegistryAuthError)
        message = (
            "executor registry authentication error: executor registry authentication failed "
            "(401 Unauthorized): invalid bearer token"
        )
        self.assertEqual(str(error), message)
        self.assertFalse(service.running)
        self.advance(100)
        self.assertEqual(self.registry.times, [0])
        self.assertTrue(any(message in line for line in self.logs), self.logs)
        self.assertNotIn("wrong-token", "\n".join(self.logs))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopWhileWaiting(self) -> None:
        self.registry.script(Reply(503, b"busy"))
        service = self.start([])
        self.successResultOf(service.stopService())
        self.assertEqual(self.clock.getDelayedCalls(), [])
