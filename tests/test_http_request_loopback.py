"""http/request against a real twisted.web loopback server: buffered responses (headers, bodies,
redirects, timeouts, errors, the buffered body limit).

The expected strings and header orders are the reference's, probed on the Codex CLI 0.131.0
binary (scripts/conformance_http_stdio.py replays the same cases against both).
"""

from __future__ import annotations

import base64
import gzip
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.trial.unittest import SynchronousTestCase

from tests.support.httprequests import LoopbackCase, P, rpcMessage
from twisted_exec.executor.resources.http_request import HttpRequester
from twisted_exec.testing.httpsite import patternBytes

reactor: Any = _reactor


class LoopbackTests(LoopbackCase):
    async def test_get(self) -> None:
        result = await self.request(url="/echo")
        self.assertEqual(result["status"], 200)
        self.assertEqual(list(result), ["status", "headers", "bodyBase64"])
        names = [h["name"] for h in result["headers"]]
        self.assertEqual(names, ["server", "date", "content-type", "content-length"])
        self.assertEqual(
            self.decode(result)["raw"], ["GET /echo HTTP/1.1", "accept: */*", self.hostLine]
        )

    async def test_postBinaryBodyAndHeaders(self) -> None:
        body = bytes(range(256)) * 3
        result = await self.request(
            method="POST",
            url="/echo",
            bodyBase64=base64.b64encode(body).decode(),
            headers=[("X-A", "1"), ("x-a", "2"), ("Content-Type", "x/y"), ("X-Empty", "")],
        )
        echoed = self.decode(result)
        self.assertEqual(base64.b64decode(echoed["bodyBase64"]), body)
        # Twisted writes its framing header first; the reference writes it last.
        self.assertEqual(
            echoed["raw"],
            [
                "POST /echo HTTP/1.1",
                "Content-Length: 768",
                "x-a: 1",
                "x-a: 2",
                "content-type: x/y",
                "x-empty: ",
                "accept: */*",
                self.hostLine,
            ],
        )

    async def test_givenHostAcceptAndUserAgent(self) -> None:
        result = await self.request(
            url="/echo?a=b c",
            headers=[("Host", "example.com"), ("User-Agent", "ua"), ("Accept", "text/plain")],
        )
        self.assertEqual(
            self.decode(result)["raw"],
            [
                "GET /echo?a=b%20c HTTP/1.1",
                "host: example.com",
                "user-agent: ua",
                "accept: text/plain",
            ],
        )

    async def test_responseHeadersAsSent(self) -> None:
        result = await self.request(url="/rawheaders")
        self.assertEqual(
            result["headers"],
            [
                {"name": "x-a", "value": "1"},
                {"name": "x-a", "value": "3"},
                {"name": "x-b", "value": "2"},
                {"name": "x-empty", "value": ""},
                {"name": "set-cookie", "value": "a=1"},
                {"name": "set-cookie", "value": "b=2"},
                {"name": "content-length", "value": "2"},
            ],
        )
        self.assertEqual(result["bodyBase64"], "b2s=")

    async def test_statusesAreResults(self) -> None:
        for status, body in [(204, b""), (404, b"status 404"), (500, b"status 500")]:
            result = await self.request(url=f"/status/{status}")
            self.assertEqual(result["status"], status)
            self.assertEqual(base64.b64decode(result["bodyBase64"]), body)

    async def test_headAndGzipUntouched(self) -> None:
        result = await self.request(method="HEAD", url="/echo")
        self.assertEqual((result["status"], result["bodyBase64"]), (200, ""))
        result = await self.request(url="/gzip")
        self.assertEqual(gzip.decompress(base64.b64decode(result["bodyBase64"])), b"hello gzip")

    async def test_redirectFollowedWithReferer(self) -> None:
        result = await self.request(
            method="POST",
            url="/redirect?to=/echo",
            bodyBase64="aGk=",
            headers=[("Authorization", "x")],
        )
        self.assertEqual(
            self.decode(result)["raw"],
            [
                "GET /echo HTTP/1.1",
                "authorization: x",
                "accept: */*",
                f"referer: {self.base}/redirect?to=/echo",
                self.hostLine,
            ],
        )
        result = await self.request(
            method="POST", url="/redirect?to=/echo&code=307", bodyBase64="aGk="
        )
        echoed = self.decode(result)
        self.assertEqual((echoed["raw"][0], echoed["bodyBase64"]), ("POST /echo HTTP/1.1", "aGk="))

    async def test_crossHostRedirectDropsCredentials(self) -> None:
        port = self.port.getHost().port
        result = await self.request(
            url=f"/redirect?to=http://localhost:{port}/echo",
            headers=[("Authorization", "x"), ("Cookie", "c")],
        )
        self.assertEqual(
            self.decode(result)["raw"],
            [
                "GET /echo HTTP/1.1",
                "accept: */*",
                f"referer: {self.base}/redirect?to=http://localhost:{port}/echo",
                f"host: localhost:{port}",
            ],
        )

    async def test_tooManyRedirects(self) -> None:
        d = self.request(url="/loop")
        self.assertEqual(
            rpcMessage(await self._settled(d)),
            (-32603, f"http/request failed: error following redirect for url ({self.base}/loop)"),
        )
        self.assertEqual(len(self.resource.seen), 11)

    async def test_timeoutBeforeHeaders(self) -> None:
        d = self.request(url="/slow?delay=5", timeoutMs=100)
        code, message = rpcMessage(await self._settled(d))
        self.assertEqual(
            (code, message),
            (
                -32603,
                f"http/request failed: error sending request for url ({self.base}/slow?delay=5)",
            ),
        )

    async def test_timeoutInBufferedBody(self) -> None:
        d = self.request(url="/stall", timeoutMs=150)
        self.assertEqual(
            rpcMessage(await self._settled(d)),
            (-32603, "failed to read http/request response body: error decoding response body"),
        )

    async def test_timeoutZero(self) -> None:
        d = self.request(url="/echo", timeoutMs=0)
        self.assertEqual(
            rpcMessage(await self._settled(d)),
            (-32603, f"http/request failed: error sending request for url ({self.base}/echo)"),
        )

    async def test_connectionRefused(self) -> None:
        closed = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        url = f"http://127.0.0.1:{closed.getHost().port}/x"
        await closed.stopListening()
        for stream in (False, True):
            d = self.requester.request(P(url=url, streamResponse=stream))
            self.assertEqual(
                rpcMessage(await self._settled(d)),
                (-32603, f"http/request failed: error sending request for url ({url})"),
            )
        self.assertEqual(self.events, [])
        self.assertEqual(self.requester.activeCount, 0)

    async def test_bodyCutShort(self) -> None:
        for path in ("/reset", "/closeearly"):
            d = self.request(url=path)
            self.assertEqual(
                rpcMessage(await self._settled(d)),
                (-32603, "failed to read http/request response body: error decoding response body"),
            )

    async def test_maxBufferedBody(self) -> None:
        self.requester.maxBufferedBody = 1000
        d = self.request(url="/bytes?n=100000")
        self.assertEqual(
            rpcMessage(await self._settled(d)),
            (
                -32603,
                "failed to read http/request response body: response body exceeds "
                "maxBufferedBody (1000 bytes)",
            ),
        )
        result = await self.request(url="/bytes?n=1000")
        self.assertEqual(base64.b64decode(result["bodyBase64"]), patternBytes(1000))


class CleanupTests(SynchronousTestCase):
    def test_cancelAllWithoutRequests(self) -> None:
        requester = HttpRequester(reactor, lambda m, p: None)
        requester.cancelAll()
        self.assertEqual(requester.activeCount, 0)
