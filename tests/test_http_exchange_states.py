"""The ``http/request`` exchange machine: cancelling, and every input in every state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.error import ConnectionLost
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.support.http_exchange import (
    STATES,
    ExchangeHarness,
    FakeAgent,
    FakeResponse,
    answered,
    asResponse,
    inState,
    redirect,
    started,
)
from twisted_exec.compat.params import HttpRequestParams
from twisted_exec.executor.resources.http_exchange import (
    ExchangeEvents,
)
from twisted_exec.executor.resources.http_policy import nextHop
from twisted_exec.executor.resources.http_request import HttpRequester


class CancelTests(SynchronousTestCase):
    def test_whileSending(self) -> None:
        h = started(timeoutMs=1000)
        h.exchange.cancel()
        self.assertEqual(h.state, "cancelled")
        self.assertIn("error sending request", h.error())
        self.assertEqual(h.clock.getDelayedCalls(), [], "the deadline is released")
        self.assertEqual(h.forgotten, [h.exchange])

    def test_whileStreamingNothingMoreIsSent(self) -> None:
        h, response = answered(stream=True)
        h.clock.advance(0)
        response.send(b"held")
        h.exchange.cancel()
        self.assertEqual(response.transport.calls, ["stop"])
        h.clock.advance(0)
        response.end()
        self.assertEqual(h.deltas(), [])

    def test_beforeTheStreamConnects(self) -> None:
        h, response = answered(stream=True)
        h.exchange.cancel()
        h.clock.advance(0)
        self.assertEqual(response.transport.calls, ["stop"], "the connection is dropped")
        response.end()
        self.assertEqual(h.deltas(), [])

    def test_whileDiscardingNoNextHop(self) -> None:
        """Through the requester (so it runs on the flag code too, where it failed): a session
        that ended while a redirect's body was read away sent the next hop anyway."""
        clock = Clock()
        agent = FakeAgent()
        requester = HttpRequester(clock, lambda m, p: None, agent)  # type: ignore[arg-type]
        d = requester.request(
            HttpRequestParams(method="GET", url="http://example.test/a", requestId="r")
        )
        outcomes: list[Any] = []
        d.addBoth(outcomes.append)
        first = redirect()
        agent.respond(first)
        requester.cancelAll()
        first.end()
        self.assertEqual(len(agent.requests), 1)
        [failure] = outcomes
        self.assertIsInstance(failure, Failure)


class EveryInputTests(SynchronousTestCase):
    """Every input is accepted in every state: a late event never raises into the reactor."""

    def test_everyInputInEveryState(self) -> None:
        hop = nextHop(ExchangeHarness().exchange.core.hop, 302, "/x")
        assert hop is not None
        inputs: list[Callable[[ExchangeEvents], None]] = [
            lambda m: m.start(),
            lambda m: m.redirected(asResponse(FakeResponse(302)), hop),
            lambda m: m.redirectRead(),
            lambda m: m.redirectLimit(),
            lambda m: m.answered(asResponse(FakeResponse())),
            lambda m: m.answeredStreaming(asResponse(FakeResponse())),
            lambda m: m.requestFailed(Failure(ConnectionLost())),
            lambda m: m.bodyCollected(b"x"),
            lambda m: m.bodyFailed(Failure(ConnectionLost())),
            lambda m: m.startStreaming(asResponse(FakeResponse())),
            lambda m: m.bodyDelta(b"x"),
            lambda m: m.streamEnded(None),
            lambda m: m.timeout(),
            lambda m: m.cancel(),
            lambda m: m.pause(),
            lambda m: m.resume(),
        ]
        for name in STATES:
            for feed in inputs:
                h = inState(name)
                feed(h.machine)
                h.clock.advance(0)
                self.assertIn(h.state, STATES)
                self.assertLessEqual(len(h.outcomes), 1, "the result settles once")

    def test_lateEventsChangeNothing(self) -> None:
        for name in ["done", "failed"]:
            h = inState(name)
            before = (list(h.outcomes), list(h.owner.sent))
            h.machine.timeout()
            h.machine.streamEnded(None)
            h.machine.bodyDelta(b"x")
            h.machine.cancel()
            self.assertEqual(h.state, name)
            self.assertEqual((h.outcomes, h.owner.sent), before)
