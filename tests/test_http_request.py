"""http/request: sans-IO parts directly; the requester against a real twisted.web loopback server.

The expected strings and header orders are the reference's, probed on the Codex CLI 0.131.0 binary
(scripts/conformance_http_stdio.py replays the same cases against both).
"""

from __future__ import annotations

import base64
import gzip
import json
import resource
from typing import Any
from urllib.parse import parse_qs

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import connectionDone
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web import http, server
from twisted.web.resource import Resource

from twisted_exec.compat.params import HttpHeader, HttpRequestParams, parse
from twisted_exec.compat.whatwg_url import OtherScheme, UrlError, joinUrl, parseUrl
from twisted_exec.executor.resources.http_policy import Hop, nextHop, prepare
from twisted_exec.executor.resources.http_request import DELTA_METHOD, HttpRequester
from twisted_exec.wire.errors import RpcError

reactor: Any = _reactor

# -- the loopback server (also used by scripts/conformance_http_stdio.py) --

PATTERN = bytes(range(256)) * 256  # 64 KiB holding every byte value


def patternBytes(total: int) -> bytes:
    whole, rest = divmod(total, len(PATTERN))
    return PATTERN * whole + PATTERN[:rest]


class RecordingChannel(http.HTTPChannel):
    """Keeps the raw request line and header lines of each request, in wire order."""

    def connectionMade(self) -> None:
        super().connectionMade()
        self.factory.connections.add(self)  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        super().connectionLost(reason)
        connections = self.factory.connections  # type: ignore[attr-defined]
        connections.discard(self)
        if not connections:
            waiters, self.factory.idleWaiters = self.factory.idleWaiters, []  # type: ignore[attr-defined]
            for waiter in waiters:
                waiter.callback(None)

    def lineReceived(self, line: bytes) -> None:
        if not getattr(self, "_inHeaders", False):
            self._rawLines: list[bytes] = []
            self._inHeaders = True
        if line == b"":
            self._inHeaders = False
            self.lastRawHeaders = self._rawLines
        else:
            self._rawLines.append(line)
        super().lineReceived(line)


class _PatternProducer:
    """Pull producer writing ``total`` bytes of PATTERN, 64 KiB at a time, as the client reads."""

    def __init__(self, request: server.Request, total: int) -> None:
        self.request = request
        self.remaining = total

    def resumeProducing(self) -> None:
        piece = PATTERN[: min(len(PATTERN), self.remaining)]
        self.remaining -= len(piece)
        if piece:
            self.request.write(piece)
        if self.remaining <= 0:
            self.request.unregisterProducer()
            self.request.finish()

    def stopProducing(self) -> None:
        self.remaining = 0

    def pauseProducing(self) -> None:
        pass


