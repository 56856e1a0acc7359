"""What the ``http/request`` machine (:mod:`.http_exchange`) acts with: its inputs, its core.

:class:`ExchangeEvents` is the machine's input protocol; :class:`ExchangeCore` the data all its
states share (the request, the hop being sent, the result Deferred, the deadline); the
``enter*`` functions build the data of the states that have some (the request in flight, the
body protocol) and wire what they report back to the machine's inputs. The choices that depend
on a response (redirect or answer) are made here, outside the machine, by :func:`_responded`
and :func:`_redirectRead`, which then feed the matching input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IAgent, IResponse

from twisted_exec.compat.base64strict import encodeBase64
from twisted_exec.executor.resources.http_agent import (
    _BodyCollector,
    _BodyStreamer,
    _BytesProducer,
    _Discard,
    _producer,
)
from twisted_exec.executor.resources.http_policy import (
    MAX_REDIRECTS,
    Hop,
    Prepared,
    nextHop,
    resultHeaders,
)
from twisted_exec.wire.errors import RpcError, internalError

log = Logger()

DELTA_METHOD = "http/request/bodyDelta"


class ExchangeOwner(Protocol):
    """What an exchange needs of its :class:`~.http_request.HttpRequester`."""

    reactor: Any
    agent: IAgent
    maxBufferedBody: int | None
    maxDeltaBytes: int
    paused: bool

    def notify(self, method: str, params: dict[str, Any]) -> None: ...


class ExchangeEvents(Protocol):
    """The inputs: what happens to one ``http/request``."""

    def start(self) -> None:
        """Send the first hop (and start the deadline)."""

    def redirected(self, response: IResponse, following: Hop) -> None:
        """A redirect to follow: read its body away, then send ``following``."""

    def redirectRead(self) -> None:
        """A redirect's body was read away: send the next hop."""

    def redirectLimit(self) -> None:
        """A redirect's body was read away and no more redirects may be followed."""

    def answered(self, response: IResponse) -> None:
        """The response (buffered mode): read its body whole."""

    def answeredStreaming(self, response: IResponse) -> None:
        """The response (streamed mode): reply now, stream its body from the next turn."""

    def requestFailed(self, failure: Failure) -> None:
        """A hop's request failed (connection refused, cancelled...)."""

    def bodyCollected(self, body: bytes) -> None:
        """Buffered mode: the whole body."""

    def bodyFailed(self, failure: Failure) -> None:
        """Buffered mode: reading the body failed (or it exceeded ``maxBufferedBody``)."""

    def startStreaming(self, response: IResponse) -> None:
        """Streamed mode: the reply left; connect the body protocol."""

    def bodyDelta(self, data: bytes) -> None:
        """Streamed mode: coalesced body bytes for one ``bodyDelta`` notification."""

    def streamEnded(self, error: str | None) -> None:
        """Streamed mode: the body ended (``error`` None when it ended cleanly)."""

    def timeout(self) -> None:
        """The deadline (``timeoutMs``) passed."""

    def cancel(self) -> None:
        """The session ended: abort without another notification."""

    def pause(self) -> None:
        """The session's transport is full: stop reading the body."""

    def resume(self) -> None:
        """Read the body again."""

    def stateName(self) -> str:
        """The current state's name (tests and debugging; not for use inside a transition)."""


