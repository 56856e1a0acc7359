"""``TCP_NODELAY`` on every socket we open or accept, read back with ``getsockopt``.

Real loopback connections of each kind: the local websocket listener and a client of it; the
relay websocket (executor side), the rendezvous's executor and harness sides, and the harness
client. autobahn's own attempt (in ``connectionMade``) is lost to a bare ``except``
(``twisted_exec/net/nodelay.py`` says why); these tests also check that every other autobahn
option we set reaches the live protocol, which is how we know that one was the only casualty.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.support.local import connectClient, serveExecutor
from tests.support.relay import startRemoteExecutor, startRendezvous
from twisted_exec.executor.executor import Executor
from twisted_exec.executor.transports.relay.protocol import MAX_MESSAGE_BYTES
from twisted_exec.harness import connectHarness
from twisted_exec.net import nodelay
from twisted_exec.net.nodelay import NoDelayMixin, quickAck, setNoDelay
from twisted_exec.rendezvous import websocket as rendezvous_websocket
from twisted_exec.rendezvous.auth import TokenSet

TOKEN = "tok-NODELAY-s3cret"
TIMEOUT = 15


def noDelay(transport: Any) -> bool:
    """``TCP_NODELAY`` as the kernel has it for this transport's socket."""
    sock: socket.socket = transport.getHandle()
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def bounded(d: Deferred[Any]) -> Deferred[Any]:
    return d.addTimeout(TIMEOUT, reactor)


class OptionsReachProtocol:
    """Mixin for the tests: every autobahn option on the live protocol is the factory's."""

    def assertOptionsCopied(self, protocol: Any) -> None:
        test: Any = self
        for name in protocol.CONFIG_ATTRS:
            test.assertEqual(
                getattr(protocol, name), getattr(protocol.factory, name), f"option {name}"
            )


class LocalListenerTests(OptionsReachProtocol, TestCase):
    timeout = 30

    async def test_bothEndsOfALocalWebsocket(self) -> None:
        executor = Executor(reactor)
        self.addCleanup(executor.shutdown)
        service = serveExecutor(self, executor)
        assert service.url is not None
        client = await connectClient(self, service.url)
        await bounded(Deferred.fromCoroutine(client.handshake()))
        [server] = service.factory.connections
        live: Any = server
        self.assertTrue(noDelay(server.transport), "accepted local websocket")
        self.assertTrue(noDelay(client.protocol.transport), "local websocket client")
        self.assertOptionsCopied(server)
        self.assertEqual(live.maxMessagePayloadSize, service.factory.maxMessagePayloadSize)
        self.assertOptionsCopied(client.protocol)


