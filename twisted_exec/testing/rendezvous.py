"""The relay rendezvous for tests: the real one (:mod:`twisted_exec.rendezvous`) plus a harness
played in-process.

:class:`Rendezvous` serves the real :class:`~twisted_exec.rendezvous.server.RendezvousServer`
on a free loopback port. Executors connect to ``/executor/{id}?sig=...`` (the signed one-time URL
:meth:`Rendezvous.executorUrl` hands a registry such as
:class:`~twisted_exec.testing.registry.FakeRegistry`). Each executor websocket is an
:class:`ExecutorConnection` (the server's executor link, recording what it sees), on which a test
plays the harness in-process through :class:`HarnessStream` objects (one per virtual stream:
JSON-RPC requests in, replies and notifications out, framed exactly as a cloud harness frames
them). Out-of-process harnesses (the harness client, a conformance script) connect to
``/harness/{id}`` and are routed by the real router; without ``tokens`` that route needs no
bearer token.

Knobs for failure tests: ``refuseUpgrades`` (answer the upgrade with HTTP 404), ``answerPings``
(swallow pings to simulate a half-open connection), ``checkSignature``, and per-connection
``close()``/``abort()``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.defer import Deferred, DeferredQueue, succeed
from twisted.internet.interfaces import IReactorTCP
from twisted.logger import Logger

from twisted_exec.rendezvous.auth import TokenSet
from twisted_exec.rendezvous.frame_head import readHead
from twisted_exec.rendezvous.interfaces import CloseInfo
from twisted_exec.rendezvous.server import RendezvousServer
from twisted_exec.rendezvous.websocket import ExecutorLink, HarnessLink, RendezvousWebSocket
from twisted_exec.testing.loopback import LoopbackPort
from twisted_exec.wire import relay_pb2
from twisted_exec.wire.frames import encodeData, encodeReset, encodeResume
from twisted_exec.wire.rpcclient import Notification, Reply, RpcClientCore

log = Logger()

__all__ = ["CloseInfo", "ExecutorConnection", "HarnessStream", "Rendezvous"]


class HarnessStream:
    """The harness end of one virtual stream."""

    def __init__(self, connection: ExecutorConnection, streamId: str) -> None:
        self.connection = connection
        self.streamId = streamId
        self.messages: list[dict[str, Any]] = []  # everything received, in order
        self.seqs: list[int] = []  # inbound data seqs, in order
        self.notifications: DeferredQueue[dict[str, Any]] = DeferredQueue()
        self._nextSeq = 0
        self._rpc: RpcClientCore[Deferred[dict[str, Any]]] = RpcClientCore()
        self._anyWaiters: list[Deferred[dict[str, Any]]] = []

    def send(self, message: dict[str, Any] | bytes, seq: int | None = None) -> None:
        """One data frame; ``message`` is JSON-encoded unless it is bytes already."""
        payload = message if isinstance(message, bytes) else json.dumps(message).encode()
        if seq is None:
            seq, self._nextSeq = self._nextSeq, self._nextSeq + 1
        self.connection.sendFrame(encodeData(self.streamId, seq, payload))

    def request(self, method: str, params: Any = None) -> Deferred[dict[str, Any]]:
        """Send a request; fires with the whole response object (``result`` or ``error``)."""
        d: Deferred[dict[str, Any]] = Deferred()
        self.send(self._rpc.request(method, params, d))
        return d

    def notify(self, method: str, params: Any = None) -> None:
        self.send(self._rpc.notification(method, params))

    def initialize(self, clientName: str = "twisted-exec-test", **extra: Any) -> Deferred[str]:
        """``initialize`` + ``initialized``; fires with the session id."""
        return Deferred.fromCoroutine(self._initialize(clientName, extra))

    async def _initialize(self, clientName: str, extra: dict[str, Any]) -> str:
        reply = await self.request("initialize", {"clientName": clientName, **extra})
        if "result" not in reply:
            raise AssertionError(f"initialize failed: {reply!r}")
        self.notify("initialized")
        sessionId: str = reply["result"]["sessionId"]
        return sessionId

    def nextMessage(self) -> Deferred[dict[str, Any]]:
        """The next message received on this stream (whatever it is)."""
        d: Deferred[dict[str, Any]] = Deferred()
        self._anyWaiters.append(d)
        return d

    def reset(self, reason: str = "harness reset") -> None:
        self.connection.sendFrame(encodeReset(self.streamId, reason))

    def resume(self, nextSeq: int = 0) -> None:
        self.connection.sendFrame(encodeResume(self.streamId, nextSeq))

    def _deliver(self, seq: int, payload: bytes) -> None:
        message = json.loads(payload)
        self.seqs.append(seq)
        self.messages.append(message)
        waiters, self._anyWaiters = self._anyWaiters, []
        for w in waiters:
            w.callback(message)
        received = self._rpc.received(message)
        if isinstance(received, Reply):
            received.pending.callback(message)
        elif isinstance(received, Notification):
            self.notifications.put(message)


class ExecutorConnection(ExecutorLink):
    """One executor websocket as the rendezvous sees it: the real link, recording everything."""

    def __init__(
        self, protocol: RendezvousWebSocket, executorId: str, request: ConnectionRequest
    ) -> None:
        super().__init__(protocol, executorId, request)
        self.frames: list[bytes] = []  # every binary message from the executor
        self.texts: list[str] = []
        self.orphans: list[bytes] = []  # frames for streams no harness holds
        self.pings = 0
        self.closeInfo: CloseInfo | None = None
        self._streams: dict[str, HarnessStream] = {}
        self._closed: list[Deferred[CloseInfo]] = []
        self._pingWaiters: list[Deferred[int]] = []
        self._frameWaiters: list[Deferred[bytes]] = []

    @property
    def rendezvous(self) -> Rendezvous:
        server = self.server
        assert isinstance(server, _TestServer)
        return server.rendezvous

    def stream(self, streamId: str) -> HarnessStream:
        """The in-process harness end of ``streamId`` (created on first use; nothing is sent)."""
        if streamId not in self._streams:
            self._streams[streamId] = HarnessStream(self, streamId)
        return self._streams[streamId]

    def forgetStream(self, streamId: str) -> None:
        self._streams.pop(streamId, None)

    def whenClosed(self) -> Deferred[CloseInfo]:
        if self.closeInfo is not None:
            return succeed(self.closeInfo)
        d: Deferred[CloseInfo] = Deferred()
        self._closed.append(d)
        return d

    def waitForPings(self, count: int) -> Deferred[int]:
        if self.pings >= count:
            return succeed(self.pings)
        d: Deferred[int] = Deferred()
        self._pingWaiters.append(d)
        d.addCallback(lambda n: n if n >= count else self.waitForPings(count))
        return d

    def nextFrame(self) -> Deferred[bytes]:
        d: Deferred[bytes] = Deferred()
        self._frameWaiters.append(d)
        return d

    # -- link callbacks ----------------------------------------------------------------------

    def opened(self) -> None:
        super().opened()
        self.rendezvous._connected(self)

    def frameReceived(self, raw: bytes) -> None:
        self.frames.append(raw)
        waiters, self._frameWaiters = self._frameWaiters, []
        for w in waiters:
            w.callback(raw)
        if isinstance(readHead(raw), str):
            self.orphans.append(raw)
            return
        super().frameReceived(raw)  # the router: to a harness websocket, or back to unrouted()

    def unrouted(self, streamId: str, raw: bytes) -> None:
        """A frame no harness websocket holds: for an in-process stream, or an orphan."""
        frame = relay_pb2.RelayMessageFrame()
        frame.ParseFromString(raw)
        stream = self._streams.get(streamId)
        if stream is None or frame.WhichOneof("body") != "data":
            self.orphans.append(raw)
            return
        stream._deliver(frame.data.seq, frame.data.payload)

    def textReceived(self, text: str) -> None:
        self.texts.append(text)

    def pinged(self) -> None:
        self.pings += 1
        waiters, self._pingWaiters = self._pingWaiters, []
        for w in waiters:
            w.callback(self.pings)

    def lost(self, info: CloseInfo) -> None:
        super().lost(info)
        self.closeInfo = info
        self.rendezvous._disconnected(self)
        waiters, self._closed = self._closed, []
        for w in waiters:
            w.callback(info)


class _TestServer(RendezvousServer):
    linkForExecutor = ExecutorConnection

    def __init__(self, rendezvous: Rendezvous, reactor: Any, tokens: TokenSet | None) -> None:
        # No keepalive of our own: tests count the executor's pings and script silences.
        super().__init__(reactor, tokens, pingInterval=None, idleTimeout=None)
        self.rendezvous = rendezvous
        self.router.onUnrouted = self._unrouted

    def _unrouted(self, link: Any, streamId: str, raw: bytes) -> None:
        if isinstance(link, ExecutorConnection):
            link.unrouted(streamId, raw)

    def admitExecutor(
        self, protocol: RendezvousWebSocket, executorId: str, request: ConnectionRequest
    ) -> ExecutorLink:
        if self.rendezvous.refuseUpgrades:
            raise ConnectionDeny(404, "executor not expected")
        return super().admitExecutor(protocol, executorId, request)

    def admitHarness(
        self, protocol: RendezvousWebSocket, executorId: str, request: ConnectionRequest
    ) -> HarnessLink:
        if self.tokens is None:  # an open test rendezvous: any harness, any executor id
            self.protocols.add(protocol)
            return HarnessLink(protocol, executorId)
        return super().admitHarness(protocol, executorId, request)


class Rendezvous(LoopbackPort):
    """The real rendezvous on a loopback port, with test affordances.

    ``tokens`` (bearer tokens for ``/harness/{id}``) default to none: the harness route is open.
    The registry route (``/cloud/...``) is served too; tests usually pair the rendezvous with
    :class:`~twisted_exec.testing.registry.FakeRegistry` for scripted registry failures.
    """

    scheme = "ws"

    def __init__(
        self,
        reactor: IReactorTCP,
        *,
        checkSignature: bool = True,
        tokens: list[str] | None = None,
    ) -> None:
        self._reactor = reactor
        self.server = _TestServer(self, reactor, TokenSet(tokens) if tokens is not None else None)
        self.server.checkSignature = checkSignature
        self.refuseUpgrades = False
        self.signatures: dict[str, str] = {}  # the last signature handed out per executor id
        self.connections: list[ExecutorConnection] = []
        self.current: dict[str, ExecutorConnection] = {}
        self._waiters: list[tuple[int, Deferred[ExecutorConnection]]] = []

    @property
    def router(self) -> Any:
        return self.server.router

    @property
    def checkSignature(self) -> bool:
        return self.server.checkSignature

    @checkSignature.setter
    def checkSignature(self, value: bool) -> None:
        self.server.checkSignature = value

    @property
    def answerPings(self) -> bool:
        return self.server.answerPings

    @answerPings.setter
    def answerPings(self, value: bool) -> None:
        self.server.answerPings = value

    def listen(self, interface: str = "127.0.0.1") -> str:
        """Listen on a free loopback port; returns the base ``ws://`` URL."""
        site: Any = self.server.site()  # the real guards: deadlines, caps, early 401s
        return self._listenOn(self._reactor, site, interface)

    @property
    def httpUrl(self) -> str:
        """The same port as ``http://``: the registry's base URL (``/cloud/...``)."""
        return "http" + self.baseUrl[2:]

    def executorUrl(self, executorId: str) -> str:
        """A fresh signed URL for ``executorId`` (what the registry returns)."""
        url = self.server.executorUrl(executorId, self.baseUrl)
        self.signatures[executorId] = url.partition("?sig=")[2]
        self.server.router.registered(executorId)
        return url

    def harnessUrl(self, executorId: str) -> str:
        return f"{self.baseUrl}/harness/{quote(executorId, safe='')}"

    def waitForConnection(self, count: int) -> Deferred[ExecutorConnection]:
        """Fires with the ``count``-th executor connection (1-based) once it is open."""
        if len(self.connections) >= count:
            return succeed(self.connections[count - 1])
        d: Deferred[ExecutorConnection] = Deferred()
        self._waiters.append((count, d))
        return d

    def closeAll(self) -> None:
        """Abort every open executor and harness connection (for test clean-up)."""
        self.server.abortAll()

    def _connected(self, connection: ExecutorConnection) -> None:
        self.connections.append(connection)
        self.current[connection.executorId] = connection
        for waiter in [w for w in self._waiters if w[0] <= len(self.connections)]:
            self._waiters.remove(waiter)
            waiter[1].callback(self.connections[waiter[0] - 1])

    def _disconnected(self, connection: ExecutorConnection) -> None:
        if self.current.get(connection.executorId) is connection:
            del self.current[connection.executorId]