class EndpointResource(Resource):
    """``/echo`` reports what arrived; the others shape a response (see ``render``)."""

    isLeaf = True

    def __init__(self, clock: Any) -> None:
        super().__init__()
        self.clock = clock
        self.seen: list[dict[str, Any]] = []
        self.calls: list[IDelayedCall] = []
        self.produced = 0

    def later(self, delay: float, f: Any, *args: Any) -> None:
        self.calls.append(self.clock.callLater(delay, f, *args))

    def cancelCalls(self) -> None:
        for call in self.calls:
            if call.active():
                call.cancel()

    def render(self, request: server.Request) -> Any:
        path = request.path.decode("latin-1")
        query = {
            k: v[0] for k, v in parse_qs(request.uri.partition(b"?")[2].decode("latin-1")).items()
        }
        raw = [line.decode("latin-1") for line in getattr(request.channel, "lastRawHeaders", [])]
        body = request.content.read() if request.content is not None else b""
        record = {"path": path, "raw": raw, "bodyBase64": base64.b64encode(body).decode()}
        self.seen.append(record)
        transport: Any = request.channel.transport  # type: ignore[union-attr]
        if path == "/echo":
            request.setHeader(b"content-type", b"application/json")
            return json.dumps(record).encode()
        if path == "/redirect":
            request.setResponseCode(int(query.get("code", "302")))
            request.setHeader(b"location", query.get("to", "/echo").encode())
            return b""
        if path == "/loop":
            request.setResponseCode(302)
            request.setHeader(b"location", b"/loop")
            return b""
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            request.setResponseCode(code)
            return b"" if code in (204, 304) else f"status {code}".encode()
        if path == "/rawheaders":
            transport.write(
                b"HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B: 2\r\nx-a: 3\r\nX-Empty:\r\n"
                b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nok"
            )
            transport.loseConnection()
            return server.NOT_DONE_YET
        if path == "/bytes":
            total = int(query.get("n", "0"))
            request.setHeader(b"content-type", b"application/octet-stream")
            if query.get("chunked") != "1":
                request.setHeader(b"content-length", str(total).encode())
            request.registerProducer(_PatternProducer(request, total), False)
            return server.NOT_DONE_YET
        if path == "/chunked":
            count, size = int(query.get("count", "5")), int(query.get("size", "8"))
            delay = float(query.get("delay", "0.15"))
            request.write(b"")

            def step(index: int) -> None:
                if request.finished or request._disconnected:
                    return
                request.write(bytes([65 + index]) * size)
                if index + 1 < count:
                    self.later(delay, step, index + 1)
                else:
                    request.finish()

            self.later(0 if query.get("first") == "now" else delay, step, 0)
            return server.NOT_DONE_YET
        if path == "/stall":
            request.setHeader(b"content-length", b"1000")
            request.write(b"x" * 10)
            return server.NOT_DONE_YET
        if path == "/slow":

            def late() -> None:
                if not request._disconnected:
                    request.write(b"late")
                    request.finish()

            self.later(float(query.get("delay", "2")), late)
            return server.NOT_DONE_YET
        if path == "/gzip":
            request.setHeader(b"content-encoding", b"gzip")
            return gzip.compress(b"hello gzip", mtime=0)
        if path in ("/reset", "/closeearly"):
            transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            end = transport.abortConnection if path == "/reset" else transport.loseConnection
            self.later(float(query.get("after", "0.05")), end)
            return server.NOT_DONE_YET
        request.setResponseCode(404)
        return b"no such endpoint"


def makeSite(clock: Any) -> tuple[server.Site, EndpointResource]:
    resource = EndpointResource(clock)
    site = server.Site(resource, timeout=None)
    site.protocol = RecordingChannel  # type: ignore[assignment]
    site.displayTracebacks = False
    site.connections = set()  # type: ignore[attr-defined]
    site.idleWaiters = []  # type: ignore[attr-defined]
    site.noisy = False
    return site, resource


def serverIdle(site: server.Site) -> Deferred[None]:
    """Fires once every connection to ``site`` has closed."""
    if not site.connections:  # type: ignore[attr-defined]
        return succeed(None)
    d: Deferred[None] = Deferred()
    site.idleWaiters.append(d)  # type: ignore[attr-defined]
    return d


# -- helpers ------------------------------------------------------------------------------------


def P(
    method: str = "GET", url: str = "http://127.0.0.1:1/", requestId: str = "r", **kw: Any
) -> HttpRequestParams:
    headers = kw.pop("headers", None)
    if headers is not None:
        headers = [HttpHeader(n, v) for n, v in headers]
    return HttpRequestParams(method=method, url=url, requestId=requestId, headers=headers, **kw)


def rpcMessage(d: Deferred[Any]) -> tuple[int, str]:
    failures: list[Failure] = []
    d.addErrback(failures.append)
    assert failures, "expected an error"
    err = failures[0].value
    assert isinstance(err, RpcError), failures[0]
    return err.code, err.message


# -- sans IO ------------------------------------------------------------------------------------