class RelayTests(OptionsReachProtocol, TestCase):
    timeout = 30

    async def test_relayRendezvousAndHarness(self) -> None:
        server, _, url = startRendezvous(self, TokenSet([TOKEN]))
        executor = Executor(reactor)
        self.addCleanup(executor.shutdown)
        remote = startRemoteExecutor(
            self, executor, url, "box", TOKEN, retryPolicy=lambda attempt: 0.05
        )
        await bounded(server.router.waitForExecutor("box", 1))
        harness = await bounded(connectHarness(reactor, url, "box", TOKEN))
        self.addCleanup(harness.close)
        session = await bounded(harness.openSession())
        await bounded(session.getMetadata("/"))

        relay: Any = remote.endpoint.current
        assert relay is not None
        self.assertTrue(noDelay(relay.transport), "relay websocket (executor side)")
        self.assertOptionsCopied(relay)
        self.assertEqual(relay.maxMessagePayloadSize, MAX_MESSAGE_BYTES)
        self.assertEqual(relay.openHandshakeTimeout, 30)

        harnessProtocol: Any = harness._protocol
        self.assertTrue(noDelay(harnessProtocol.transport), "harness websocket (client side)")
        self.assertOptionsCopied(harnessProtocol)

        sides = list(server.protocols)
        self.assertEqual(len(sides), 2)  # the executor's and the harness's, at the rendezvous
        for side in sides:
            self.assertTrue(noDelay(side.transport), "rendezvous websocket (server side)")
            self.assertOptionsCopied(side)

    async def test_rendezvousAcksEveryReadAtOnce(self) -> None:
        """Each read on an open rendezvous websocket, the executor's and the harness's, asks
        its real TCP socket for an immediate ACK (for peers that leave Nagle on)."""
        asked: list[Any] = []

        def recording(transport: Any) -> bool:
            done = quickAck(transport)
            if done:
                asked.append(transport)
            return done

        self.patch(rendezvous_websocket, "quickAck", recording)
        server, _, url = startRendezvous(self, TokenSet([TOKEN]))
        executor = Executor(reactor)
        self.addCleanup(executor.shutdown)
        startRemoteExecutor(self, executor, url, "box", TOKEN, retryPolicy=lambda attempt: 0.05)
        await bounded(server.router.waitForExecutor("box", 1))
        harness = await bounded(connectHarness(reactor, url, "box", TOKEN))
        self.addCleanup(harness.close)
        session = await bounded(harness.openSession())
        await bounded(session.getMetadata("/"))
        sides = {side.transport for side in server.protocols}
        self.assertEqual(len(sides), 2)
        self.assertEqual(set(asked), sides)  # both sides, set on their real sockets


class QuickAckTests(SynchronousTestCase):
    def test_setOnTheSocketAlsoUnderTLS(self) -> None:
        calls: list[tuple[int, int, int]] = []

        class Sock:
            def setsockopt(self, level: int, option: int, value: int) -> None:
                calls.append((level, option, value))

        class Tcp:
            socket = Sock()

        class Tls:
            transport = Tcp()

        if nodelay._QUICKACK is None:
            self.assertFalse(quickAck(Tcp()))
            return
        self.assertTrue(quickAck(Tcp()))
        self.assertTrue(quickAck(Tls()))
        self.assertEqual(calls, [(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)] * 2)

    def test_noTcpSocketIsNotAnError(self) -> None:
        self.assertFalse(quickAck(StringTransport()))
        self.assertFalse(quickAck(None))

        class Refusing:
            class socket:  # noqa: N801
                @staticmethod
                def setsockopt(level: int, option: int, value: int) -> None:
                    raise OSError(95, "Operation not supported")

        self.assertFalse(quickAck(Refusing()))

    def test_realSocket(self) -> None:
        a, b = socket.socketpair()  # a UNIX pair: no TCP option, refused without an error
        self.addCleanup(a.close)
        self.addCleanup(b.close)

        class T:
            socket = a

        self.assertFalse(quickAck(T()))
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        client = socket.create_connection(listener.getsockname())
        self.addCleanup(client.close)
        T.socket = client
        self.assertEqual(quickAck(T()), nodelay._QUICKACK is not None)


class SetNoDelayTests(SynchronousTestCase):
    def test_noTcpSocketIsNotAnError(self) -> None:
        self.assertFalse(setNoDelay(StringTransport()))
        self.assertFalse(setNoDelay(None))

    def test_refusedBySocket(self) -> None:
        class Refusing:
            def setTcpNoDelay(self, enabled: bool) -> None:
                raise OSError(95, "Operation not supported")

        self.assertFalse(setNoDelay(Refusing()))

    def test_mixinSetsItAfterTheBaseConnectionMade(self) -> None:
        calls: list[str] = []

        class Transport:
            def setTcpNoDelay(self, enabled: bool) -> None:
                calls.append(f"nodelay {enabled}")

        class Base:
            transport: Any = Transport()

            def connectionMade(self) -> None:
                calls.append("base")

        class Proto(NoDelayMixin, Base):
            pass

        Proto().connectionMade()
        self.assertEqual(calls, ["base", "nodelay True"])
