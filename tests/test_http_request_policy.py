"""http/request, sans IO: URL parsing and joining (WHATWG), request preparation, the redirect
policy, and the params' serde decoding.

The expected strings are the reference's, probed on the Codex CLI 0.131.0 binary.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.support.httprequests import P
from twisted_exec.compat.params import HttpRequestParams, parse
from twisted_exec.compat.whatwg_url import OtherScheme, UrlError, joinUrl, parseUrl
from twisted_exec.executor.resources.http_policy import Hop, nextHop, prepare
from twisted_exec.wire.errors import RpcError


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