class UrlTests(SynchronousTestCase):
    def assertUrl(self, text: str, serialized: str) -> None:
        url = parseUrl(text)
        assert not isinstance(url, OtherScheme)
        self.assertEqual(url.display(), serialized)

    def test_normalisation(self) -> None:
        # Each pair is the reference's error-message rendering of the input URL.
        for text, expected in [
            ("http://u:p@127.0.0.1:1/x?q#f", "http://127.0.0.1:1/x?q#f"),
            ("http://127.0.0.1:1", "http://127.0.0.1:1/"),
            ("http://127.0.0.1:/x", "http://127.0.0.1/x"),
            ("http://127.0.0.1:80/", "http://127.0.0.1/"),
            ("https://127.0.0.1:443/", "https://127.0.0.1/"),
            ("http://127.0.0.1:1?x", "http://127.0.0.1:1/?x"),
            ("HTTP://Local.Host:1/A/../b/./c", "http://local.host:1/b/c"),
            ('http://127.0.0.1:1/a b<>"{}|`^', "http://127.0.0.1:1/a%20b%3C%3E%22%7B%7D|%60^"),
            ("http://0x7f.1:1/", "http://127.0.0.1:1/"),
            ("http://[::1]:1/", "http://[::1]:1/"),
            ("http://127.1:1/", "http://127.0.0.1:1/"),
            ("http://exa_mple:1/", "http://exa_mple:1/"),
            ("http://-x-:1/", "http://-x-:1/"),
            ("http://a..b:1/", "http://a..b:1/"),
            ("http://@127.0.0.1:1/", "http://127.0.0.1:1/"),
            ("  http://127.0.0.1:1/  ", "http://127.0.0.1:1/"),
            ("http://127.0.0.1:1/\ttab", "http://127.0.0.1:1/tab"),
            ("http://127.0.0.1:1/%zz", "http://127.0.0.1:1/%zz"),
            ("http://127.0.0.1:1/?q=a b&r=é'", "http://127.0.0.1:1/?q=a%20b&r=%C3%A9%27"),
            ("http://ÉXAMPLE.invalid/", "http://xn--xample-9ua.invalid/"),
            ("http:/127.0.0.1:5/echo", "http://127.0.0.1:5/echo"),
            ("http:127.0.0.1:5/echo", "http://127.0.0.1:5/echo"),
            ("http://127.0.0.1:5\\echo", "http://127.0.0.1:5/echo"),
            ("http://127.0.0.1:5/é?q=é", "http://127.0.0.1:5/%C3%A9?q=%C3%A9"),
        ]:
            with self.subTest(text=text):
                self.assertUrl(text, expected)

    def test_errors(self) -> None:
        for text, message in [
            ("not a url", "relative URL without a base"),
            ("", "relative URL without a base"),
            ("/echo", "relative URL without a base"),
            ("http://", "empty host"),
            ("https://", "empty host"),
            ("http://user@/", "empty host"),
            ("http://127.0.0.1:99999/", "invalid port number"),
            ("http://127.0.0.1:65536/", "invalid port number"),
            ("http://127.0.0.1:1a/", "invalid port number"),
            ("http://[::1/", "invalid IPv6 address"),
            ("http://256.1.1.1/", "invalid IPv4 address"),
            ("http://a b/", "invalid international domain name"),
            ("http://exa%mple/", "invalid international domain name"),
            ("http://xn--a:1/", "invalid international domain name"),
        ]:
            with self.subTest(text=text):
                with self.assertRaises(UrlError) as caught:
                    parseUrl(text)
                self.assertEqual(str(caught.exception), message)

    def test_otherSchemes(self) -> None:
        for text, scheme in [
            ("ftp://x/", "ftp"),
            ("file:///etc/passwd", "file"),
            ("ws://x/", "ws"),
            ("mailto:x@y", "mailto"),
            ("data:text/plain,hi", "data"),
        ]:
            self.assertEqual(parseUrl(text), OtherScheme(scheme))

    def test_join(self) -> None:
        base = parseUrl("http://h:1/a/b?q#f")
        assert not isinstance(base, OtherScheme)
        for location, expected in [
            ("/echo", "http://h:1/echo"),
            ("c", "http://h:1/a/c"),
            ("../c", "http://h:1/c"),
            ("?z", "http://h:1/a/b?z"),
            ("//other/x", "http://other/x"),
            ("https://x:443/y", "https://x/y"),
        ]:
            joined = joinUrl(base, location)
            assert not isinstance(joined, OtherScheme)
            self.assertEqual(joined.display(), expected)


