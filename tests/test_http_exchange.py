"""The ``http/request`` exchange machine driven directly: a fake agent, fake responses, a Clock."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionLost
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.client import ResponseDone
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IResponse
from zope.interface import implementer
from zope.interface.verify import verifyObject

from twisted_exec.compat.params import HttpRequestParams
from twisted_exec.executor.resources.http_agent import BODY_ERROR
from twisted_exec.executor.resources.http_exchange import (
    DELTA_METHOD,
    Exchange,
    ExchangeEvents,
)
from twisted_exec.executor.resources.http_policy import MAX_REDIRECTS, nextHop, prepare
from twisted_exec.executor.resources.http_request import HttpRequester
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


class _Response:
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
class _Agent:
    def __init__(self) -> None:
        self.requests: list[tuple[bytes, bytes, Deferred[Any]]] = []

    def request(
        self, method: bytes, uri: bytes, headers: Any = None, bodyProducer: Any = None
    ) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.requests.append((method, uri, d))
        return d

    def respond(self, response: _Response) -> None:
        self.requests[-1][2].callback(response)


class _Owner:
    def __init__(self) -> None:
        self.reactor = Clock()
        self.fake = _Agent()
        self.agent: IAgent = self.fake
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.maxBufferedBody: int | None = None
        self.maxDeltaBytes = 1 << 20
        self.paused = False

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.sent.append((method, params))


class _Harness:
    def __init__(self, *, stream: bool = False, timeoutMs: int | None = None) -> None:
        self.owner = _Owner()
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


def _started(*, stream: bool = False, timeoutMs: int | None = None) -> _Harness:
    h = _Harness(stream=stream, timeoutMs=timeoutMs)
    h.start()
    return h


def _answered(*, stream: bool = False, timeoutMs: int | None = None) -> tuple[_Harness, _Response]:
    """Started, and the first hop answered (200)."""
    h = _started(stream=stream, timeoutMs=timeoutMs)
    response = _Response()
    h.owner.fake.respond(response)
    return h, response


def _fake(response: _Response) -> IResponse:
    return cast(IResponse, response)


def _redirect(to: bytes = b"/next") -> _Response:
    return _Response(302, {b"location": [to]})


class BufferedTests(SynchronousTestCase):
    def test_fakeAgent(self) -> None:
        self.assertTrue(verifyObject(IAgent, _Agent()))

    def test_answer(self) -> None:
        h = _started()
        self.assertEqual(h.state, "sending")
        response = _Response()
        h.owner.fake.respond(response)
        self.assertEqual(h.state, "collecting")
        response.send(b"he")
        response.send(b"llo")
        response.end()
        self.assertEqual(h.state, "done")
        [result] = h.outcomes
        self.assertEqual(result["status"], 200)
        self.assertEqual(result["headers"], [{"name": "x-a", "value": "1"}])
        self.assertEqual(base64.b64decode(result["bodyBase64"]), b"hello")
        self.assertEqual(h.forgotten, [h.exchange])

    def test_redirectIsFollowed(self) -> None:
        h = _started()
        first = _redirect()
        h.owner.fake.respond(first)
        self.assertEqual(h.state, "discarding")
        self.assertEqual(len(h.owner.fake.requests), 1, "the body is read away first")
        first.end()
        self.assertEqual(h.state, "sending")
        self.assertEqual(h.owner.fake.requests[1][1], b"http://example.test:80/next")
        h.owner.fake.respond(_Response(204))
        self.assertEqual(h.state, "collecting")

    def test_tooManyRedirects(self) -> None:
        h = _started()
        for _ in range(MAX_REDIRECTS + 1):
            response = _redirect()
            h.owner.fake.respond(response)
            response.end()
        self.assertEqual(h.state, "failed")
        self.assertEqual(len(h.owner.fake.requests), MAX_REDIRECTS + 1)
        self.assertIn("error following redirect", h.error())

    def test_requestFails(self) -> None:
        h = _started()
        h.owner.fake.requests[0][2].errback(ConnectionLost())
        self.assertEqual(h.state, "failed")
        self.assertEqual(
            h.error(), "http/request failed: error sending request for url (http://example.test/a)"
        )

    def test_bodyCutShort(self) -> None:
        h, response = _answered()
        response.end(ConnectionLost())
        self.assertEqual(h.state, "failed")
        self.assertIn(BODY_ERROR, h.error())


class StreamedTests(SynchronousTestCase):
    def test_replyThenDeltas(self) -> None:
        h, response = _answered(stream=True)
        self.assertEqual(h.state, "replied")
        [result] = h.outcomes
        self.assertEqual(result["bodyBase64"], "")
        self.assertIsNone(response.protocol, "the body protocol connects after the reply")
        h.clock.advance(0)
        self.assertEqual(h.state, "streaming")
        response.send(b"abc")
        self.assertEqual(h.deltas(), [], "coalesced until the next turn")
        h.clock.advance(0)
        response.end()
        self.assertEqual(h.deltas(), [(b"abc", False, None), (b"", True, None)])
        self.assertEqual(h.state, "done")
        self.assertEqual(h.forgotten, [h.exchange])

    def test_pausedBeforeTheBodyConnects(self) -> None:
        h, response = _answered(stream=True)
        h.owner.paused = True
        h.exchange.pause()  # nothing to pause yet: ignored
        h.clock.advance(0)
        self.assertEqual(response.transport.calls, ["pause"])
        h.exchange.resume()
        self.assertEqual(response.transport.calls, ["pause", "resume"])


class DeadlineTests(SynchronousTestCase):
    def test_whileSending(self) -> None:
        h = _started(timeoutMs=1000)
        h.clock.advance(1)
        self.assertEqual(h.state, "failed")
        self.assertIn("error sending request", h.error())
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_whileCollecting(self) -> None:
        h, response = _answered(timeoutMs=1000)
        h.clock.advance(1)
        self.assertEqual(h.state, "expired")
        self.assertEqual(response.transport.calls, ["stop"])
        response.end()  # even a body that ends cleanly is late
        self.assertEqual(h.error(), f"failed to read http/request response body: {BODY_ERROR}")

    def test_whileDiscardingARedirect(self) -> None:
        h = _started(timeoutMs=1000)
        first = _redirect()
        h.owner.fake.respond(first)
        h.clock.advance(1)
        first.end()
        self.assertEqual(len(h.owner.fake.requests), 1, "no hop after the deadline")
        self.assertEqual(
            h.error(),
            "http/request failed: error sending request for url (http://example.test/next)",
        )

    def test_beforeTheStreamConnects(self) -> None:
        h, response = _answered(stream=True, timeoutMs=1000)
        h.clock.advance(1)
        self.assertEqual(h.state, "expired")
        self.assertEqual(response.transport.calls, ["stop"], "connected only to stop")
        response.end()
        self.assertEqual(h.deltas(), [(b"", True, BODY_ERROR)])
        self.assertEqual(h.state, "done")

    def test_whileStreaming(self) -> None:
        h, response = _answered(stream=True, timeoutMs=1000)
        h.clock.advance(0)
        response.send(b"part")
        h.clock.advance(1)
        self.assertEqual(response.transport.calls, ["stop"])
        response.end()
        self.assertEqual(h.deltas(), [(b"part", False, None), (b"", True, BODY_ERROR)])


class CancelTests(SynchronousTestCase):
    def test_whileSending(self) -> None:
        h = _started(timeoutMs=1000)
        h.exchange.cancel()
        self.assertEqual(h.state, "cancelled")
        self.assertIn("error sending request", h.error())
        self.assertEqual(h.clock.getDelayedCalls(), [], "the deadline is released")
        self.assertEqual(h.forgotten, [h.exchange])

    def test_whileStreamingNothingMoreIsSent(self) -> None:
        h, response = _answered(stream=True)
        h.clock.advance(0)
        response.send(b"held")
        h.exchange.cancel()
        self.assertEqual(response.transport.calls, ["stop"])
        h.clock.advance(0)
        response.end()
        self.assertEqual(h.deltas(), [])

    def test_beforeTheStreamConnects(self) -> None:
        h, response = _answered(stream=True)
        h.exchange.cancel()
        h.clock.advance(0)
        self.assertEqual(response.transport.calls, ["stop"], "the connection is dropped")
        response.end()
        self.assertEqual(h.deltas(), [])

    def test_whileDiscardingNoNextHop(self) -> None:
        """Through the requester (so it runs on the flag code too, where it failed): a session
        that ended while a redirect's body was read away sent the next hop anyway."""
        clock = Clock()
        agent = _Agent()
        requester = HttpRequester(clock, lambda m, p: None, agent)  # type: ignore[arg-type]
        d = requester.request(
            HttpRequestParams(method="GET", url="http://example.test/a", requestId="r")
        )
        outcomes: list[Any] = []
        d.addBoth(outcomes.append)
        first = _redirect()
        agent.respond(first)
        requester.cancelAll()
        first.end()
        self.assertEqual(len(agent.requests), 1)
        [failure] = outcomes
        self.assertIsInstance(failure, Failure)


