"""The environment rendezvous for tests: the real one on loopback, with a capture of its relay.

:class:`EnvironmentRendezvous` serves the real
:class:`~twisted_exec.rendezvous.server.RendezvousServer` (register, connect, validate and the
environment websockets of Codex 0.171) on a free loopback port, and records every relay frame
it routes in a :class:`RelayCapture`: what a network observer between rendezvous and executor
would see. :meth:`RelayCapture.plaintextLeaks` is the check that none of it is JSON-RPC in clear.

Used by the end-to-end tests with the real 0.171 CLI and executor, and by tests of our own
Noise executor and harness (helper ``noise``): point an executor at :attr:`baseUrl` with
``--remote``/``--environment-id`` and a token of :attr:`tokens`, wait with
:meth:`waitForExecutor`, then connect a harness.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from google.protobuf.message import DecodeError
from twisted.internet.defer import Deferred, DeferredQueue, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.interfaces import IListeningPort
from twisted.web.server import Site

from twisted_exec.rendezvous.auth import TokenSet
from twisted_exec.rendezvous.environment_resource import FROM_EXECUTOR, FROM_HARNESS
from twisted_exec.rendezvous.server import RendezvousServer
from twisted_exec.wire import relay_pb2

__all__ = [
    "FROM_EXECUTOR",
    "FROM_HARNESS",
    "CapturedFrame",
    "EnvironmentRendezvous",
    "FrameSocket",
    "RelayCapture",
    "UpgradeRefusedError",
    "connectFrameSocket",
]

#: Bytes that occur in any JSON-RPC message of the exec-server protocol, in clear.
JSON_RPC_MARKERS: tuple[bytes, ...] = (
    b'"method"',
    b'"jsonrpc"',
    b'"params"',
    b'"result"',
    b'"id":',
    b"initialize",
    b"process/start",
    b"fs/",
)


@dataclass(frozen=True)
class CapturedFrame:
    """One relay frame as the rendezvous received it."""

    direction: str  # FROM_EXECUTOR or FROM_HARNESS
    environmentId: str
    raw: bytes

    def decode(self) -> Any:
        frame = relay_pb2.RelayMessageFrame()
        frame.ParseFromString(self.raw)
        return frame

    @property
    def kind(self) -> str | None:
        try:
            return self.decode().WhichOneof("body")  # type: ignore[no-any-return]
        except DecodeError:
            return "undecodable"

    @property
    def streamId(self) -> str:
        return self.decode().stream_id  # type: ignore[no-any-return]

    @property
    def payload(self) -> bytes:
        """The data or handshake payload (the endpoints' bytes), else ``b""``."""
        frame = self.decode()
        kind = frame.WhichOneof("body")
        if kind == "data":
            return frame.data.payload  # type: ignore[no-any-return]
        if kind == "handshake":
            return frame.handshake.payload  # type: ignore[no-any-return]
        return b""


class RelayCapture:
    """Every frame the environment relays received, in order."""

    def __init__(self) -> None:
        self.frames: list[CapturedFrame] = []

    def __call__(self, direction: str, environmentId: str, raw: bytes) -> None:
        self.frames.append(CapturedFrame(direction, environmentId, raw))

    def kinds(self, direction: str | None = None) -> Counter[str | None]:
        return Counter(f.kind for f in self.frames if direction in (None, f.direction))

    def of(self, kind: str, direction: str | None = None) -> list[CapturedFrame]:
        return [f for f in self.frames if f.kind == kind and direction in (None, f.direction)]

    def plaintextLeaks(self, extra: Iterable[bytes] = ()) -> list[tuple[CapturedFrame, bytes]]:
        """Frames whose bytes contain a JSON-RPC marker or one of ``extra`` (say, a command
        line the test ran): empty when the relay carried only ciphertext."""
        markers: Sequence[bytes] = (*JSON_RPC_MARKERS, *extra)
        return [(f, m) for f in self.frames for m in markers if m and m in f.raw]


class EnvironmentRendezvous:
    """The real rendezvous on a free loopback port, capturing its environment relay."""

    def __init__(self, reactor: Any, tokens: Iterable[str], *, reach: str = "*") -> None:
        self.reactor = reactor
        self.tokens = tuple(tokens)
        # Every token's harnesses may reach every id (``reach=``, docs/security.md): the tests
        # of this double are about the 0.171 loop; tenancy has tests of its own.
        self.server = RendezvousServer(
            reactor, TokenSet(f"{token} reach={reach}" for token in self.tokens)
        )
        self.capture = RelayCapture()
        self.server.environments.onFrame = self.capture
        self._port: IListeningPort | None = None

    @property
    def registry(self) -> Any:
        return self.server.environments.registry

    def listen(self, interface: str = "127.0.0.1") -> str:
        site: Any = Site(self.server.resource())
        site.noisy = False
        self._port = self.reactor.listenTCP(0, site, interface=interface)
        return self.baseUrl

    @property
    def baseUrl(self) -> str:
        assert self._port is not None, "not listening"
        address: Any = self._port.getHost()
        return f"http://{address.host}:{address.port}"

    def waitForExecutor(self, environmentId: str, connections: int = 1) -> Deferred[None]:
        """Fires once ``environmentId`` has had ``connections`` executor websockets in all."""
        return self.server.environments.router.waitForExecutor(environmentId, connections)

    def stop(self) -> Deferred[None]:
        """Stop listening and drop every websocket."""
        port, self._port = self._port, None
        self.server.abortAll()
        if port is None:
            return succeed(None)
        d: Deferred[None] | None = port.stopListening()
        return d if d is not None else succeed(None)


class UpgradeRefusedError(Exception):
    """The websocket upgrade was answered with an HTTP error (``status``, autobahn's text)."""

    def __init__(self, status: int | None, text: str) -> None:
        super().__init__(text)
        self.status = status


class _FrameProtocol(WebSocketClientProtocol):  # type: ignore[misc]
    factory: _FrameFactory

    def onOpen(self) -> None:
        self.factory.socket._opened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.factory.socket.received.put(payload)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.socket._closedWith(code, reason)


class _FrameFactory(WebSocketClientFactory):  # type: ignore[misc]
    protocol = _FrameProtocol  # type: ignore[assignment]

    def __init__(
        self, url: str, reactor: Any, socket: FrameSocket, headers: dict[str, str] | None
    ) -> None:
        super().__init__(url, reactor=reactor, headers=headers)
        self.socket = socket
        self.setProtocolOptions(
            openHandshakeTimeout=0, closeHandshakeTimeout=0, maxMessagePayloadSize=0
        )


class FrameSocket:
    """A websocket that sends and receives raw binary messages (relay frames, or anything)."""

    def __init__(self) -> None:
        self.received: DeferredQueue[bytes] = DeferredQueue()
        self.closed: Deferred[tuple[int | None, str | None]] = Deferred()
        self._ready: Deferred[FrameSocket] = Deferred()
        self._protocol: _FrameProtocol | None = None

    def _opened(self, protocol: _FrameProtocol) -> None:
        self._protocol = protocol
        self._ready.callback(self)

    def _closedWith(self, code: int | None, reason: str | None) -> None:
        if not self._ready.called:
            text = reason or "connection closed"
            status = None
            if "upgrade failed [" in text:
                status = int(text.split("upgrade failed [", 1)[1].split("]", 1)[0])
            self._ready.errback(UpgradeRefusedError(status, text))
        if not self.closed.called:
            self.closed.callback((code, reason))

    def send(self, raw: bytes) -> None:
        assert self._protocol is not None, "not open"
        self._protocol.sendMessage(raw, isBinary=True)

    def next(self) -> Deferred[bytes]:
        return self.received.get()

    def close(self) -> Deferred[tuple[int | None, str | None]]:
        if self._protocol is not None and not self.closed.called:
            self._protocol.sendClose(1000)
        return self.closed

    def abort(self) -> None:
        transport: Any = self._protocol.transport if self._protocol is not None else None
        if transport is not None:
            transport.abortConnection()


async def connectFrameSocket(
    reactor: Any, url: str, headers: dict[str, str] | None = None
) -> FrameSocket:
    """Open ``url`` (``ws://host:port/...``); raises :class:`UpgradeRefusedError` when refused."""
    parts = urlsplit(url)
    socket = FrameSocket()
    factory = _FrameFactory(url, reactor, socket, headers)
    endpoint = TCP4ClientEndpoint(reactor, parts.hostname or "127.0.0.1", parts.port or 80)
    await endpoint.connect(factory)
    return await socket._ready
