"""A rendezvous that reads the executor's websocket at a fixed rate (a slow consumer).

The throttle is TCP backpressure, not a buffer: once the bytes read so far are ahead of
``rate`` bytes per second, the rendezvous stops reading its socket (``transport.pauseProducing``)
until the clock catches up. The kernel buffers fill, the executor's writes back up, and its
flow control (``docs/flow-control.md``) must pause its children at their source.

Frames are handed to ``onFrame(streamId, seq, payload)`` as they are read and nothing is kept,
so a 200 MB transfer costs the test process no memory.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IListeningPort

from twisted_exec.wire import relay_pb2

FrameHandler = Callable[[str, int, bytes], None]


class SlowConnection:
    """The executor's websocket as the slow rendezvous sees it."""

    def __init__(self, protocol: _SlowProtocol) -> None:
        self._protocol = protocol
        self.onFrame: FrameHandler | None = None
        self.closed: Deferred[None] = Deferred()

    @property
    def bytesRead(self) -> int:
        return self._protocol.bytesRead

    def sendFrame(self, raw: bytes) -> None:
        self._protocol.sendMessage(raw, isBinary=True)

    def abort(self) -> None:
        transport: Any = self._protocol.transport
        if transport is not None:
            transport.abortConnection()


class _SlowProtocol(WebSocketServerProtocol):  # type: ignore[misc]
    factory: _SlowFactory

    def __init__(self) -> None:
        super().__init__()
        self.bytesRead = 0
        self.connection: SlowConnection | None = None
        self._started: float | None = None
        self._resumeCall: IDelayedCall | None = None

    def onConnect(self, request: ConnectionRequest) -> None:
        peer = self.factory.peer
        sig = request.params.get("sig", [None])[0]
        if sig != peer.signature:
            raise ConnectionDeny(403, "bad signature")
        return None

    def onOpen(self) -> None:
        self.connection = SlowConnection(self)
        self.factory.peer._connected(self.connection)

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        self._throttle(len(data))

    def _throttle(self, size: int) -> None:
        rate = self.factory.peer.rate
        if rate is None or self.connection is None:
            return
        clock = self.factory.peer.clock
        now = clock.seconds()
        if self._started is None:
            self._started = now
        self.bytesRead += size
        due = self._started + self.bytesRead / rate  # when we may have read this much
        if due > now and self._resumeCall is None:
            transport: Any = self.transport
            transport.pauseProducing()
            self._resumeCall = clock.callLater(due - now, self._resume)

    def _resume(self) -> None:
        self._resumeCall = None
        transport: Any = self.transport
        if transport is not None and not getattr(transport, "disconnected", False):
            transport.resumeProducing()

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        connection = self.connection
        if connection is None or not isBinary or connection.onFrame is None:
            return
        frame = relay_pb2.RelayMessageFrame()
        frame.ParseFromString(payload)
        if frame.WhichOneof("body") == "data":
            connection.onFrame(frame.stream_id, frame.data.seq, frame.data.payload)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self._resumeCall is not None and self._resumeCall.active():
            self._resumeCall.cancel()
        self._resumeCall = None
        if self.connection is not None and not self.connection.closed.called:
            self.connection.closed.callback(None)


class _SlowFactory(WebSocketServerFactory):  # type: ignore[misc]
    protocol = _SlowProtocol  # type: ignore[assignment]

    def __init__(self, peer: SlowRendezvous) -> None:
        super().__init__("ws://127.0.0.1")
        self.peer = peer
        self.setProtocolOptions(maxMessagePayloadSize=64 * 1024 * 1024, autoPingInterval=0)


class SlowRendezvous:
    """Accepts one executor at a time and reads it at ``rate`` bytes/s (``None``: full speed)."""

    def __init__(self, reactor: Any, rate: float | None) -> None:
        self.reactor = reactor
        self.clock = reactor
        self.rate = rate
        self.signature = secrets.token_urlsafe(16)
        self._port: IListeningPort | None = None
        self._connections: list[SlowConnection] = []
        self._waiters: list[Deferred[SlowConnection]] = []

    def listen(self) -> str:
        self._port = self.reactor.listenTCP(0, _SlowFactory(self), interface="127.0.0.1")
        address: Any = self._port.getHost()
        return f"ws://127.0.0.1:{address.port}"

    def executorUrl(self, executorId: str) -> str:
        assert self._port is not None, "not listening"
        address: Any = self._port.getHost()
        return (
            f"ws://127.0.0.1:{address.port}/executor/{quote(executorId, safe='')}"
            f"?sig={self.signature}"
        )

    def waitForConnection(self) -> Deferred[SlowConnection]:
        if self._connections:
            return succeed(self._connections[-1])
        d: Deferred[SlowConnection] = Deferred()
        self._waiters.append(d)
        return d

    def _connected(self, connection: SlowConnection) -> None:
        self._connections.append(connection)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(connection)

    def stopListening(self) -> Deferred[None]:
        port, self._port = self._port, None
        for connection in self._connections:
            connection.abort()
        if port is None:
            return succeed(None)
        d: Deferred[None] | None = port.stopListening()
        return d if d is not None else succeed(None)
