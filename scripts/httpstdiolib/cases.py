"""The cases both executors are driven with: ``http/request`` params, and raw stdio lines.

``BASE`` and ``PORT`` in a case stand for the loopback test server
(``twisted_exec/testing/httpsite.py``'s ``makeSite``). ``KNOWN`` lists the differences we accept,
each with its reason.
"""

from __future__ import annotations

import json
from typing import Any

GET = {"method": "GET", "url": "BASE/echo", "requestId": "r"}


def headers(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    """``http/request`` headers from ``(name, value)`` pairs, in order."""
    return [{"name": name, "value": value} for name, value in pairs]


def case(name: str, wait: float = 10.0, **params: Any) -> dict[str, Any]:
    merged = dict(GET)
    merged.update(params)
    return {"name": name, "params": merged, "wait": wait}


CASES: list[dict[str, Any]] = [
    case("get"),
    case(
        "post-binary-headers",
        method="POST",
        bodyBase64="AAEC/w==",
        headers=headers(("X-A", "1"), ("x-a", "2"), ("Content-Type", "x/y"), ("X-Empty", "")),
    ),
    case("post-without-body", method="POST"),
    case("get-with-body", bodyBase64="aGk="),
    case("response-headers", url="BASE/rawheaders"),
    case(
        "redirect-302-post",
        method="POST",
        url="BASE/redirect?to=/echo",
        bodyBase64="aGk=",
        headers=headers(("Authorization", "x")),
    ),
    case(
        "redirect-307-post", method="POST", url="BASE/redirect?to=/echo&code=307", bodyBase64="aGk="
    ),
    case(
        "redirect-cross-host",
        url="BASE/redirect?to=http://localhost:PORT/echo",
        headers=headers(("Authorization", "x"), ("Cookie", "c")),
    ),
    case("redirect-chain", url="BASE/redirect?to=/redirect"),
    case("redirect-loop", url="BASE/loop"),
    case("status-204", url="BASE/status/204"),
    case("status-404", url="BASE/status/404"),
    case("status-500", url="BASE/status/500"),
    case("gzip-untouched", url="BASE/gzip"),
    case("head", method="HEAD"),
    case("userinfo", url="http://u:p@127.0.0.1:PORT/echo#frag"),
    case(
        "given-host-ua-accept",
        url="BASE/echo?a=b c",
        headers=headers(("Host", "example.com"), ("User-Agent", "ua"), ("Accept", "text/plain")),
    ),
    case("method-lowercase", method="get"),
    case("method-custom", method="CUSTOM"),
    case("header-utf8-value", headers=headers(("X-A", "é"))),
    case("url-upper-scheme", url="HTTP://127.0.0.1:PORT/echo"),
    case("url-backslash", url="http://127.0.0.1:PORT\\echo"),
    case("url-non-ascii-path", url="BASE/é?q=é"),
    # streamed
    case("stream-chunked", url="BASE/chunked?count=3&size=8&delay=0.15", streamResponse=True),
    case(
        "stream-first-now",
        url="BASE/chunked?count=2&size=8&delay=0.1&first=now",
        streamResponse=True,
    ),
    case("stream-small", url="BASE/status/404", streamResponse=True),
    case("stream-204", url="BASE/status/204", streamResponse=True),
    case("stream-reset", url="BASE/reset?after=0.2", streamResponse=True),
    case("stream-closeearly", url="BASE/closeearly?after=0.2", streamResponse=True),
    case("stream-timeout", url="BASE/stall", streamResponse=True, timeoutMs=300),
    case("stream-big", url="BASE/bytes?n=5242880", streamResponse=True),
    # errors
    case("buffered-reset", url="BASE/reset?after=0.2"),
    case("buffered-closeearly", url="BASE/closeearly?after=0.2"),
    case("timeout-body", url="BASE/stall", timeoutMs=300),
    case("timeout-headers", url="BASE/slow?delay=1", timeoutMs=300),
    case("timeout-headers-stream", url="BASE/slow?delay=1", timeoutMs=300, streamResponse=True),
    case("timeout-zero", timeoutMs=0),
    case("refused", url="http://127.0.0.1:1/x?q#f"),
    case("refused-stream", url="http://127.0.0.1:1/", streamResponse=True),
    case("dns-failure", url="http://nonexistent.invalid/"),
    case("https-to-plain-port", url="https://127.0.0.1:PORT/echo", timeoutMs=3000),
]

for index, url in enumerate(
    [
        "not a url",
        "",
        "/echo",
        "http://",
        "http://user@/",
        "http://127.0.0.1:99999/",
        "http://127.0.0.1:1a/",
        "http://[::1/",
        "http://256.1.1.1/",
        "http://a b/",
        "http://xn--a/",
        "ftp://x/",
        "file:///etc/passwd",
        "ws://x/",
        "mailto:x@y",
        "http://127.0.0.1:1",
        "http://127.0.0.1:80/",
        "HTTP://Local.Host:1/A/../b/./c",
        'http://127.0.0.1:1/a b<>"{}|`^',
        "http://0x7f.1:1/",
        "http://[::1]:1/",
        "http://127.1:1/",
        "http://ÉXAMPLE.invalid/",
    ]
):
    CASES.append(case(f"url-{index}:{url}", url=url, wait=5))
for index, method in enumerate(["GE T", "", "GéT"]):
    CASES.append(case(f"method-{index}:{method}", method=method))
for index, header in enumerate(
    headers(
        ("a b", "1"),
        ("", "1"),
        (":", "1"),
        ("Ä", "1"),
        ("X-A", "a\nb"),
        ("X-A", "a\u0000b"),
        ("X-A", "\u007f"),
    )
):
    CASES.append(case(f"header-{index}:{json.dumps(header)}", headers=[header]))
for body in ["!", "A", "AB", "AB==", "QUJ=", "AAAAA", "ab cd", "YWJj\n"]:
    CASES.append(case(f"base64:{body!r}", method="POST", bodyBase64=body))
CASES += [
    case("order:base64-first", bodyBase64="!", method="G T", url="ftp://x/"),
    case("order:method-before-url", method="G T", url="ftp://x/"),
    case("order:url-before-header", url="nope", headers=headers(("a b", "1"))),
    {"name": "params-null", "params": None, "wait": 5},
    {"name": "params-array-6", "params": ["GET", "BASE/echo", [], None, None, "id"], "wait": 5},
    {"name": "params-array-3", "params": ["GET", "BASE/echo", []], "wait": 5},
    {"name": "params-array-8", "params": ["GET", "BASE/echo", [], None, None, "id", False, 1]},
    {"name": "missing-requestId", "params": {"method": "GET", "url": "BASE/echo"}},
    case("headers-null", headers=None),
    case("stream-null", streamResponse=None),
    case("body-null-timeout-null", bodyBase64=None, timeoutMs=None),
    case("timeout-negative", timeoutMs=-1),
    case("headers-object", headers={"a": "b"}),
    case("header-missing-value", headers=[{"name": "X"}]),
    case("header-as-array", headers=[["X-Z", "1"]]),
]

# Differences we know and accept (see the report in the module docstring of http_request.py).
KNOWN: dict[str, str] = {
    "post-binary-headers": "Twisted writes Content-Length first (reference: last)",
    "post-without-body": "Twisted sends Content-Length: 0 on a body-less POST (reference: none)",
    "get-with-body": "Content-Length position",
    "redirect-307-post": "Content-Length position",
    "redirect-302-post": "Content-Length position (first hop)",
    "timeout-zero": "reference still sends the request, we do not (both answer the same error)",
    "base64:'AB=='": "nothing (kept to catch regressions)",
}


STDIO_CASES: list[tuple[str, list[bytes]]] = [
    ("blank-lines", [b"", b"   ", b"\t", b"\r"]),
    ("crlf", [b'{"id":1,"method":"initialize","params":{"clientName":"x"}}\r']),
    ("not-json", [b"hello"]),
    ("truncated", [b'{"id":1,"method":"in']),
    ("json-string", [b'"str"']),
    ("id-only", [b'{"id":73}']),
    ("nul-byte", [b"\x00"]),
    ("leading-space", [b'   {"id":2,"method":"initialize","params":{"clientName":"x"}}']),
    ("pretty-printed", [b'{"id":3,', b'"method":"initialize"}']),
]
