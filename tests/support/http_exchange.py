"""Fakes for driving the ``http/request`` exchange machine directly: an agent, responses
and an owner on a Clock (tests/test_http_exchange*.py)."""

from __future__ import annotations

import base64
from typing import Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IResponse
from zope.interface import implementer

from twisted_exec.compat.params import HttpRequestParams
from twisted_exec.executor.resources.http_exchange import (
    DELTA_METHOD,
    Exchange,
    ExchangeEvents,
)
from twisted_exec.executor.resources.http_policy import prepare
from twisted_exec.wire.errors import RpcError


class RecordingProducer:
    """A transport's producer side that records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")

    def stopProducing(self) -> None:
        self.calls.append("stop")


class FakeResponse:
    def __init__(self, code: int = 200, headers: dict[bytes, list[bytes]] | None = None) -> None:
        self.code = code
        self.headers = Headers(headers or {b"x-a": [b"1"]})
        self.request = None
        self.protocol: Protocol | None = None
        self.transport = RecordingProducer()

    def deliverBody(self, protocol: Protocol) -> None:
        self.protocol = protocol
        protocol.makeConnection(self.transport)  # type: ignore[arg-type]

    def send(self, data: bytes) -> None:
        assert self.protocol is not None
        self.protocol.dataReceived(data)

    def end(self, reason: Exception | None = None) -> None:
        assert self.protocol is not None
        self.protocol.connectionLost(Failure(reason or ResponseDone()))


@implementer(IAgent)
class FakeAgent:
    def __init__(self) -> None:
        self.requests: list[tuple[bytes, bytes, Deferred[Any]]] = []

    def request(
        self, method: bytes, uri: bytes, headers: Any = None, bodyProducer: Any = None
    ) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.requests.append((method, uri, d))
        return d

    def respond(self, response: FakeResponse) -> None:
        self.requests[-1][2].callback(response)


class FakeOwner:
    def __init__(self) -> None:
        self.reactor = Clock()
        self.fake = FakeAgent()
        self.agent: IAgent = self.fake
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.maxBufferedBody: int | None = None
        self.maxDeltaBytes = 1 << 20
        self.paused = False

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.sent.append((method, params))


class ExchangeHarness:
    def __init__(self, *, stream: bool = False, timeoutMs: int | None = None) -> None:
        self.owner = FakeOwner()
        self.clock = self.owner.reactor
        params = HttpRequestParams(
            method="GET",
            url="http://example.test/a",
            requestId="r1",
            streamResponse=stream,
            timeoutMs=timeoutMs,
        )
        self.forgotten: list[Exchange] = []
        self.exchange = Exchange(
            self.owner, prepare(params, lambda _: False), self.forgotten.append
        )
        self.machine: ExchangeEvents = self.exchange._machine
        self.outcomes: list[Any] = []
        self.exchange.core.result.addBoth(self.outcomes.append)

    def start(self) -> None:
        self.exchange.start()

    @property
    def state(self) -> str:
        return self.exchange.state

    def error(self) -> str:
        [outcome] = self.outcomes
        assert isinstance(outcome, Failure), outcome
        assert isinstance(outcome.value, RpcError), outcome
        return str(outcome.value.message)

    def deltas(self) -> list[tuple[bytes, bool, str | None]]:
        return [
            (base64.b64decode(p["deltaBase64"]), p["done"], p["error"])
            for m, p in self.owner.sent
            if m == DELTA_METHOD
        ]


def started(*, stream: bool = False, timeoutMs: int | None = None) -> ExchangeHarness:
    h = ExchangeHarness(stream=stream, timeoutMs=timeoutMs)
    h.start()
    return h


def answered(
    *, stream: bool = False, timeoutMs: int | None = None
) -> tuple[ExchangeHarness, FakeResponse]:
    """Started, and the first hop answered (200)."""
    h = started(stream=stream, timeoutMs=timeoutMs)
    response = FakeResponse()
    h.owner.fake.respond(response)
    return h, response


def asResponse(response: FakeResponse) -> IResponse:
    return cast(IResponse, response)


def redirect(to: bytes = b"/next") -> FakeResponse:
    return FakeResponse(302, {b"location": [to]})


def inState(name: str) -> ExchangeHarness:
    h = ExchangeHarness(stream=name in ("replied", "streaming"), timeoutMs=1000)
    if name == "cancelled":
        h.exchange.cancel()
    elif name != "idle":
        h.start()
    response = redirect() if name == "discarding" else FakeResponse()
    if name in ("discarding", "collecting", "replied", "streaming", "done"):
        h.owner.fake.respond(response)
    if name == "streaming":
        h.clock.advance(0)
    if name == "done":
        response.end()
    if name == "expired":
        h.owner.fake.respond(response)
        h.clock.advance(1)
    if name == "failed":
        h.clock.advance(1)
    assert h.state == name, (h.state, name)
    return h


STATES = [
    "idle",
    "sending",
    "discarding",
    "collecting",
    "replied",
    "streaming",
    "expired",
    "cancelled",
    "done",
    "failed",
]
