"""A real relay rendezvous for tests: an autobahn websocket server executors dial after registering.

Executors connect to ``/executor/{id}?sig=...`` (the URL :meth:`Rendezvous.executorUrl` hands the
registry). The test then plays the harness in-process through :class:`ExecutorConnection` and its
:class:`HarnessStream` objects (one per virtual stream: JSON-RPC requests in, replies and
notifications out, framed exactly as a cloud harness frames them). Out-of-process harnesses (a
conformance script) can connect to ``/harness/{id}``: their binary messages are forwarded to the
executor, and the executor's frames go back to the harness that last used that stream id.

Knobs for failure tests: ``refuseUpgrades`` (answer the upgrade with HTTP 404), ``answerPings``
(swallow pings to simulate a half-open connection), and per-connection ``close()``/``abort()``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.defer import Deferred, DeferredQueue, succeed
from twisted.internet.interfaces import IListeningPort, IReactorTCP
from twisted.logger import Logger

from ..relay import relay_pb2
from ..relay.frames import encodeData, encodeReset, encodeResume

log = Logger()

CloseInfo = tuple[bool, int | None, str | None]


class HarnessStream:
    """The harness end of one virtual stream."""

    def __init__(self, connection: ExecutorConnection, streamId: str) -> None:
        self.connection = connection
        self.streamId = streamId
        self.messages: list[dict[str, Any]] = []  # everything received, in order
        self.seqs: list[int] = []  # inbound data seqs, in order
        self.notifications: DeferredQueue[dict[str, Any]] = DeferredQueue()
        self._nextSeq = 0
        self._nextId = 1
        self._pending: dict[Any, Deferred[dict[str, Any]]] = {}
        self._anyWaiters: list[Deferred[dict[str, Any]]] = []

    def send(self, message: dict[str, Any] | bytes, seq: int | None = None) -> None:
        """One data frame; ``message`` is JSON-encoded unless it is bytes already."""
        payload = message if isinstance(message, bytes) else json.dumps(message).encode()
        if seq is None:
            seq, self._nextSeq = self._nextSeq, self._nextSeq + 1
        self.connection.sendFrame(encodeData(self.streamId, seq, payload))

    def request(self, method: str, params: Any = None) -> Deferred[dict[str, Any]]:
        """Send a request; fires with the whole response object (``result`` or ``error``)."""
        ident = self._nextId
        self._nextId += 1
        d: Deferred[dict[str, Any]] = Deferred()
        self._pending[ident] = d
        message: dict[str, Any] = {"id": ident, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return d

    def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

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
        if "method" not in message and message.get("id") in self._pending:
            self._pending.pop(message["id"]).callback(message)
        elif "method" in message and "id" not in message:
            self.notifications.put(message)


class ExecutorConnection:
    """One executor websocket as the rendezvous sees it."""

    def __init__(self, protocol: _RendezvousProtocol, executorId: str, request: Any) -> None:
        self._protocol = protocol
        self.executorId = executorId
        self.path: str = request.path
        self.query: dict[str, list[str]] = dict(request.params)
        self.headers: dict[str, str] = dict(request.headers)
        self.protocols: list[str] = list(request.protocols)
        self.frames: list[bytes] = []  # every binary message from the executor
        self.texts: list[str] = []
        self.orphans: list[bytes] = []  # frames for streams no HarnessStream holds
        self.pings = 0
        self.closeInfo: CloseInfo | None = None
        self._streams: dict[str, HarnessStream] = {}
        self._closed: list[Deferred[CloseInfo]] = []
        self._pingWaiters: list[Deferred[int]] = []
        self._frameWaiters: list[Deferred[bytes]] = []
        self.harnessRoute: Callable[[str, bytes], bool] | None = None

    def stream(self, streamId: str) -> HarnessStream:
        """The harness end of ``streamId`` (created on first use; nothing is sent)."""
        if streamId not in self._streams:
            self._streams[streamId] = HarnessStream(self, streamId)
        return self._streams[streamId]

    def forgetStream(self, streamId: str) -> None:
        self._streams.pop(streamId, None)

    def sendFrame(self, raw: bytes) -> None:
        self._protocol.sendMessage(raw, isBinary=True)

    def sendText(self, text: str) -> None:
        self._protocol.sendMessage(text.encode(), isBinary=False)

    def close(self, code: int = 1000, reason: str = "rendezvous closing") -> None:
        self._protocol.sendClose(code, reason)

    def abort(self) -> None:
        """Drop the TCP connection without a close handshake."""
        transport: Any = self._protocol.transport
        if transport is not None:
            transport.abortConnection()

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

    def _frameReceived(self, raw: bytes) -> None:
        self.frames.append(raw)
        waiters, self._frameWaiters = self._frameWaiters, []
        for w in waiters:
            w.callback(raw)
        frame = relay_pb2.RelayMessageFrame()
        try:
            frame.ParseFromString(raw)
        except Exception:
            self.orphans.append(raw)
            return
        if self.harnessRoute is not None and self.harnessRoute(frame.stream_id, raw):
            return
        stream = self._streams.get(frame.stream_id)
        if stream is None or frame.WhichOneof("body") != "data":
            self.orphans.append(raw)
            return
        stream._deliver(frame.data.seq, frame.data.payload)

    def _pinged(self) -> None:
        self.pings += 1
        waiters, self._pingWaiters = self._pingWaiters, []
        for w in waiters:
            w.callback(self.pings)

    def _lost(self, info: CloseInfo) -> None:
        self.closeInfo = info
        waiters, self._closed = self._closed, []
        for w in waiters:
            w.callback(info)


class _RendezvousProtocol(WebSocketServerProtocol):  # type: ignore[misc]
    factory: _RendezvousFactory

    def __init__(self) -> None:
        super().__init__()
        self.connection: ExecutorConnection | None = None
        self.harnessOf: str | None = None
        self._request: ConnectionRequest | None = None

    def onConnect(self, request: ConnectionRequest) -> None:
        rendezvous = self.factory.rendezvous
        parts = request.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] not in ("executor", "harness") or not parts[1]:
            raise ConnectionDeny(404, "unknown path")
        executorId = unquote(parts[1])
        if parts[0] == "harness":
            self.harnessOf = executorId
            return None
        if rendezvous.refuseUpgrades:
            raise ConnectionDeny(404, "executor not expected")
        sig = request.params.get("sig", [None])[0]
        if rendezvous.checkSignature and sig != rendezvous.signatures.get(executorId):
            raise ConnectionDeny(403, "bad signature")
        self._request = request
        self.connection = ExecutorConnection(self, executorId, request)
        return None

    def onOpen(self) -> None:
        if self.connection is not None:
            self.factory.rendezvous._connected(self.connection)
        elif self.harnessOf is not None:
            self.factory.rendezvous._harnessOpened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.connection is not None:
            if isBinary:
                self.connection._frameReceived(payload)
            else:
                self.connection.texts.append(payload.decode("utf-8", "replace"))
        elif self.harnessOf is not None and isBinary:
            self.factory.rendezvous._fromHarness(self, payload)

    def onPing(self, payload: bytes) -> None:
        if self.connection is not None:
            self.connection._pinged()
        if self.factory.rendezvous.answerPings:
            super().onPing(payload)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self.connection is not None:
            self.factory.rendezvous._disconnected(self.connection, (wasClean, code, reason))
        elif self.harnessOf is not None:
            self.factory.rendezvous._harnessClosed(self)


class _RendezvousFactory(WebSocketServerFactory):  # type: ignore[misc]
    protocol = _RendezvousProtocol  # type: ignore[assignment]

    def __init__(self, rendezvous: Rendezvous, url: str) -> None:
        super().__init__(url)
        self.rendezvous = rendezvous


class Rendezvous:
    """The relay rendezvous: accepts executor websockets and lets a test play the harness."""

    def __init__(self, reactor: IReactorTCP, *, checkSignature: bool = True) -> None:
        self._reactor = reactor
        self.checkSignature = checkSignature
        self.refuseUpgrades = False
        self.answerPings = True
        self.signatures: dict[str, str] = {}
        self.connections: list[ExecutorConnection] = []
        self.current: dict[str, ExecutorConnection] = {}
        self._waiters: list[tuple[int, Deferred[ExecutorConnection]]] = []
        self._port: IListeningPort | None = None
        self._harnesses: dict[str, list[_RendezvousProtocol]] = {}
        self._owners: dict[tuple[str, str], _RendezvousProtocol] = {}

    def listen(self, interface: str = "127.0.0.1") -> str:
        """Listen on a free loopback port; returns the base ``ws://`` URL."""
        factory = _RendezvousFactory(self, "ws://127.0.0.1")
        factory.setProtocolOptions(maxMessagePayloadSize=64 * 1024 * 1024)
        self._port = self._reactor.listenTCP(0, factory, interface=interface)
        return self.baseUrl

    @property
    def baseUrl(self) -> str:
        assert self._port is not None, "not listening"
        address = self._port.getHost()
        return f"ws://{address.host}:{address.port}"  # type: ignore[attr-defined]

    def executorUrl(self, executorId: str) -> str:
        """A fresh signed URL for ``executorId`` (what the registry returns)."""
        sig = secrets.token_urlsafe(16)
        self.signatures[executorId] = sig
        return f"{self.baseUrl}/executor/{quote(executorId, safe='')}?sig={sig}"

    def harnessUrl(self, executorId: str) -> str:
        return f"{self.baseUrl}/harness/{quote(executorId, safe='')}"

    def waitForConnection(self, count: int) -> Deferred[ExecutorConnection]:
        """Fires with the ``count``-th executor connection (1-based) once it is open."""
        if len(self.connections) >= count:
            return succeed(self.connections[count - 1])
        d: Deferred[ExecutorConnection] = Deferred()
        self._waiters.append((count, d))
        return d

    def stopListening(self) -> Deferred[None]:
        port, self._port = self._port, None
        if port is None:
            return succeed(None)
        d: Deferred[None] | None = port.stopListening()
        return d if d is not None else succeed(None)

    def closeAll(self) -> None:
        """Abort every open executor and harness connection (for test clean-up)."""
        for connection in self.connections:
            if connection.closeInfo is None:
                connection.abort()
        for harnesses in self._harnesses.values():
            for h in harnesses:
                transport: Any = h.transport
                if transport is not None:
                    transport.abortConnection()

    def _connected(self, connection: ExecutorConnection) -> None:
        self.connections.append(connection)
        self.current[connection.executorId] = connection
        connection.harnessRoute = lambda streamId, raw: self._toHarness(
            connection.executorId, streamId, raw
        )
        for waiter in [w for w in self._waiters if w[0] <= len(self.connections)]:
            self._waiters.remove(waiter)
            waiter[1].callback(self.connections[waiter[0] - 1])

    def _disconnected(self, connection: ExecutorConnection, info: CloseInfo) -> None:
        if self.current.get(connection.executorId) is connection:
            del self.current[connection.executorId]
        connection._lost(info)

    # -- out-of-process harnesses ------------------------------------------------------------

    def _harnessOpened(self, harness: _RendezvousProtocol) -> None:
        assert harness.harnessOf is not None
        self._harnesses.setdefault(harness.harnessOf, []).append(harness)

    def _harnessClosed(self, harness: _RendezvousProtocol) -> None:
        assert harness.harnessOf is not None
        group = self._harnesses.get(harness.harnessOf, [])
        if harness in group:
            group.remove(harness)
        for key in [k for k, v in self._owners.items() if v is harness]:
            del self._owners[key]

    def _fromHarness(self, harness: _RendezvousProtocol, raw: bytes) -> None:
        assert harness.harnessOf is not None
        frame = relay_pb2.RelayMessageFrame()
        try:
            frame.ParseFromString(raw)
            self._owners[(harness.harnessOf, frame.stream_id)] = harness
        except Exception:
            pass  # forwarded anyway: the executor's own validation is what is under test
        connection = self.current.get(harness.harnessOf)
        if connection is not None:
            connection.sendFrame(raw)
        else:
            log.info("harness frame for absent executor {ident!r} dropped", ident=harness.harnessOf)

    def _toHarness(self, executorId: str, streamId: str, raw: bytes) -> bool:
        owner = self._owners.get((executorId, streamId))
        if owner is None:
            return False
        owner.sendMessage(raw, isBinary=True)
        return True
