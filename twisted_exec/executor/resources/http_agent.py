"""Twisted web client plumbing for http/request: a pool that records the exact request bytes,
body protocols (collected within a byte budget, streamed in coalesced deltas, discarded) and
producers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IConsumer, IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web._newclient import HTTP11ClientProtocol
from twisted.web.client import (
    HTTPConnectionPool,
    ResponseDone,
    _HTTP11ClientFactory,
)
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from twisted_exec.wire.errors import internalError

log = Logger()

BODY_ERROR = "error decoding response body"


class _LowerCaseHeaders(Headers):
    """Writes header names as given (lower-case), as the reference does, not Http-Header-Case."""

    __slots__ = ()

    def getAllRawHeaders(self) -> Iterator[tuple[bytes, Sequence[bytes]]]:
        for name, values in super().getAllRawHeaders():
            yield name.lower(), values


class _RecordingClientProtocol(HTTP11ClientProtocol):  # type: ignore[misc]
    """Records each response's header lines, connection headers included, on its request."""

    def request(self, request: Any) -> Deferred[Any]:
        before = getattr(self, "_parser", None)
        result: Deferred[Any] = super().request(request)
        parser = getattr(self, "_parser", None)
        if parser is not None and parser is not before:
            recorded: list[tuple[bytes, bytes]] = []
            headerReceived = parser.headerReceived
            statusReceived = parser.statusReceived

            def recordHeader(name: bytes, value: bytes) -> None:
                recorded.append((name, value))
                headerReceived(name, value)

            def recordStatus(status: bytes) -> None:
                recorded.clear()  # a 1xx response's headers are not the final ones
                statusReceived(status)

            parser.headerReceived = recordHeader
            parser.statusReceived = recordStatus
            request._rawResponseHeaders = recorded
        return result


class _RecordingClientFactory(_HTTP11ClientFactory):  # type: ignore[misc]
    noisy = False

    def buildProtocol(self, addr: Any) -> HTTP11ClientProtocol:
        return _RecordingClientProtocol(self._quiescentCallback)


class _RecordingPool(HTTPConnectionPool):
    _factory = _RecordingClientFactory


class _NoProducer:
    """A producer that has nothing to pause, resume or stop."""

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


def _producer(protocol: Protocol | None) -> Any:
    """The push producer behind a response body protocol (Twisted's ``TransportProxyProducer``)."""
    transport = None if protocol is None else protocol.transport
    return transport if transport is not None else _NoProducer()


class _Discard(Protocol):
    """Reads and drops a redirect's body so its connection can be reused."""

    def __init__(self) -> None:
        self.done: Deferred[None] = Deferred()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.done.callback(None)


class _BodyCollector(Protocol):
    """Buffered mode: keeps the whole body, like the reference, up to an optional limit."""

    def __init__(self, limit: int | None) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.overLimit = False
        self.done: Deferred[bytes] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        if self.overLimit:
            return
        self.size += len(data)
        if self.limit is not None and self.size > self.limit:
            self.overLimit = True
            self.chunks.clear()
            _producer(self).stopProducing()
            return
        self.chunks.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.overLimit:
            self.done.errback(
                internalError(
                    "failed to read http/request response body: response body exceeds "
                    f"maxBufferedBody ({self.limit} bytes)"
                )
            )
        elif reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.chunks))
        else:
            self.done.errback(
                internalError(f"failed to read http/request response body: {BODY_ERROR}")
            )
        self.chunks = []


@implementer(IBodyProducer)
class _BytesProducer(_NoProducer):
    """The whole request body in one write: it is in memory already (decoded from base64)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.length = len(data)

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        consumer.write(self._data)
        return succeed(None)


class _BodyStreamer(Protocol):
    """Streamed mode: coalesces body bytes into ``bodyDelta`` notifications, in order.

    Bytes are held up to ``maxDelta`` and flushed on the next reactor turn at the latest;
    ``delta(data)`` sends one, ``ended(error)`` reports the end (``error`` None when clean).
    """

    def __init__(
        self,
        reactor: IReactorTime,
        maxDelta: int,
        delta: Callable[[bytes], None],
        ended: Callable[[str | None], None],
    ) -> None:
        self.reactor = reactor
        self.maxDelta = maxDelta
        self.delta = delta
        self.ended = ended
        self.pending: list[bytes] = []
        self.pendingSize = 0
        self.flushCall: IDelayedCall | None = None
        self.finished = False
        self.maxHeld = 0

    def dataReceived(self, data: bytes) -> None:
        if self.finished:
            return
        self.pending.append(data)
        self.pendingSize += len(data)
        self.maxHeld = max(self.maxHeld, self.pendingSize)
        if self.pendingSize >= self.maxDelta:
            self.flush()
        elif self.flushCall is None:
            self.flushCall = self.reactor.callLater(0, self.flush)

    def flush(self) -> None:
        if self.flushCall is not None and self.flushCall.active():
            self.flushCall.cancel()
        self.flushCall = None
        if not self.pending:
            return
        data = b"".join(self.pending)
        self.pending, self.pendingSize = [], 0
        self.delta(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.finished:
            return
        self.flush()
        self.finished = True
        self.ended(None if reason.check(ResponseDone, PotentialDataLoss) else BODY_ERROR)

    def abort(self) -> None:
        """Stop for good without notifying (the session went away)."""
        self.finished = True
        self.pending = []
        if self.flushCall is not None and self.flushCall.active():
            self.flushCall.cancel()
        _producer(self).stopProducing()