class PrepareTests(SynchronousTestCase):
    def message(self, p: HttpRequestParams, active: bool = False) -> str:
        with self.assertRaises(RpcError) as caught:
            prepare(p, lambda requestId: active)
        self.assertEqual(caught.exception.code, -32602)
        return caught.exception.message

    def test_messages(self) -> None:
        header = "http/request header name is invalid: invalid HTTP header name"
        for p, expected in [
            (P(url="not a url"), "http/request url is invalid: relative URL without a base"),
            (P(url="http://"), "http/request url is invalid: empty host"),
            (P(url="ftp://x/"), "http/request only supports http and https URLs, got ftp"),
            (P(url="file:///x"), "http/request only supports http and https URLs, got file"),
            (P(method="GE T"), "http/request method is invalid: invalid HTTP method"),
            (P(method=""), "http/request method is invalid: invalid HTTP method"),
            (P(method="GéT"), "http/request method is invalid: invalid HTTP method"),
            (P(headers=[("a b", "1")]), header),
            (P(headers=[("", "1")]), header),
            (P(headers=[(":", "1")]), header),
            (P(headers=[("Ä", "1")]), header),
            (
                P(headers=[("X-A", "a\nb")]),
                "http/request header value is invalid for X-A: failed to parse header value",
            ),
            (
                P(headers=[("X-A", "\x7f")]),
                "http/request header value is invalid for X-A: failed to parse header value",
            ),
            (P(bodyBase64="!"), "Invalid symbol 33, offset 0."),
            (P(bodyBase64="A"), "Invalid input length: 1"),
            (P(bodyBase64="AB"), "Invalid padding"),
            (P(bodyBase64="QUJ="), "Invalid last symbol 74, offset 2."),
        ]:
            with self.subTest(p=p):
                self.assertEqual(self.message(p), expected)

    def test_order(self) -> None:
        """base64, then the active stream id, method, URL, scheme, headers (as the binary)."""
        bad: dict[str, Any] = {
            "bodyBase64": "!",
            "method": "G T",
            "url": "ftp://x/",
            "headers": [("a b", "1")],
        }
        self.assertEqual(self.message(P(**bad), active=True), "Invalid symbol 33, offset 0.")
        del bad["bodyBase64"]
        self.assertEqual(
            self.message(P(streamResponse=True, **bad), active=True),
            "http/request streamResponse requestId `r` is already active",
        )
        # A buffered request does not care about active streams.
        self.assertEqual(
            self.message(P(**bad), active=True),
            "http/request method is invalid: invalid HTTP method",
        )
        del bad["method"]
        self.assertEqual(
            self.message(P(**bad)), "http/request only supports http and https URLs, got ftp"
        )
        self.assertEqual(
            self.message(P(url="nope", headers=[("a b", "1")])),
            "http/request url is invalid: relative URL without a base",
        )
        self.assertEqual(
            self.message(P(headers=[("X-A", "a\rb"), ("a b", "1")])),
            "http/request header value is invalid for X-A: failed to parse header value",
        )

    def test_acceptedOddities(self) -> None:
        prepared = prepare(
            P(method="get", headers=[("X-A", "é"), ("X-B", " padded "), ("X-C", "a\tb")]),
            lambda requestId: False,
        )
        self.assertEqual(prepared.method, "get")
        self.assertEqual(
            prepared.headers,
            (
                (b"x-a", "é".encode()),
                (b"x-b", b" padded "),
                (b"x-c", b"a\tb"),
                (b"accept", b"*/*"),
            ),
        )

    def test_userinfoBecomesBasicAuthFirst(self) -> None:
        prepared = prepare(P(url="http://u:p@h/x", headers=[("X", "1")]), lambda r: False)
        self.assertEqual(
            prepared.headers,
            ((b"authorization", b"Basic dTpw"), (b"x", b"1"), (b"accept", b"*/*")),
        )
        self.assertEqual(prepared.url.serialize(), "http://h/x")


