"""``http/request``: the executor performs an HTTP request on the harness's behalf.

Behaviour and wire text are the reference's (Codex CLI 0.131.0, reqwest underneath), probed on the
binary; see docs and ``scripts/conformance_http_stdio.py``:

- validation order: ``bodyBase64``, the active-stream check, method, URL (parse, then scheme),
  headers (name, then value, one header at a time), each a -32602 with the reference's text;
- sent: the given headers (names lower-cased, duplicates kept), then ``accept: */*`` and ``host``
  unless given, ``authorization: Basic`` first when the URL has user info; no user agent;
- redirects are followed (at most 10) with a ``referer``; 301/302/303 turn into a body-less GET,
  307/308 repeat the request; credentials and cookies are dropped when the host or port changes;
- the result is ``{status, headers: [{name, value}], bodyBase64}`` with every response header
  (lower-case names, server order, grouped by name as a header map iterates);
- ``timeoutMs`` covers the whole exchange, body included;
- ``streamResponse`` answers with an empty body at once, then sends ordered
  ``http/request/bodyDelta`` notifications ending with ``done: true``.

Streaming order: the result :class:`Deferred` fires first (the processor sends the reply from its
callback, synchronously), and the body protocol is connected only from a ``callLater(0)`` scheduled
after that, so no delta can precede the reply. Twisted holds body bytes that arrive meanwhile.

Memory: a streamed body is never held whole. Bytes are coalesced up to ``maxDeltaBytes`` per
delta and flushed on the next reactor turn; :meth:`HttpRequester.pauseProducing` pauses every
active stream's TCP transport, so a transport with a slow reader can apply backpressure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, ensureDeferred
from twisted.internet.interfaces import IDelayedCall, IPushProducer
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import (
    Agent,
    HTTPConnectionPool,
    ResponseDone,
)
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import IAgent, IResponse
from zope.interface import implementer

from twisted_exec.compat.base64strict import encodeBase64
from twisted_exec.compat.params import HttpRequestParams
from twisted_exec.executor.core.interfaces import IHttpRequester
from twisted_exec.executor.resources.http_agent import (
    BODY_ERROR,
    _BodyCollector,
    _BytesProducer,
    _Discard,
    _producer,
    _RecordingPool,
)
from twisted_exec.executor.resources.http_policy import (
    MAX_REDIRECTS,
    Hop,
    Prepared,
    nextHop,
    prepare,
    resultHeaders,
)
from twisted_exec.wire.errors import RpcError, internalError

log = Logger()

Notify = Callable[[str, dict[str, Any]], None]

DEFAULT_MAX_DELTA_BYTES = 512 * 1024
DELTA_METHOD = "http/request/bodyDelta"

# Twisted frames the body itself; a given content-length would be sent twice.


class _BodyStreamer(Protocol):
    """Streamed mode: coalesces body bytes into ``bodyDelta`` notifications, in order."""

    def __init__(self, exchange: _Exchange, maxDelta: int) -> None:
        self.exchange = exchange
        self.maxDelta = maxDelta
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
            self.flushCall = self.exchange.reactor.callLater(0, self.flush)

    def flush(self) -> None:
        if self.flushCall is not None and self.flushCall.active():
            self.flushCall.cancel()
        self.flushCall = None
        if not self.pending:
            return
        data = b"".join(self.pending)
        self.pending, self.pendingSize = [], 0
        self.exchange.sendDelta(data, done=False, error=None)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.finished:
            return
        self.flush()
        self.finished = True
        error = None if reason.check(ResponseDone, PotentialDataLoss) else BODY_ERROR
        if self.exchange.timedOut:
            error = BODY_ERROR
        self.exchange.finishStream(error)

    def abort(self) -> None:
        """Stop for good without notifying (the session went away)."""
        self.finished = True
        self.pending = []
        if self.flushCall is not None and self.flushCall.active():
            self.flushCall.cancel()
        _producer(self).stopProducing()


class _Exchange:
    """One ``http/request``: the hops, the deadline, then the body (buffered or streamed)."""

    def __init__(self, requester: HttpRequester, prepared: Prepared) -> None:
        self.requester = requester
        self.reactor = requester.reactor
        self.prepared = prepared
        self.hop = Hop(prepared.method, prepared.url, prepared.headers, prepared.body)
        self.timer: IDelayedCall | None = None
        self.timedOut = False
        self.inFlight: Deferred[Any] | None = None
        self.bodyProtocol: Protocol | None = None
        self.seq = 0
        self.closed = False

    # -- the header phase ---------------------------------------------------------------------

    def start(self) -> Deferred[dict[str, Any]]:
        if self.prepared.timeoutMs is not None:
            self.timer = self.reactor.callLater(self.prepared.timeoutMs / 1000.0, self._timeout)
        return ensureDeferred(self._run())

    def _timeout(self) -> None:
        self.timer = None
        self.timedOut = True
        if self.inFlight is not None:
            self.inFlight.cancel()
        _producer(self.bodyProtocol).stopProducing()

    def _stopTimer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    async def _send(self, hop: Hop) -> IResponse:
        if self.timedOut:
            raise CancelledError()
        producer = None if hop.body is None else _BytesProducer(hop.body)
        self.inFlight = self.requester.agent.request(
            hop.method.encode("ascii"), hop.url.agentUri(), hop.wireHeaders(), producer
        )
        try:
            response: IResponse = await self.inFlight
        finally:
            self.inFlight = None
        return response

    async def _run(self) -> dict[str, Any]:
        try:
            response = await self._fetch()
        except Exception:
            self.close()
            raise
        result = {"status": response.code, "headers": resultHeaders(response)}
        if self.prepared.stream:
            result["bodyBase64"] = ""
            # The reply must leave before the first delta: connect the body protocol only once
            # the result Deferred (returned to the processor) has fired and sent it.
            self.reactor.callLater(0, self._startStreaming, response)
            return result
        collector = _BodyCollector(self.requester.maxBufferedBody)
        self.bodyProtocol = collector
        response.deliverBody(collector)
        try:
            body = await collector.done
        finally:
            self.close()
        if self.timedOut:
            raise internalError(f"failed to read http/request response body: {BODY_ERROR}")
        result["bodyBase64"] = encodeBase64(body)
        return result

    async def _fetch(self) -> IResponse:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = await self._send(self.hop)
            except Exception as err:
                if isinstance(err, RpcError):
                    raise
                log.debug(
                    "http/request to {url} failed: {err!r}", url=self.hop.url.display(), err=err
                )
                raise internalError(
                    f"http/request failed: error sending request for url ({self.hop.url.display()})"
                ) from None
            locations = response.headers.getRawHeaders(b"location") or []
            location = locations[0].decode("utf-8", "replace") if locations else None
            if not self.prepared.followRedirects:
                return response  # 0.171 redirectPolicy "stop": the redirect is the answer
            following = nextHop(self.hop, response.code, location)
            if following is None:
                return response
            discard = _Discard()
            self.bodyProtocol = discard
            response.deliverBody(discard)
            await discard.done
            self.bodyProtocol = None
            self.hop = following
        raise internalError(
            f"http/request failed: error following redirect for url ({self.hop.url.display()})"
        )

    # -- streaming ----------------------------------------------------------------------------

    def _startStreaming(self, response: IResponse) -> None:
        if self.closed:
            # The session ended before the body started: drop the connection.
            discard = _Discard()
            response.deliverBody(discard)
            _producer(discard).stopProducing()
            return
        streamer = _BodyStreamer(self, self.requester.maxDeltaBytes)
        self.bodyProtocol = streamer
        response.deliverBody(streamer)
        if self.timedOut:
            _producer(streamer).stopProducing()
        elif self.requester.paused:
            _producer(streamer).pauseProducing()

    def sendDelta(self, data: bytes, *, done: bool, error: str | None) -> None:
        if self.closed and not done:
            return
        self.seq += 1
        self.requester.notify(
            DELTA_METHOD,
            {
                "requestId": self.prepared.requestId,
                "seq": self.seq,
                "deltaBase64": encodeBase64(data),
                "done": done,
                "error": error,
            },
        )

    def finishStream(self, error: str | None) -> None:
        if self.closed:
            return
        self.sendDelta(b"", done=True, error=error)
        self.close()

    # -- control ------------------------------------------------------------------------------

    def pause(self) -> None:
        _producer(self.bodyProtocol).pauseProducing()

    def resume(self) -> None:
        _producer(self.bodyProtocol).resumeProducing()

    def close(self) -> None:
        """The exchange is over: release the deadline and the request id."""
        if self.closed:
            return
        self.closed = True
        self._stopTimer()
        self.requester._forget(self)

    def cancel(self) -> None:
        """The session ended: abort without another notification."""
        inFlight = self.inFlight
        protocol = self.bodyProtocol
        self.close()
        if inFlight is not None:
            inFlight.cancel()
        if isinstance(protocol, _BodyStreamer):
            protocol.abort()
        else:
            _producer(protocol).stopProducing()


@implementer(IPushProducer, IHttpRequester)
class HttpRequester:
    """The ``http/request`` handler of one session.

    ``notify(method, params)`` sends the session's notifications. ``agent`` defaults to an
    :class:`Agent` with a persistent connection pool of its own. ``maxBufferedBody`` caps a
    buffered (not streamed) body; None keeps the reference's behaviour (no limit).
    """

    def __init__(
        self,
        reactor: Any,
        notify: Notify,
        agent: IAgent | None = None,
        *,
        maxBufferedBody: int | None = None,
        maxDeltaBytes: int = DEFAULT_MAX_DELTA_BYTES,
    ) -> None:
        self.reactor = reactor
        self.notify = notify
        self.pool: HTTPConnectionPool | None = None
        if agent is None:
            self.pool = _RecordingPool(reactor, persistent=True)
            agent = Agent(reactor, pool=self.pool)
        self.agent = agent
        self.maxBufferedBody = maxBufferedBody
        self.maxDeltaBytes = maxDeltaBytes
        self.paused = False
        self._exchanges: set[_Exchange] = set()
        self._streams: dict[str, _Exchange] = {}

    def request(self, p: HttpRequestParams) -> Deferred[dict[str, Any]]:
        try:
            prepared = prepare(p, lambda requestId: requestId in self._streams)
        except RpcError as err:
            return _failed(err)
        exchange = _Exchange(self, prepared)
        self._exchanges.add(exchange)
        if prepared.stream:
            self._streams[prepared.requestId] = exchange
        if prepared.timeoutMs == 0:
            exchange.close()
            return _failed(
                internalError(
                    f"http/request failed: error sending request for url ({prepared.url.display()})"
                )
            )
        return exchange.start()

    def _forget(self, exchange: _Exchange) -> None:
        self._exchanges.discard(exchange)
        if self._streams.get(exchange.prepared.requestId) is exchange:
            del self._streams[exchange.prepared.requestId]

    @property
    def activeCount(self) -> int:
        return len(self._exchanges)

    def cancelAll(self) -> None:
        """The session ended: abort every request and stream; no more notifications."""
        for exchange in list(self._exchanges):
            exchange.cancel()
        if self.pool is not None:
            self.pool.closeCachedConnections()

    # -- IPushProducer: a transport with a slow reader pauses every active stream ---------------

    def pauseProducing(self) -> None:
        self.paused = True
        for exchange in list(self._exchanges):
            exchange.pause()

    def resumeProducing(self) -> None:
        self.paused = False
        for exchange in list(self._exchanges):
            exchange.resume()

    def stopProducing(self) -> None:
        self.cancelAll()


def _failed(err: RpcError) -> Deferred[dict[str, Any]]:
    d: Deferred[dict[str, Any]] = Deferred()
    d.errback(err)
    return d


__all__ = ["DELTA_METHOD", "HttpRequester"]
