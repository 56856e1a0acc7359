"""A twisted.web test site for ``http/request``: what the executor's HTTP client is tested against.

Public (not under ``tests/``) because the suite and ``scripts/conformance_http_stdio.py`` both
serve it: the script replays the same cases against our executor and the reference. ``/echo``
reports the raw request line and header lines as they arrived (:class:`RecordingChannel`); the
other paths shape a response (redirects, statuses, chunked and stalled bodies, resets, large
pattern bodies), see :meth:`EndpointResource.render`.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any
from urllib.parse import parse_qs

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http, server
from twisted.web.resource import Resource

PATTERN = bytes(range(256)) * 256  # 64 KiB holding every byte value


def patternBytes(total: int) -> bytes:
    whole, rest = divmod(total, len(PATTERN))
    return PATTERN * whole + PATTERN[:rest]


class RecordingChannel(http.HTTPChannel):
    """Keeps the raw request line and header lines of each request, in wire order."""

    def connectionMade(self) -> None:
        super().connectionMade()
        self.factory.connections.add(self)  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        super().connectionLost(reason)
        connections = self.factory.connections  # type: ignore[attr-defined]
        connections.discard(self)
        if not connections:
            waiters, self.factory.idleWaiters = self.factory.idleWaiters, []  # type: ignore[attr-defined]
            for waiter in waiters:
                waiter.callback(None)

    def lineReceived(self, line: bytes) -> None:
        if not getattr(self, "_inHeaders", False):
            self._rawLines: list[bytes] = []
            self._inHeaders = True
        if line == b"":
            self._inHeaders = False
            self.lastRawHeaders = self._rawLines
        else:
            self._rawLines.append(line)
        super().lineReceived(line)


class _PatternProducer:
    """Pull producer writing ``total`` bytes of PATTERN, 64 KiB at a time, as the client reads."""

    def __init__(self, request: server.Request, total: int) -> None:
        self.request = request
        self.remaining = total

    def resumeProducing(self) -> None:
        piece = PATTERN[: min(len(PATTERN), self.remaining)]
        self.remaining -= len(piece)
        if piece:
            self.request.write(piece)
        if self.remaining <= 0:
            self.request.unregisterProducer()
            self.request.finish()

    def stopProducing(self) -> None:
        self.remaining = 0

    def pauseProducing(self) -> None:
        pass


class EndpointResource(Resource):
    """``/echo`` reports what arrived; the others shape a response (see ``render``)."""

    isLeaf = True

    def __init__(self, clock: Any) -> None:
        super().__init__()
        self.clock = clock
        self.seen: list[dict[str, Any]] = []
        self.calls: list[IDelayedCall] = []
        self.produced = 0

    def later(self, delay: float, f: Any, *args: Any) -> None:
        self.calls.append(self.clock.callLater(delay, f, *args))

    def cancelCalls(self) -> None:
        for call in self.calls:
            if call.active():
                call.cancel()

    def render(self, request: server.Request) -> Any:
        path = request.path.decode("latin-1")
        query = {
            k: v[0] for k, v in parse_qs(request.uri.partition(b"?")[2].decode("latin-1")).items()
        }
        raw = [line.decode("latin-1") for line in getattr(request.channel, "lastRawHeaders", [])]
        body = request.content.read() if request.content is not None else b""
        record = {"path": path, "raw": raw, "bodyBase64": base64.b64encode(body).decode()}
        self.seen.append(record)
        transport: Any = request.channel.transport  # type: ignore[union-attr]
        if path == "/echo":
            request.setHeader(b"content-type", b"application/json")
            return json.dumps(record).encode()
        if path == "/redirect":
            request.setResponseCode(int(query.get("code", "302")))
            request.setHeader(b"location", query.get("to", "/echo").encode())
            return b""
        if path == "/loop":
            request.setResponseCode(302)
            request.setHeader(b"location", b"/loop")
            return b""
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            request.setResponseCode(code)
            return b"" if code in (204, 304) else f"status {code}".encode()
        if path == "/rawheaders":
            transport.write(
                b"HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B: 2\r\nx-a: 3\r\nX-Empty:\r\n"
                b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nok"
            )
            transport.loseConnection()
            return server.NOT_DONE_YET
        if path == "/bytes":
            total = int(query.get("n", "0"))
            request.setHeader(b"content-type", b"application/octet-stream")
            if query.get("chunked") != "1":
                request.setHeader(b"content-length", str(total).encode())
            request.registerProducer(_PatternProducer(request, total), False)
            return server.NOT_DONE_YET
        if path == "/chunked":
            count, size = int(query.get("count", "5")), int(query.get("size", "8"))
            delay = float(query.get("delay", "0.15"))
            request.write(b"")

            def step(index: int) -> None:
                if request.finished or request._disconnected:
                    return
                request.write(bytes([65 + index]) * size)
                if index + 1 < count:
                    self.later(delay, step, index + 1)
                else:
                    request.finish()

            self.later(0 if query.get("first") == "now" else delay, step, 0)
            return server.NOT_DONE_YET
        if path == "/stall":
            request.setHeader(b"content-length", b"1000")
            request.write(b"x" * 10)
            return server.NOT_DONE_YET
        if path == "/slow":

            def late() -> None:
                if not request._disconnected:
                    request.write(b"late")
                    request.finish()

            self.later(float(query.get("delay", "2")), late)
            return server.NOT_DONE_YET
        if path == "/gzip":
            request.setHeader(b"content-encoding", b"gzip")
            return gzip.compress(b"hello gzip", mtime=0)
        if path in ("/reset", "/closeearly"):
            transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            end = transport.abortConnection if path == "/reset" else transport.loseConnection
            self.later(float(query.get("after", "0.05")), end)
            return server.NOT_DONE_YET
        request.setResponseCode(404)
        return b"no such endpoint"


def makeSite(clock: Any) -> tuple[server.Site, EndpointResource]:
    resource = EndpointResource(clock)
    site = server.Site(resource, timeout=None)
    site.protocol = RecordingChannel  # type: ignore[assignment]
    site.displayTracebacks = False
    site.connections = set()  # type: ignore[attr-defined]
    site.idleWaiters = []  # type: ignore[attr-defined]
    site.noisy = False
    return site, resource


def serverIdle(site: server.Site) -> Deferred[None]:
    """Fires once every connection to ``site`` has closed."""
    if not site.connections:  # type: ignore[attr-defined]
        return succeed(None)
    d: Deferred[None] = Deferred()
    site.idleWaiters.append(d)  # type: ignore[attr-defined]
    return d


# -- helpers ------------------------------------------------------------------------------------
