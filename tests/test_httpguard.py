"""The guarded HTTP server over real loopback sockets: deadlines, early verdicts, caps."""

from __future__ import annotations

import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Request

from twisted_exec.net.httpguard import ConnectionLimiter, GuardedRequest, GuardedSite, Verdict
from twisted_exec.testing.rawhttp import rawExchange


async def waitUntil(predicate: Any, timeout: float = 5.0) -> None:
    """Poll ``predicate`` on the reactor (a server-side effect with no event to wait for)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await deferLater(reactor, 0.01, lambda: None)


class _Echo(Resource):
    isLeaf = True

    def render(self, request: Request) -> bytes:
        assert request.content is not None
        return b"got %d bytes" % len(request.content.read())


class _CountingRequest(GuardedRequest):
    bodyBytes = 0

    def handleContentChunk(self, data: bytes) -> None:
        super().handleContentChunk(data)
        assert self.content is not None
        type(self).bodyBytes = max(type(self).bodyBytes, self.content.tell())


def earlyVerdict(method: bytes, path: bytes, headers: Any, length: int | None) -> Verdict | None:
    if path.startswith(b"/private") and headers.getRawHeaders(b"authorization") != [b"Bearer ok"]:
        return Verdict(401, {"error": {"code": "unauthorized", "message": "invalid bearer token"}})
    return None


class GuardedSiteTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        _CountingRequest.bodyBytes = 0
        self.limiter = ConnectionLimiter(maxPerIp=3, maxTotal=5)
        self.site = GuardedSite(
            _Echo(),
            reactor,
            requestTimeout=0.5,
            maxBodyBytes=4096,
            earlyVerdict=earlyVerdict,
            limiter=self.limiter,
        )
        self.site.requestFactory = _CountingRequest  # type: ignore[assignment]
        self.port: Any = reactor.listenTCP(0, self.site, interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(self.port.stopListening)
        address: Any = self.port.getHost()
        self.portNumber = address.port

    def exchange(self, data: bytes, **kw: Any) -> Deferred[Any]:
        return Deferred.fromCoroutine(
            rawExchange(reactor, "127.0.0.1", self.portNumber, data, **kw)
        )

    async def test_aRequestIsAnswered(self) -> None:
        body = b"x" * 100
        head = b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\nConnection: close\r\n\r\n"
        response = await self.exchange(head + body)
        self.assertEqual((response.status, response.body), (200, b"got 100 bytes"))

    async def test_trickleCannotExtendTheRequestDeadline(self) -> None:
        """One byte every 50 ms would keep twisted.web's idle timeout at bay forever."""
        request = b"GET /echo HTTP/1.1\r\nHost: h\r\nX-Pad: " + b"p" * 200 + b"\r\n\r\n"
        started = time.monotonic()
        response = await self.exchange(request, chunk=1, interval=0.05, timeout=10)
        elapsed = time.monotonic() - started
        self.assertTrue(response.closed)
        self.assertEqual(response.status, 0)  # aborted, never answered
        self.assertLess(elapsed, 3.0)
        self.assertGreater(elapsed, 0.4)

    async def test_bodyOverTheCapIsRefusedUnread(self) -> None:
        head = b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 268435456\r\n\r\n"
        response = await self.exchange(head + b"y" * 65536)
        self.assertEqual(response.status, 413)
        self.assertIn(b"body_too_large", response.body)
        self.assertEqual(_CountingRequest.bodyBytes, 0)

    async def test_chunkedBodyOverTheCap(self) -> None:
        chunk = b"1000\r\n" + b"z" * 4096 + b"\r\n"
        head = b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        response = await self.exchange(head + chunk * 4)
        self.assertEqual(response.status, 413)
        self.assertLessEqual(_CountingRequest.bodyBytes, 4096)

    async def test_tokenCheckedBeforeTheBody(self) -> None:
        head = b"POST /private/x HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\n\r\n"
        response = await self.exchange(head + b"y" * 8192)
        self.assertEqual(response.status, 401)
        self.assertIn(b"invalid bearer token", response.body)
        self.assertEqual(_CountingRequest.bodyBytes, 0)
        bare = await self.exchange(b"GET /private/y HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual((bare.status, bare.headers["connection"]), (401, "close"))
        ok = b"POST /private/x HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer ok\r\n"
        ok += b"Content-Length: 3\r\nConnection: close\r\n\r\nabc"
        self.assertEqual((await self.exchange(ok)).status, 200)

    async def test_connectionCaps(self) -> None:
        """Three connections per IP: a fourth is closed before it can send anything."""
        lost: list[Deferred[None]] = []
        protocols: list[Any] = []

        class Idle(Protocol):
            def __init__(self) -> None:
                self.gone: Deferred[None] = Deferred()

            def connectionLost(self, reason: Any = None) -> None:
                self.gone.callback(None)

        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.portNumber, timeout=5)
        for _ in range(4):
            protocol = Idle()
            protocols.append(protocol)
            lost.append(protocol.gone)
            await endpoint.connect(Factory.forProtocol(lambda p=protocol: p))  # type: ignore[misc]
        await lost[3].addTimeout(5, reactor)
        self.assertFalse(any(d.called for d in lost[:3]))
        self.assertEqual(self.limiter.count("127.0.0.1"), 3)
        self.assertEqual(self.limiter.refused, 1)
        for protocol in protocols[:3]:
            protocol.transport.abortConnection()  # type: ignore[union-attr]
        for d in lost[:3]:
            await d.addTimeout(5, reactor)
        await waitUntil(lambda: self.limiter.total == 0)
        self.assertEqual(self.limiter.count("127.0.0.1"), 0)


class LimiterTests(TestCase):
    def test_counts(self) -> None:
        limiter = ConnectionLimiter(maxPerIp=1, maxTotal=2)
        self.assertTrue(limiter.admit("a"))
        limiter.bind("t1", "a")
        self.assertFalse(limiter.admit("a"))
        self.assertTrue(limiter.admit("b"))
        limiter.bind("t2", "b")
        self.assertFalse(limiter.admit("c"))
        limiter.release("t1")
        limiter.release("t1")
        self.assertEqual((limiter.total, limiter.count("a")), (1, 0))
