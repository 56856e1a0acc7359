"""An HTTP server that a slow, greedy or unauthenticated peer cannot tie up.

twisted.web as it comes reads a request body whole (into memory, then a temporary file) before
any resource sees the request, and its idle timeout restarts with every byte, so one byte every
few seconds keeps a connection forever (slow loris). :class:`GuardedSite` adds, per connection:

- **a request deadline** that no trickle extends: a request must be complete (headers and body)
  within ``requestTimeout`` seconds of the moment the connection started waiting for it (its
  opening, or the end of the previous response); otherwise the connection is aborted. A
  connection that became a websocket is the websocket's business from then on;
- **an early verdict**: once the headers are in and before any body byte is read,
  ``earlyVerdict(method, path, headers, length)`` may answer (a 401 for a bad token, 409 for a
  taken id, 413 for a body over ``maxBodyBytes``); the answer is written, the connection closed,
  and whatever body follows is discarded unread;
- **a body cap** for chunked bodies as they arrive;
- **connection caps** (:class:`ConnectionLimiter`): per peer IP and in total; a connection over
  either cap is closed at once, before any byte is read. A websocket protocol that takes the
  TCP connection over releases its slot itself (:meth:`ConnectionLimiter.release`), since the
  HTTP channel never learns that the connection ended.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.http_headers import Headers
from twisted.web.server import Request, Site

from twisted_exec.net.ratelimit import RateLimitedLog

log = Logger()

DEFAULT_REQUEST_TIMEOUT = 10.0
DEFAULT_MAX_BODY_BYTES = 8 * 1024
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Content Too Large",
    429: "Too Many Requests",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Verdict:
    """An answer given before the body is read: status and a JSON body."""

    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self) -> bytes:
        payload = json.dumps(self.body).encode()
        lines = [
            f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Error')}",
            "content-type: application/json",
            "cache-control: no-store",
            f"content-length: {len(payload)}",
            "connection: close",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


EarlyVerdict = Callable[[bytes, bytes, Headers, "int | None"], "Verdict | None"]


def bodyTooLarge(limit: int) -> Verdict:
    return Verdict(
        413,
        {"error": {"code": "body_too_large", "message": f"request body over {limit} bytes"}},
    )


class ConnectionLimiter:
    """Counts open connections per peer IP and in total (sans IO; keyed by transport)."""

    def __init__(self, maxPerIp: int | None, maxTotal: int | None) -> None:
        self.maxPerIp = maxPerIp
        self.maxTotal = maxTotal
        self._byIp: dict[str, int] = {}
        self._slots: dict[Any, str] = {}  # transport -> ip
        self.total = 0
        self.refused = 0

    def admit(self, ip: str) -> bool:
        """Whether one more connection from ``ip`` fits (the caller then :meth:`bind`\\ s it)."""
        if self.maxTotal is not None and self.total >= self.maxTotal:
            self.refused += 1
            return False
        if self.maxPerIp is not None and self._byIp.get(ip, 0) >= self.maxPerIp:
            self.refused += 1
            return False
        return True

    def bind(self, transport: Any, ip: str) -> None:
        if transport in self._slots:
            return
        self._slots[transport] = ip
        self._byIp[ip] = self._byIp.get(ip, 0) + 1
        self.total += 1

    def release(self, transport: Any) -> None:
        """Idempotent: the connection over ``transport`` ended."""
        ip = self._slots.pop(transport, None)
        if ip is None:
            return
        self.total -= 1
        left = self._byIp[ip] - 1
        if left:
            self._byIp[ip] = left
        else:
            del self._byIp[ip]

    def count(self, ip: str) -> int:
        return self._byIp.get(ip, 0)


class GuardedChannel(HTTPChannel):
    """``HTTPChannel`` with the request deadline, the early verdict and the body cap."""

    site: GuardedSite
    _deadline: IDelayedCall | None = None
    _refused = False
    _bodyBytes = 0

    def connectionMade(self) -> None:
        super().connectionMade()
        self.site.limiter.bind(self.transport, _peerIp(self.transport))
        self._armDeadline()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancelDeadline()
        transport = self.transport
        super().connectionLost(reason)
        if transport is not None:
            self.site.limiter.release(transport)

    # -- the request deadline: armed while waiting for a request, never pushed back by data ---

    def _armDeadline(self) -> None:
        self._cancelDeadline()
        timeout = self.site.requestTimeout
        if timeout is not None:
            self._deadline = self.site.clock.callLater(timeout, self._deadlinePassed)

    def _cancelDeadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _deadlinePassed(self) -> None:
        self._deadline = None
        transport: Any = self.transport
        if transport is None:  # taken over by a websocket
            return
        self.site.refusals.info(
            "HTTP request from {peer} not complete after {timeout:g} s: dropping the connection",
            peer=_peerIp(transport),
            timeout=self.site.requestTimeout,
        )
        transport.abortConnection()

    def allContentReceived(self) -> None:
        self._cancelDeadline()
        super().allContentReceived()

    def requestDone(self, request: Request) -> None:
        super().requestDone(request)
        if self.transport is not None and not self._refused:
            self._armDeadline()

    # -- the early verdict and the body cap ---------------------------------------------------

    def allHeadersReceived(self) -> None:
        request = self.requests[-1]
        verdict: Verdict | None = None
        cap = self.site.maxBodyBytes
        if self.site.earlyVerdict is not None:
            verdict = self.site.earlyVerdict(
                self._command, self._path, request.requestHeaders, self.length
            )
        if verdict is None and cap is not None and self.length is not None and self.length > cap:
            verdict = bodyTooLarge(cap)
        if verdict is not None:
            self.refuse(verdict)
            # Not 0, so HTTPChannel.lineReceived does not go on to allContentReceived (which
            # would process the request anyway); the raw mode it enters instead reads nothing.
            self.length = -1
            return
        super().allHeadersReceived()

    def refuse(self, verdict: Verdict) -> None:
        """Answer ``verdict`` now and close; nothing more is read from this connection."""
        if self._refused:
            return
        self._refused = True
        self._cancelDeadline()
        transport: Any = self.transport
        if transport is None:
            return
        self.site.refusals.info(
            "HTTP request from {peer} refused before its body ({status})",
            peer=_peerIp(transport),
            status=verdict.status,
        )
        transport.write(verdict.encode())
        transport.loseConnection()

    def rawDataReceived(self, data: bytes) -> None:
        if self._refused:
            return
        super().rawDataReceived(data)

    def lineReceived(self, line: bytes) -> None:
        if self._refused:
            return
        super().lineReceived(line)

    def bodyChunk(self, size: int) -> bool:
        """A body chunk of ``size`` bytes arrived; ``False`` (and a 413) once over the cap."""
        self._bodyBytes += size
        cap = self.site.maxBodyBytes
        if cap is not None and self._bodyBytes > cap:
            self.refuse(bodyTooLarge(cap))
            return False
        return True


class GuardedRequest(Request):
    """Counts body bytes against the channel's cap (chunked bodies have no length up front)."""

    def handleContentChunk(self, data: bytes) -> None:
        channel: Any = self.channel
        if channel is not None and not channel.bodyChunk(len(data)):
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        channel: Any = self.channel
        if channel is not None:
            channel._bodyBytes = 0
        super().requestReceived(command, path, version)


