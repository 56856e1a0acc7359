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

One exchange's lifecycle (hops, body, deadline, the session's end) is the state machine of
:mod:`.http_exchange`; this module is the session's handler that starts and tracks them.

Memory: a streamed body is never held whole. Bytes are coalesced up to ``maxDeltaBytes`` per
delta and flushed on the next reactor turn; :meth:`HttpRequester.pauseProducing` pauses every
active stream's TCP transport, so a transport with a slow reader can apply backpressure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.web.client import (
    Agent,
    HTTPConnectionPool,
)
from twisted.web.iweb import IAgent
from zope.interface import implementer

from twisted_exec.compat.params import HttpRequestParams
from twisted_exec.executor.core.interfaces import IHttpRequester
from twisted_exec.executor.resources.http_agent import _RecordingPool
from twisted_exec.executor.resources.http_exchange import DELTA_METHOD, Exchange
from twisted_exec.executor.resources.http_policy import prepare
from twisted_exec.net.httpspolicy import TLSPolicyOnFirstUse
from twisted_exec.wire.errors import RpcError, internalError

Notify = Callable[[str, dict[str, Any]], None]

DEFAULT_MAX_DELTA_BYTES = 512 * 1024


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
            # the https policy of net/httpspolicy: this module may be first imported while
            # TLS is deferred (net/leanreactor.py)
            agent = Agent(reactor, contextFactory=TLSPolicyOnFirstUse(), pool=self.pool)
        self.agent = agent
        self.maxBufferedBody = maxBufferedBody
        self.maxDeltaBytes = maxDeltaBytes
        self.paused = False
        self._exchanges: set[Exchange] = set()
        self._streams: dict[str, Exchange] = {}

    def request(self, p: HttpRequestParams) -> Deferred[dict[str, Any]]:
        try:
            prepared = prepare(p, lambda requestId: requestId in self._streams)
        except RpcError as err:
            return _failed(err)
        if prepared.timeoutMs == 0:
            return _failed(
                internalError(
                    f"http/request failed: error sending request for url ({prepared.url.display()})"
                )
            )
        exchange = Exchange(self, prepared, self._forget)
        self._exchanges.add(exchange)
        if prepared.stream:
            self._streams[prepared.requestId] = exchange
        return exchange.start()

    def _forget(self, exchange: Exchange) -> None:
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
