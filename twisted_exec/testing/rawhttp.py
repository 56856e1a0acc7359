"""Raw HTTP over a real TCP connection, for tests that must send what no client library would.

``rawExchange`` writes the given bytes (all at once, or a slice at a time on a clock, to play a
slow-loris peer) and collects what comes back until the server closes, a full response (by
``content-length``, or a ``101``) has arrived, or ``timeout`` passes. ``Response`` splits the
status line, headers and body.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure


@dataclass
class Response:
    raw: bytes
    closed: bool = False
    status: int = 0
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def parse(cls, raw: bytes, closed: bool) -> Response:
        head, sep, body = raw.partition(b"\r\n\r\n")
        response = cls(raw, closed)
        if not sep:
            return response
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) >= 2 and parts[1].isdigit():
            response.status = int(parts[1])
            response.reason = parts[2] if len(parts) > 2 else ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            response.headers[name.strip().lower()] = value.strip()
        response.body = body
        return response

    def complete(self) -> bool:
        if self.status == 101:
            return True
        length = self.headers.get("content-length")
        return self.status > 0 and length is not None and len(self.body) >= int(length)


class _Collector(Protocol):
    def __init__(self, done: Deferred[Response], keepOpen: bool) -> None:
        self.done = done
        self.keepOpen = keepOpen
        self.data = b""
        self.lostAt: float | None = None

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        response = Response.parse(self.data, False)
        if response.complete() and not self.done.called:
            self.done.callback(response)
            if not self.keepOpen and self.transport is not None:
                self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.done.called:
            self.done.callback(Response.parse(self.data, True))


async def rawExchange(
    reactor: Any,
    host: str,
    port: int,
    data: bytes,
    *,
    timeout: float = 10.0,
    chunk: int | None = None,
    interval: float = 0.0,
    keepOpen: bool = False,
) -> Response:
    """Send ``data`` (``chunk`` bytes every ``interval`` seconds when given) and read the reply.

    Raises ``TimeoutError`` (Twisted's) when nothing conclusive arrived within ``timeout``.
    """
    done: Deferred[Response] = Deferred()
    collector = _Collector(done, keepOpen)
    endpoint = TCP4ClientEndpoint(reactor, host, port, timeout=timeout)
    await endpoint.connect(Factory.forProtocol(lambda: collector))
    transport: Any = collector.transport
    calls: list[Any] = []
    if chunk is None:
        transport.write(data)
    else:
        pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]

        def sendNext() -> None:
            if not pieces or done.called or transport.disconnected:
                return
            transport.write(pieces.pop(0))
            calls.append(reactor.callLater(interval, sendNext))

        sendNext()
    done.addTimeout(timeout, reactor)
    try:
        return await done
    finally:
        for call in calls:
            if call.active():
                call.cancel()
        if not transport.disconnected:
            transport.abortConnection()


def upgradeRequest(
    host: str, port: int, headers: Sequence[tuple[str, str]] = (), path: str = "/"
) -> bytes:
    """A well-formed websocket upgrade request with extra ``headers``."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