def _inState(name: str) -> _Harness:
    h = _Harness(stream=name in ("replied", "streaming"), timeoutMs=1000)
    if name == "cancelled":
        h.exchange.cancel()
    elif name != "idle":
        h.start()
    response = _redirect() if name == "discarding" else _Response()
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


class EveryInputTests(SynchronousTestCase):
    """Every input is accepted in every state: a late event never raises into the reactor."""

    def test_everyInputInEveryState(self) -> None:
        hop = nextHop(_Harness().exchange.core.hop, 302, "/x")
        assert hop is not None
        inputs: list[Callable[[ExchangeEvents], None]] = [
            lambda m: m.start(),
            lambda m: m.redirected(_fake(_Response(302)), hop),
            lambda m: m.redirectRead(),
            lambda m: m.redirectLimit(),
            lambda m: m.answered(_fake(_Response())),
            lambda m: m.answeredStreaming(_fake(_Response())),
            lambda m: m.requestFailed(Failure(ConnectionLost())),
            lambda m: m.bodyCollected(b"x"),
            lambda m: m.bodyFailed(Failure(ConnectionLost())),
            lambda m: m.startStreaming(_fake(_Response())),
            lambda m: m.bodyDelta(b"x"),
            lambda m: m.streamEnded(None),
            lambda m: m.timeout(),
            lambda m: m.cancel(),
            lambda m: m.pause(),
            lambda m: m.resume(),
        ]
        for name in STATES:
            for feed in inputs:
                h = _inState(name)
                feed(h.machine)
                h.clock.advance(0)
                self.assertIn(h.state, STATES)
                self.assertLessEqual(len(h.outcomes), 1, "the result settles once")

    def test_lateEventsChangeNothing(self) -> None:
        for name in ["done", "failed"]:
            h = _inState(name)
            before = (list(h.outcomes), list(h.owner.sent))
            h.machine.timeout()
            h.machine.streamEnded(None)
            h.machine.bodyDelta(b"x")
            h.machine.cancel()
            self.assertEqual(h.state, name)
            self.assertEqual((h.outcomes, h.owner.sent), before)