@dataclass
class ExchangeCore:
    """What every state shares: the request, the hop being sent, the result and the deadline."""

    owner: ExchangeOwner
    prepared: Prepared
    #: Called once when the exchange is over (the requester forgets it).
    forget: Callable[[], None]
    hop: Hop = field(init=False)
    result: Deferred[dict[str, Any]] = field(default_factory=Deferred)
    timer: IDelayedCall | None = None
    hopsSent: int = 0
    #: ``{status, headers}`` of the answer being read (buffered mode).
    answer: dict[str, Any] | None = None
    seq: int = 0
    closed: bool = False

    def __post_init__(self) -> None:
        p = self.prepared
        self.hop = Hop(p.method, p.url, p.headers, p.body)

    def close(self) -> None:
        """The exchange is over: release the deadline and the request id (once)."""
        if self.closed:
            return
        self.closed = True
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        self.forget()

    def succeed(self, result: dict[str, Any]) -> None:
        self.close()
        if not self.result.called:
            self.result.callback(result)

    def fail(self, error: Exception | Failure) -> None:
        self.close()
        if not self.result.called:
            self.result.errback(error)

    def sendingError(self) -> RpcError:
        return internalError(
            f"http/request failed: error sending request for url ({self.hop.url.display()})"
        )

    def requestError(self, failure: Failure) -> Exception:
        """What a failed hop answers: an RpcError as is, anything else as the reference words it."""
        if isinstance(failure.value, RpcError):
            return failure.value
        log.debug(
            "http/request to {url} failed: {err!r}", url=self.hop.url.display(), err=failure.value
        )
        return self.sendingError()

    def notifyDelta(self, data: bytes, *, done: bool, error: str | None) -> None:
        self.seq += 1
        self.owner.notify(
            DELTA_METHOD,
            {
                "requestId": self.prepared.requestId,
                "seq": self.seq,
                "deltaBase64": encodeBase64(data),
                "done": done,
                "error": error,
            },
        )


def _responded(machine: ExchangeEvents, core: ExchangeCore, response: IResponse) -> None:
    """A hop's response: a redirect to follow, or the answer (decided outside the machine)."""
    try:
        following = None
        if core.prepared.followRedirects:  # 0.171 redirectPolicy "stop": the redirect answers
            locations = response.headers.getRawHeaders(b"location") or []
            location = locations[0].decode("utf-8", "replace") if locations else None
            following = nextHop(core.hop, response.code, location)
    except Exception:
        machine.requestFailed(Failure())
        return
    if following is not None:
        machine.redirected(response, following)
    elif core.prepared.stream:
        machine.answeredStreaming(response)
    else:
        machine.answered(response)


def _redirectRead(machine: ExchangeEvents, core: ExchangeCore) -> None:
    if core.hopsSent > MAX_REDIRECTS:
        machine.redirectLimit()
    else:
        machine.redirectRead()


def enterSending(machine: ExchangeEvents, core: ExchangeCore) -> Deferred[Any]:
    """Enter ``sending``: the hop's request, whose outcome feeds the machine."""
    hop = core.hop
    core.hopsSent += 1
    producer = None if hop.body is None else _BytesProducer(hop.body)
    inFlight: Deferred[Any] = maybeDeferred(
        core.owner.agent.request,
        hop.method.encode("ascii"),
        hop.url.agentUri(),
        hop.wireHeaders(),
        producer,
    )
    inFlight.addCallbacks(
        lambda response: _responded(machine, core, response), machine.requestFailed
    )
    return inFlight


def enterDiscarding(
    machine: ExchangeEvents, core: ExchangeCore, response: IResponse, following: Hop
) -> _Discard:
    core.hop = following
    discard = _Discard()
    discard.done.addCallback(lambda _: _redirectRead(machine, core))
    response.deliverBody(discard)
    return discard


def enterCollecting(
    machine: ExchangeEvents, core: ExchangeCore, response: IResponse
) -> _BodyCollector:
    core.answer = headersResult(response)
    collector = _BodyCollector(core.owner.maxBufferedBody)
    collector.done.addCallbacks(machine.bodyCollected, machine.bodyFailed)
    response.deliverBody(collector)
    return collector


def enterStreaming(
    machine: ExchangeEvents, core: ExchangeCore, response: IResponse
) -> _BodyStreamer:
    streamer = _BodyStreamer(
        core.owner.reactor, core.owner.maxDeltaBytes, machine.bodyDelta, machine.streamEnded
    )
    response.deliverBody(streamer)
    if core.owner.paused:
        _producer(streamer).pauseProducing()
    return streamer


def headersResult(response: IResponse) -> dict[str, Any]:
    return {"status": response.code, "headers": resultHeaders(response)}


__all__ = [
    "DELTA_METHOD",
    "ExchangeCore",
    "ExchangeEvents",
    "ExchangeOwner",
    "enterCollecting",
    "enterDiscarding",
    "enterSending",
    "enterStreaming",
    "headersResult",
]