def _peerIp(transport: Any) -> str:
    try:
        return str(transport.getPeer().host)
    except Exception:
        return "?"


class GuardedSite(Site):
    """A ``Site`` whose connections are :class:`GuardedChannel`\\ s under a limiter."""

    protocol = GuardedChannel  # type: ignore[assignment]
    requestFactory = GuardedRequest  # type: ignore[assignment]

    def __init__(
        self,
        resource: Any,
        clock: Any,
        *,
        requestTimeout: float | None = DEFAULT_REQUEST_TIMEOUT,
        maxBodyBytes: int | None = DEFAULT_MAX_BODY_BYTES,
        earlyVerdict: EarlyVerdict | None = None,
        limiter: ConnectionLimiter | None = None,
    ) -> None:
        super().__init__(resource, reactor=clock)
        self.clock = clock
        self.requestTimeout = requestTimeout
        self.maxBodyBytes = maxBodyBytes
        self.earlyVerdict = earlyVerdict
        self.limiter = limiter if limiter is not None else ConnectionLimiter(None, None)
        self.refusals = RateLimitedLog(clock, log)
        self.noisy = False
        self.displayTracebacks = False

    def buildProtocol(self, addr: Any) -> Any:
        ip = str(getattr(addr, "host", "?"))
        if not self.limiter.admit(ip):
            self.refusals.info(
                "connection from {peer} refused: over the connection limit "
                "({perIp} per IP, {total} in total)",
                peer=ip,
                perIp=self.limiter.maxPerIp,
                total=self.limiter.maxTotal,
            )
            return None
        return super().buildProtocol(addr)
