"""The ``http/request`` exchange machine driven directly: buffered and streamed answers, the
deadline (fakes in tests/support/http_exchange.py)."""

from __future__ import annotations

import base64

from twisted.internet.error import ConnectionLost
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.iweb import IAgent
from zope.interface.verify import verifyObject

from tests.support.http_exchange import (
    FakeAgent,
    FakeResponse,
    answered,
    redirect,
    started,
)
from twisted_exec.executor.resources.http_agent import BODY_ERROR
from twisted_exec.executor.resources.http_policy import MAX_REDIRECTS


class BufferedTests(SynchronousTestCase):
    def test_fakeAgent(self) -> None:
        self.assertTrue(verifyObject(IAgent, FakeAgent()))

    def test_answer(self) -> None:
        h = started()
        self.assertEqual(h.state, "sending")
        response = FakeResponse()
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
        h = started()
        first = redirect()
        h.owner.fake.respond(first)
        self.assertEqual(h.state, "discarding")
        self.assertEqual(len(h.owner.fake.requests), 1, "the body is read away first")
        first.end()
        self.assertEqual(h.state, "sending")
        self.assertEqual(h.owner.fake.requests[1][1], b"http://example.test:80/next")
        h.owner.fake.respond(FakeResponse(204))
        self.assertEqual(h.state, "collecting")

    def test_tooManyRedirects(self) -> None:
        h = started()
        for _ in range(MAX_REDIRECTS + 1):
            response = redirect()
            h.owner.fake.respond(response)
            response.end()
        self.assertEqual(h.state, "failed")
        self.assertEqual(len(h.owner.fake.requests), MAX_REDIRECTS + 1)
        self.assertIn("error following redirect", h.error())

    def test_requestFails(self) -> None:
        h = started()
        h.owner.fake.requests[0][2].errback(ConnectionLost())
        self.assertEqual(h.state, "failed")
        self.assertEqual(
            h.error(), "http/request failed: error sending request for url (http://example.test/a)"
        )

    def test_bodyCutShort(self) -> None:
        h, response = answered()
        response.end(ConnectionLost())
        self.assertEqual(h.state, "failed")
        self.assertIn(BODY_ERROR, h.error())


class StreamedTests(SynchronousTestCase):
    def test_replyThenDeltas(self) -> None:
        h, response = answered(stream=True)
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
        h, response = answered(stream=True)
        h.owner.paused = True
        h.exchange.pause()  # nothing to pause yet: ignored
        h.clock.advance(0)
        self.assertEqual(response.transport.calls, ["pause"])
        h.exchange.resume()
        self.assertEqual(response.transport.calls, ["pause", "resume"])


class DeadlineTests(SynchronousTestCase):
    def test_whileSending(self) -> None:
        h = started(timeoutMs=1000)
        h.clock.advance(1)
        self.assertEqual(h.state, "failed")
        self.assertIn("error sending request", h.error())
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_whileCollecting(self) -> None:
        h, response = answered(timeoutMs=1000)
        h.clock.advance(1)
        self.assertEqual(h.state, "expired")
        self.assertEqual(response.transport.calls, ["stop"])
        response.end()  # even a body that ends cleanly is late
        self.assertEqual(h.error(), f"failed to read http/request response body: {BODY_ERROR}")

    def test_whileDiscardingARedirect(self) -> None:
        h = started(timeoutMs=1000)
        first = redirect()
        h.owner.fake.respond(first)
        h.clock.advance(1)
        first.end()
        self.assertEqual(len(h.owner.fake.requests), 1, "no hop after the deadline")
        self.assertEqual(
            h.error(),
            "http/request failed: error sending request for url (http://example.test/next)",
        )

    def test_beforeTheStreamConnects(self) -> None:
        h, response = answered(stream=True, timeoutMs=1000)
        h.clock.advance(1)
        self.assertEqual(h.state, "expired")
        self.assertEqual(response.transport.calls, ["stop"], "connected only to stop")
        response.end()
        self.assertEqual(h.deltas(), [(b"", True, BODY_ERROR)])
        self.assertEqual(h.state, "done")

    def test_whileStreaming(self) -> None:
        h, response = answered(stream=True, timeoutMs=1000)
        h.clock.advance(0)
        response.send(b"part")
        h.clock.advance(1)
        self.assertEqual(response.transport.calls, ["stop"])
        response.end()
        self.assertEqual(h.deltas(), [(b"part", False, None), (b"", True, BODY_ERROR)])
