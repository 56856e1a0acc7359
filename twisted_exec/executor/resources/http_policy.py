"""What http/request sends: header checks, the prepared request, redirects, result headers."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from twisted.logger import Logger
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from twisted_exec.compat.base64strict import decodeBase64Strict
from twisted_exec.compat.params import HttpRequestParams
from twisted_exec.compat.whatwg_url import OtherScheme, Url, UrlError, joinUrl, parseUrl
from twisted_exec.executor.resources.http_agent import _LowerCaseHeaders
from twisted_exec.wire.errors import invalidParams

log = Logger()


MAX_REDIRECTS = 10


_TOKEN = re.compile(r"\A[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


_SENSITIVE = (b"authorization", b"cookie", b"cookie2", b"proxy-authorization", b"www-authenticate")


_CONTENT_HEADERS = (b"transfer-encoding", b"content-encoding", b"content-type", b"content-length")


_FRAMING = (b"content-length", b"transfer-encoding")


@dataclass(frozen=True)
class Prepared:
    """A validated request: what goes on the wire for its first hop."""

    method: str
    url: Url
    headers: tuple[tuple[bytes, bytes], ...]  # (lower-case name, value), given order
    body: bytes | None
    requestId: str
    stream: bool
    timeoutMs: int | None
    followRedirects: bool = True

    def headerValues(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n == name]


def _validHeaderValue(value: bytes) -> bool:
    return all(b == 0x09 or (b >= 0x20 and b != 0x7F) for b in value)


def prepare(p: HttpRequestParams, activeStreams: Callable[[str], bool]) -> Prepared:
    """Validate ``p`` in the reference's order; raise its -32602 messages."""
    body = None
    if p.bodyBase64 is not None:
        try:
            body = decodeBase64Strict(p.bodyBase64)
        except ValueError as err:
            raise invalidParams(str(err)) from None
    stream = bool(p.streamResponse)
    if stream and activeStreams(p.requestId):
        raise invalidParams(
            f"http/request streamResponse requestId `{p.requestId}` is already active"
        )
    if not _TOKEN.match(p.method):
        raise invalidParams("http/request method is invalid: invalid HTTP method")
    try:
        url = parseUrl(p.url)
    except UrlError as err:
        raise invalidParams(f"http/request url is invalid: {err}") from None
    if isinstance(url, OtherScheme):
        raise invalidParams(f"http/request only supports http and https URLs, got {url.scheme}")
    headers: list[tuple[bytes, bytes]] = []
    if url.username or url.password is not None:
        from urllib.parse import unquote

        credentials = f"{unquote(url.username)}:{unquote(url.password or '')}".encode()
        headers.append((b"authorization", b"Basic " + base64.b64encode(credentials)))
        url = replace(url, username="", password=None)
    for header in p.headers or ():
        if not _TOKEN.match(header.name):
            raise invalidParams("http/request header name is invalid: invalid HTTP header name")
        value = header.value.encode("utf-8", "surrogatepass")
        if not _validHeaderValue(value):
            raise invalidParams(
                f"http/request header value is invalid for {header.name}: "
                "failed to parse header value"
            )
        headers.append((header.name.lower().encode("ascii"), value))
    names = {name for name, _ in headers}
    if b"accept" not in names:
        headers.append((b"accept", b"*/*"))
    return Prepared(
        p.method, url, tuple(headers), body, p.requestId, stream, p.timeoutMs, p.followRedirects
    )


@dataclass(frozen=True)
class Hop:
    """One request of an exchange: the first, or one that follows a redirect."""

    method: str
    url: Url
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes | None

    def wireHeaders(self) -> Headers:
        headers = _LowerCaseHeaders()
        for name, value in self.headers:
            if name not in _FRAMING:
                headers.addRawHeader(name, value)
        if not headers.hasHeader(b"host"):
            headers.addRawHeader(b"host", self.url.hostHeader.encode("ascii"))
        return headers


def nextHop(hop: Hop, status: int, location: str | None) -> Hop | None:
    """reqwest's default redirect policy: the next request, or None to return this response."""
    if status not in (301, 302, 303, 307, 308) or location is None:
        return None
    try:
        target = joinUrl(hop.url, location)
    except UrlError:
        return None
    if isinstance(target, OtherScheme):
        return None
    method, body, headers = hop.method, hop.body, list(hop.headers)
    if status in (301, 302, 303):
        body = None
        headers = [(n, v) for n, v in headers if n not in _CONTENT_HEADERS]
        if method not in ("GET", "HEAD"):
            method = "GET"
    if (target.host, target.effectivePort) != (hop.url.host, hop.url.effectivePort):
        headers = [(n, v) for n, v in headers if n not in _SENSITIVE]
    headers = [(n, v) for n, v in headers if n != b"referer"]
    if not (hop.url.scheme == "https" and target.scheme == "http"):
        referer = hop.url.serialize(credentials=False, fragment=False)
        headers.append((b"referer", referer.encode("ascii")))
    if target.username or target.password is not None:
        target = replace(target, username="", password=None)
    return Hop(method, target, tuple(headers), body)


def resultHeaders(response: IResponse) -> list[dict[str, str]]:
    """Every response header, lower-case, in server order grouped by name (a header map's order).

    Twisted keeps connection headers (``content-length``, ``transfer-encoding``...) out of
    ``response.headers``; our connection protocol records the full list on the request.
    """
    request = response.request
    request = getattr(request, "original", request)  # Twisted hands out an IClientRequest proxy
    raw: list[tuple[bytes, bytes]] | None = getattr(request, "_rawResponseHeaders", None)
    if raw is None:
        raw = [
            (name.lower(), value)
            for name, values in response.headers.getAllRawHeaders()
            for value in values
        ]
    grouped: dict[bytes, list[bytes]] = {}
    for name, value in raw:
        grouped.setdefault(name.lower(), []).append(value)
    return [
        {"name": name.decode("latin-1"), "value": value.decode("utf-8", "replace")}
        for name, values in grouped.items()
        for value in values
    ]