class RedirectPolicyTests(SynchronousTestCase):
    def hop(self, method: str = "POST", url: str = "http://h:1/a?b#c") -> Hop:
        parsed = parseUrl(url)
        assert not isinstance(parsed, OtherScheme)
        headers = ((b"authorization", b"x"), (b"content-type", b"t"), (b"accept", b"*/*"))
        return Hop(method, parsed, headers, b"body")

    def test_seeOtherBecomesGet(self) -> None:
        for status in (301, 302, 303):
            following = nextHop(self.hop(), status, "/echo")
            assert following is not None
            self.assertEqual((following.method, following.body), ("GET", None))
            self.assertEqual(
                following.headers,
                ((b"authorization", b"x"), (b"accept", b"*/*"), (b"referer", b"http://h:1/a?b")),
            )

    def test_temporaryKeepsMethodAndBody(self) -> None:
        for status in (307, 308):
            following = nextHop(self.hop(), status, "/echo")
            assert following is not None
            self.assertEqual((following.method, following.body), ("POST", b"body"))
            self.assertIn((b"content-type", b"t"), following.headers)

    def test_crossOriginDropsCredentials(self) -> None:
        following = nextHop(self.hop("GET"), 302, "http://other:1/")
        assert following is not None
        self.assertNotIn(b"authorization", [n for n, _ in following.headers])
        following = nextHop(self.hop("GET"), 302, "http://h:2/")
        assert following is not None
        self.assertNotIn(b"authorization", [n for n, _ in following.headers])

    def test_noRefererFromHttpsToHttp(self) -> None:
        following = nextHop(self.hop("GET", "https://h/a"), 302, "http://h/b")
        assert following is not None
        self.assertNotIn(b"referer", [n for n, _ in following.headers])

    def test_notARedirect(self) -> None:
        self.assertIsNone(nextHop(self.hop(), 200, "/x"))
        self.assertIsNone(nextHop(self.hop(), 302, None))
        self.assertIsNone(nextHop(self.hop(), 304, "/x"))
        self.assertIsNone(nextHop(self.hop(), 302, "ftp://x/"))


# -- against a loopback server ------------------------------------------------------------------


class LoopbackTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.site, self.resource = makeSite(reactor)
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        self.hostLine = f"host: 127.0.0.1:{self.port.getHost().port}"
        self.events: list[Any] = []
        self.requester = HttpRequester(reactor, self.notify)
        self.addCleanup(self.cleanUp)

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.assertEqual(method, DELTA_METHOD)
        self.events.append(params)

    async def cleanUp(self) -> None:
        self.requester.cancelAll()
        self.resource.cancelCalls()
        if self.requester.pool is not None:
            await self.requester.pool.closeCachedConnections()
        for channel in list(self.site.connections):  # type: ignore[attr-defined]
            channel.transport.abortConnection()
        await serverIdle(self.site).addTimeout(10, reactor)
        await self.port.stopListening()

    def request(self, **kw: Any) -> Deferred[dict[str, Any]]:
        if "url" in kw and kw["url"].startswith("/"):
            kw["url"] = self.base + kw["url"]
        return self.requester.request(P(**kw)).addTimeout(30, reactor)

    async def stream(self, **kw: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run a streamed request; record the reply's place among the notifications."""
        requestId = kw.setdefault("requestId", "s")

        def replied(result: dict[str, Any]) -> dict[str, Any]:
            self.events.append("RESULT")
            return result

        result = await self.request(streamResponse=True, **kw).addCallback(replied)
        while not any(isinstance(e, dict) and e["done"] for e in self.events):
            await deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(self.events[0], "RESULT")
        deltas = [e for e in self.events[1:] if e["requestId"] == requestId]
        self.assertEqual([d["seq"] for d in deltas], list(range(1, len(deltas) + 1)))
        return result, deltas

    def decode(self, result: dict[str, Any]) -> Any:
        return json.loads(base64.b64decode(result["bodyBase64"]))

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

    async def _settled(self, d: Deferred[Any]) -> Deferred[Any]:
        outcome: list[Any] = []
        d.addBoth(outcome.append)
        while not outcome:
            await deferLater(reactor, 0.01, lambda: None)
        failed: Deferred[Any] = Deferred()
        failed.errback(outcome[0]) if isinstance(outcome[0], Failure) else failed.callback(
            outcome[0]
        )
        return failed

    # -- streaming --------------------------------------------------------------------------

    async def test_streamChunked(self) -> None:
        result, deltas = await self.stream(url="/chunked?count=3&size=8&delay=0.05")
        self.assertEqual((result["status"], result["bodyBase64"]), (200, ""))
        self.assertEqual(
            deltas,
            [
                {
                    "requestId": "s",
                    "seq": 1,
                    "deltaBase64": "QUFBQUFBQUE=",
                    "done": False,
                    "error": None,
                },
                {
                    "requestId": "s",
                    "seq": 2,
                    "deltaBase64": "QkJCQkJCQkI=",
                    "done": False,
                    "error": None,
                },
                {
                    "requestId": "s",
                    "seq": 3,
                    "deltaBase64": "Q0NDQ0NDQ0M=",
                    "done": False,
                    "error": None,
                },
                {"requestId": "s", "seq": 4, "deltaBase64": "", "done": True, "error": None},
            ],
        )
        self.assertEqual(self.requester.activeCount, 0)

    async def test_streamBodyInSameReadAsHeaders(self) -> None:
        """The reply still precedes the first delta when the body arrives with the headers."""
        result, deltas = await self.stream(url="/status/404")
        self.assertEqual(result["status"], 404)
        self.assertEqual(
            [(d["deltaBase64"], d["done"]) for d in deltas],
            [("c3RhdHVzIDQwNA==", False), ("", True)],
        )

    async def test_stream204(self) -> None:
        _, deltas = await self.stream(url="/status/204")
        self.assertEqual(
            deltas, [{"requestId": "s", "seq": 1, "deltaBase64": "", "done": True, "error": None}]
        )

    async def test_streamTimeout(self) -> None:
        _, deltas = await self.stream(url="/stall", timeoutMs=200)
        self.assertEqual(
            [(d["deltaBase64"], d["done"], d["error"]) for d in deltas],
            [("eHh4eHh4eHh4eA==", False, None), ("", True, "error decoding response body")],
        )

    async def test_streamReset(self) -> None:
        for path in ("/reset", "/closeearly"):
            self.events.clear()
            _, deltas = await self.stream(url=path, requestId=path)
            self.assertEqual(
                [(d["deltaBase64"], d["done"], d["error"]) for d in deltas],
                [("MDEyMzQ1Njc4OQ==", False, None), ("", True, "error decoding response body")],
            )

    async def test_duplicateActiveRequestId(self) -> None:
        first = await self.request(
            url="/chunked?count=2&size=1&delay=0.1", requestId="dup", streamResponse=True
        )
        self.assertEqual(first["status"], 200)
        d = self.request(url="/echo", requestId="dup", streamResponse=True)
        self.assertEqual(
            rpcMessage(await self._settled(d)),
            (-32602, "http/request streamResponse requestId `dup` is already active"),
        )
        # A buffered request with the same id just runs.
        buffered = await self.request(url="/echo", requestId="dup")
        self.assertEqual(buffered["status"], 200)
        while not any(e["done"] for e in self.events):
            await deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(len([e for e in self.events if e["done"]]), 1)
        # Once the stream ended the id can be used again.
        self.events.clear()
        _, deltas = await self.stream(url="/status/204", requestId="dup")
        self.assertEqual(len(deltas), 1)

    async def test_cancelAllStopsStreams(self) -> None:
        await self.request(
            url="/chunked?count=50&size=4&delay=0.02", requestId="c", streamResponse=True
        )
        while not self.events:
            await deferLater(reactor, 0.01, lambda: None)
        self.requester.cancelAll()
        seen = len(self.events)
        await serverIdle(self.site).addTimeout(10, reactor)
        await deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(len(self.events), seen)
        self.assertFalse(any(e["done"] for e in self.events))
        self.assertEqual(self.requester.activeCount, 0)

    async def test_pauseHoldsDeltas(self) -> None:
        """While paused, only bytes read before the pause (at most one socket read) come out."""
        self.requester.pauseProducing()
        await self.request(url="/bytes?n=1000000", requestId="p", streamResponse=True)
        await deferLater(reactor, 0.2, lambda: None)
        heldBack = sum(len(base64.b64decode(e["deltaBase64"])) for e in self.events)
        self.assertLessEqual(heldBack, 65536 * 2)
        self.assertFalse(any(e["done"] for e in self.events))
        self.requester.resumeProducing()
        while not any(e["done"] for e in self.events):
            await deferLater(reactor, 0.01, lambda: None)
        body = b"".join(base64.b64decode(e["deltaBase64"]) for e in self.events)
        self.assertTrue(body == patternBytes(1000000), "streamed body differs")

    async def test_streamFiftyMegabytesBoundedMemory(self) -> None:
        """50 MB streamed: never held whole; report the largest buffer and the RSS growth."""
        total = 50 * 1000 * 1000
        received = 0
        largest = 0
        done: Deferred[None] = Deferred()
        check = PATTERN * 2

        def notify(method: str, params: dict[str, Any]) -> None:
            nonlocal received, largest
            data = base64.b64decode(params["deltaBase64"])
            # Spot-check content: the pattern repeats every 64 KiB.
            offset = received % len(PATTERN)
            self.assertEqual(data[:1024], check[offset : offset + min(1024, len(data))])
            received += len(data)
            largest = max(largest, len(data))
            if params["done"]:
                done.callback(None)

        requester = HttpRequester(reactor, notify)
        self.addCleanup(requester.cancelAll)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        await requester.request(
            P(url=f"{self.base}/bytes?n={total}", requestId="big", streamResponse=True)
        )
        await done.addTimeout(60, reactor)
        growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        self.assertEqual(received, total)
        self.assertLessEqual(largest, requester.maxDeltaBytes + 65536)
        self.assertLess(growth, 40_000, f"peak RSS grew by {growth} KiB")
        print(f"\n50 MB stream: largest delta {largest} B, peak RSS growth {growth} KiB")
        if requester.pool is not None:
            await requester.pool.closeCachedConnections()


class CleanupTests(SynchronousTestCase):
    def test_cancelAllWithoutRequests(self) -> None:
        requester = HttpRequester(reactor, lambda m, p: None)
        requester.cancelAll()
        self.assertEqual(requester.activeCount, 0)


del DeferredList


class SequenceAndNullParamsTests(SynchronousTestCase):
    """serde's derived struct decoding of ``HttpRequestParams``, as probed on the binary."""

    def message(self, raw: object) -> str:
        with self.assertRaises(RpcError) as ctx:
            parse(HttpRequestParams, raw)
        self.assertEqual(ctx.exception.code, -32602)
        return ctx.exception.message

    def test_sequenceDefaults(self) -> None:
        """Fields with ``#[serde(default)]`` may be left off the end of the array form."""
        p = parse(HttpRequestParams, ["GET", "http://x/", [], None, None, "id"])
        self.assertEqual((p.requestId, p.streamResponse, p.headers), ("id", None, []))
        self.assertEqual(
            self.message(["GET", "http://x/", []]),
            "invalid length 5, expected struct HttpRequestParams with 7 elements",
        )
        self.assertEqual(
            self.message(["GET"]),
            "invalid length 1, expected struct HttpRequestParams with 7 elements",
        )
        self.assertEqual(
            self.message(["GET", "http://x/", [], None, None, "id", False, 1]),
            "invalid length 8, expected fewer elements in array",
        )

    def test_nullOnDefaultedNonOptions(self) -> None:
        base = {"method": "GET", "url": "http://x/", "requestId": "r"}
        self.assertEqual(
            self.message({**base, "headers": None}), "invalid type: null, expected a sequence"
        )
        self.assertEqual(
            self.message({**base, "streamResponse": None}),
            "invalid type: null, expected a boolean",
        )
        p = parse(HttpRequestParams, {**base, "bodyBase64": None, "timeoutMs": None})
        self.assertEqual((p.bodyBase64, p.timeoutMs), (None, None))
