"""``http/request``: the executor performs an HTTP request on the harness's behalf.

Behaviour and wire text are the reference's (Codex CLI 0.131.0, reqwest underneath), probed on the
binary; see docs and ``scripts/conformance_http_stdio.py``:

- validation order: ``bodyBase64``, the active-stream check, method, URL (parse, then scheme),
  headers (name, then value, one header at a time), each a -32602 with the reference's text;
- sent: the given headers (names lower-cased, duplicates kept), then ``accept: */*`` and ``host``
  unless given, ``authorization: Basic`` first when the URL has user info; no user agent;
- redirects are followed (at most 10) with a ``referer``; 301/302/303 turn into a body-less GET,
  307/308 repeat the request; credentials and cookies are dropped when the host or port changes;
- the result is ``{status, headers: [{name, value}], bodyBase64}`` with every response header
  (lower-case names, server order, grouped by name as a header map iterates);
- ``timeoutMs`` covers the whole exchange, body included;
- ``streamResponse`` answers with an empty body at once, then sends ordered
  ``http/request/bodyDelta`` notifications ending with ``done: true``.

Streaming order: the result :class:`Deferred` fires first (the processor sends the reply from its
callback, synchronously), and the body protocol is connected only from a ``callLater(0)`` scheduled
after that, so no delta can precede the reply. Twisted holds body bytes that arrive meanwhile.

Memory: a streamed body is never held whole. Bytes are coalesced up to ``maxDeltaBytes`` per
delta and flushed on the next reactor turn; :meth:`HttpRequester.pauseProducing` pauses every
active stream's TCP transport, so a transport with a slow reader can apply backpressure.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import idna
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred, succeed
from twisted.internet.interfaces import IConsumer, IDelayedCall, IPushProducer
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web._newclient import HTTP11ClientProtocol
from twisted.web.client import (
    Agent,
    HTTPConnectionPool,
    ResponseDone,
    _HTTP11ClientFactory,
)
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer, IResponse
from zope.interface import implementer

from .base64strict import decodeBase64Strict, encodeBase64
from .errors import RpcError, internalError, invalidParams
from .params import HttpRequestParams

log = Logger()

Notify = Callable[[str, dict[str, Any]], None]

MAX_REDIRECTS = 10
DEFAULT_MAX_DELTA_BYTES = 512 * 1024
BODY_ERROR = "error decoding response body"
DELTA_METHOD = "http/request/bodyDelta"

_SPECIAL_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}
_TOKEN = re.compile(r"\A[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_SCHEME = re.compile(r"\A([A-Za-z][A-Za-z0-9+\-.]*):")
_SENSITIVE = (b"authorization", b"cookie", b"cookie2", b"proxy-authorization", b"www-authenticate")
_CONTENT_HEADERS = (b"transfer-encoding", b"content-encoding", b"content-type", b"content-length")
# Twisted frames the body itself; a given content-length would be sent twice.
_FRAMING = (b"content-length", b"transfer-encoding")


# -- URLs: the part of the WHATWG URL standard (Rust's ``url`` crate) a request needs -------------


class UrlError(ValueError):
    """The ``url`` crate's ``ParseError`` text, e.g. ``empty host``."""


@dataclass(frozen=True)
class Url:
    """A parsed absolute URL with a special scheme, normalised as the ``url`` crate does."""

    scheme: str
    host: str  # ASCII; IPv6 in brackets
    port: int | None  # None: the scheme's default
    path: str  # percent-encoded, starts with "/"
    query: str | None
    fragment: str | None
    username: str = ""
    password: str | None = None

    @property
    def effectivePort(self) -> int:
        return self.port if self.port is not None else _SPECIAL_PORTS[self.scheme]

    @property
    def hostHeader(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def target(self) -> str:
        """The request target: path and query."""
        return self.path + ("" if self.query is None else "?" + self.query)

    def serialize(self, *, credentials: bool = True, fragment: bool = True) -> str:
        userinfo = ""
        if credentials and (self.username or self.password is not None):
            userinfo = self.username
            if self.password is not None:
                userinfo += ":" + self.password
            userinfo += "@"
        text = f"{self.scheme}://{userinfo}{self.hostHeader}{self.target}"
        if fragment and self.fragment is not None:
            text += "#" + self.fragment
        return text

    def display(self) -> str:
        """As reqwest shows a URL in an error: without credentials."""
        return self.serialize(credentials=False)

    def agentUri(self) -> bytes:
        return f"{self.scheme}://{self.host}:{self.effectivePort}{self.target}".encode("ascii")


@dataclass(frozen=True)
class OtherScheme:
    """A URL that parsed but whose scheme we do not serve (``ftp``, ``file``, ``mailto``...)."""

    scheme: str


def _percentEncode(text: str, unsafe: str) -> str:
    out = []
    for char in text:
        if char == "%" or (0x20 < ord(char) < 0x7F and char not in unsafe):
            out.append(char)
        else:
            out.append(quote(char, safe="", encoding="utf-8", errors="surrogatepass"))
    return "".join(out)


_PATH_UNSAFE = ' "#<>?`{}'
_QUERY_UNSAFE = " \"#<>'"
_FRAGMENT_UNSAFE = ' "<>`'
_USERINFO_UNSAFE = ' "#<>?`{}/:;=@[\\]^|'


def _parseIPv4Number(part: str) -> int | None:
    if not part:
        return None
    base = 10
    if part[:2] in ("0x", "0X"):
        part, base = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        part, base = part[1:], 8
    if not part:
        return 0
    try:
        return int(part, base)
    except ValueError:
        return None


def _endsInNumber(host: str) -> bool:
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]
    last = parts[-1]
    if last and all(c in "0123456789" for c in last):
        return True
    return _parseIPv4Number(last) is not None and last[:2] in ("0x", "0X")


def _parseIPv4(host: str) -> str:
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]
    numbers = [_parseIPv4Number(p) for p in parts]
    if len(parts) > 4 or any(n is None for n in numbers):
        raise UrlError("invalid IPv4 address")
    values = [n for n in numbers if n is not None]
    if any(v > 255 for v in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        raise UrlError("invalid IPv4 address")
    address = values[-1]
    for index, value in enumerate(values[:-1]):
        address += value * 256 ** (3 - index)
    return str(ipaddress.IPv4Address(address))


_FORBIDDEN_HOST = set(" #%/:<>?@[\\]^|\x7f") | {chr(c) for c in range(0x20)}


def _validPunycodeLabel(encoded: str) -> bool:
    """An ``xn--`` label must decode to a valid non-ASCII label, as the ``idna`` crate checks."""
    try:
        decoded = encoded.encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return False
    if not decoded or decoded.isascii():
        return False
    try:
        idna.encode(decoded, uts46=True, std3_rules=False, transitional=False)
    except idna.IDNAError:
        return False
    return True


def _parseHost(raw: str) -> str:
    if raw.startswith("["):
        if not raw.endswith("]"):
            raise UrlError("invalid IPv6 address")
        try:
            return f"[{ipaddress.IPv6Address(raw[1:-1]).compressed}]"
        except ValueError:
            raise UrlError("invalid IPv6 address") from None
    from urllib.parse import unquote

    host = unquote(raw, errors="replace")
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True, std3_rules=False, transitional=False).decode()
        except idna.IDNAError:
            raise UrlError("invalid international domain name") from None
    host = host.lower()
    if not host:
        raise UrlError("empty host")
    if any(c in _FORBIDDEN_HOST for c in host):
        raise UrlError("invalid international domain name")
    for label in host.split("."):
        if label.startswith("xn--") and not _validPunycodeLabel(label[4:]):
            raise UrlError("invalid international domain name")
    if _endsInNumber(host):
        return _parseIPv4(host)
    return host


def _normalizePath(raw: str) -> str:
    segments = raw.replace("\\", "/").split("/")[1:] if raw else [""]
    out: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        lowered = segment.lower()
        if lowered in ("..", ".%2e", "%2e.", "%2e%2e"):
            if out:
                out.pop()
            if last:
                out.append("")
        elif lowered in (".", "%2e"):
            if last:
                out.append("")
        else:
            out.append(_percentEncode(segment, _PATH_UNSAFE))
    return "/" + "/".join(out)


def parseUrl(text: str) -> Url | OtherScheme:
    """Parse an absolute URL the way the ``url`` crate does, for the schemes a request can use."""
    text = text.strip("".join(chr(c) for c in range(0x21)))
    text = re.sub(r"[\t\n\r]", "", text)
    match = _SCHEME.match(text)
    if match is None:
        raise UrlError("relative URL without a base")
    scheme = match.group(1).lower()
    rest = text[match.end() :]
    if scheme not in _SPECIAL_PORTS:
        return OtherScheme(scheme)
    rest = rest.lstrip("/\\")
    end = len(rest)
    for stop in "/\\?#":
        position = rest.find(stop)
        if position != -1:
            end = min(end, position)
    authority, rest = rest[:end], rest[end:]
    username, password = "", None
    if "@" in authority:
        userinfo, authority = authority.rsplit("@", 1)
        user, sep, secret = userinfo.partition(":")
        username = _percentEncode(user, _USERINFO_UNSAFE)
        password = _percentEncode(secret, _USERINFO_UNSAFE) if sep else None
        if password == "":
            password = None
    if authority.startswith("["):
        close = authority.find("]")
        hostText, portText = (
            (authority, "") if close == -1 else (authority[: close + 1], authority[close + 1 :])
        )
        if portText and not portText.startswith(":"):
            raise UrlError("invalid IPv6 address")
        portText = portText[1:]
    else:
        hostText, _, portText = authority.partition(":")
    if not hostText:
        raise UrlError("empty host")
    port: int | None = None
    if portText:
        if not portText.isdigit() or not portText.isascii() or int(portText) > 65535:
            raise UrlError("invalid port number")
        port = int(portText)
        if port == _SPECIAL_PORTS[scheme]:
            port = None
    host = _parseHost(hostText)
    if scheme not in ("http", "https"):
        return OtherScheme(scheme)
    fragment = None
    if "#" in rest:
        rest, fragment = rest.split("#", 1)
        fragment = _percentEncode(fragment, _FRAGMENT_UNSAFE)
    query = None
    if "?" in rest:
        rest, query = rest.split("?", 1)
        query = _percentEncode(query, _QUERY_UNSAFE)
    return Url(scheme, host, port, _normalizePath(rest), query, fragment, username, password)


def joinUrl(base: Url, reference: str) -> Url | OtherScheme:
    """Resolve a ``Location`` against the URL it came from."""
    stripped = reference.strip().replace("\\", "/")
    if _SCHEME.match(stripped):
        return parseUrl(stripped)
    if stripped.startswith("//"):
        return parseUrl(f"{base.scheme}:{stripped}")
    origin = f"{base.scheme}://{base.hostHeader}"
    if stripped.startswith("/"):
        return parseUrl(origin + stripped)
    if stripped.startswith("?"):
        return parseUrl(origin + base.path + stripped)
    if stripped.startswith("#") or not stripped:
        return parseUrl(base.serialize(fragment=False) + stripped)
    directory = base.path.rsplit("/", 1)[0]
    return parseUrl(f"{origin}{directory}/{stripped}")


# -- request preparation (sans IO) ---------------------------------------------------------------


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
    return Prepared(p.method, url, tuple(headers), body, p.requestId, stream, p.timeoutMs)


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


# -- Twisted plumbing --------------------------------------------------------------------------


class _LowerCaseHeaders(Headers):
    """Writes header names as given (lower-case), as the reference does, not Http-Header-Case."""

    __slots__ = ()

    def getAllRawHeaders(self) -> Iterator[tuple[bytes, Sequence[bytes]]]:
        for name, values in super().getAllRawHeaders():
            yield name.lower(), values


class _RecordingClientProtocol(HTTP11ClientProtocol):  # type: ignore[misc]
    """Records each response's header lines, connection headers included, on its request."""

    def request(self, request: Any) -> Deferred[Any]:
        before = getattr(self, "_parser", None)
        result: Deferred[Any] = super().request(request)
        parser = getattr(self, "_parser", None)
        if parser is not None and parser is not before:
            recorded: list[tuple[bytes, bytes]] = []
            headerReceived = parser.headerReceived
            statusReceived = parser.statusReceived

            def recordHeader(name: bytes, value: bytes) -> None:
                recorded.append((name, value))
                headerReceived(name, value)

            def recordStatus(status: bytes) -> None:
                recorded.clear()  # a 1xx response's headers are not the final ones
                statusReceived(status)

            parser.headerReceived = recordHeader
            parser.statusReceived = recordStatus
            request._rawResponseHeaders = recorded
        return result


class _RecordingClientFactory(_HTTP11ClientFactory):  # type: ignore[misc]
    noisy = False

    def buildProtocol(self, addr: Any) -> HTTP11ClientProtocol:
        return _RecordingClientProtocol(self._quiescentCallback)


class _RecordingPool(HTTPConnectionPool):
    _factory = _RecordingClientFactory


class _NoProducer:
    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


def _producer(protocol: Protocol | None) -> Any:
    """The push producer behind a response body protocol (Twisted's ``TransportProxyProducer``)."""
    transport = None if protocol is None else protocol.transport
    return transport if transport is not None else _NoProducer()


class _Discard(Protocol):
    """Reads and drops a redirect's body so its connection can be reused."""

    def __init__(self) -> None:
        self.done: Deferred[None] = Deferred()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.done.callback(None)


class _BodyCollector(Protocol):
    """Buffered mode: keeps the whole body, like the reference, up to an optional limit."""

    def __init__(self, limit: int | None) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.overLimit = False
        self.done: Deferred[bytes] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        if self.overLimit:
            return
        self.size += len(data)
        if self.limit is not None and self.size > self.limit:
            self.overLimit = True
            self.chunks.clear()
            _producer(self).stopProducing()
            return
        self.chunks.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.overLimit:
            self.done.errback(
                internalError(
                    "failed to read http/request response body: response body exceeds "
                    f"maxBufferedBody ({self.limit} bytes)"
                )
            )
        elif reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.chunks))
        else:
            self.done.errback(
                internalError(f"failed to read http/request response body: {BODY_ERROR}")
            )
        self.chunks = []


class _BodyStreamer(Protocol):
    """Streamed mode: coalesces body bytes into ``bodyDelta`` notifications, in order."""

    def __init__(self, exchange: _Exchange, maxDelta: int) -> None:
        self.exchange = exchange
        self.maxDelta = maxDelta
        self.pending: list[bytes] = []
        self.pendingSize = 0
        self.flushCall: IDelayedCall | None = None
        self.finished = False
        self.maxHeld = 0

    def dataReceived(self, data: bytes) -> None:
        if self.finished:
            return
        self.pending.append(data)
        self.pendingSize += len(data)
        self.maxHeld = max(self.maxHeld, self.pendingSize)
        if self.pendingSize >= self.maxDelta:
            self.flush()
        elif self.flushCall is None:
            self.flushCall = self.exchange.reactor.callLater(0, self.flush)

    def flush(self) -> None:
        if self.flushCall is not None and self.flushCall.active():
            self.flushCall.cancel()
        self.flushCall = None
        if not self.pending:
            return
        data = b"".join(self.pending)
        self.pending, self.pendingSize = [], 0
        self.exchange.sendDelta(data, done=False, error=None)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.finished:
            return
        self.flush()
        self.finished = True
        error = None if reason.check(ResponseDone, PotentialDataLoss) else BODY_ERROR
        if self.exchange.timedOut:
            error = BODY_ERROR
        self.exchange.finishStream(error)

    def abort(self) -> None:
        """Stop for good without notifying (the session went away)."""
        self.finished = True
        self.pending = []
        if self.flushCall is not None and self.flushCall.active():
            self.flushCall.cancel()
        _producer(self).stopProducing()


class _Exchange:
    """One ``http/request``: the hops, the deadline, then the body (buffered or streamed)."""

    def __init__(self, requester: HttpRequester, prepared: Prepared) -> None:
        self.requester = requester
        self.reactor = requester.reactor
        self.prepared = prepared
        self.hop = Hop(prepared.method, prepared.url, prepared.headers, prepared.body)
        self.timer: IDelayedCall | None = None
        self.timedOut = False
        self.inFlight: Deferred[Any] | None = None
        self.bodyProtocol: Protocol | None = None
        self.seq = 0
        self.closed = False

    # -- the header phase ---------------------------------------------------------------------

    def start(self) -> Deferred[dict[str, Any]]:
        if self.prepared.timeoutMs is not None:
            self.timer = self.reactor.callLater(self.prepared.timeoutMs / 1000.0, self._timeout)
        return ensureDeferred(self._run())

    def _timeout(self) -> None:
        self.timer = None
        self.timedOut = True
        if self.inFlight is not None:
            self.inFlight.cancel()
        _producer(self.bodyProtocol).stopProducing()

    def _stopTimer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    async def _send(self, hop: Hop) -> IResponse:
        if self.timedOut:
            raise CancelledError()
        producer = None if hop.body is None else _BytesProducer(hop.body)
        self.inFlight = self.requester.agent.request(
            hop.method.encode("ascii"), hop.url.agentUri(), hop.wireHeaders(), producer
        )
        try:
            response: IResponse = await self.inFlight
        finally:
            self.inFlight = None
        return response

    async def _run(self) -> dict[str, Any]:
        try:
            response = await self._fetch()
        except Exception:
            self.close()
            raise
        result = {"status": response.code, "headers": resultHeaders(response)}
        if self.prepared.stream:
            result["bodyBase64"] = ""
            # The reply must leave before the first delta: connect the body protocol only once
            # the result Deferred (returned to the processor) has fired and sent it.
            self.reactor.callLater(0, self._startStreaming, response)
            return result
        collector = _BodyCollector(self.requester.maxBufferedBody)
        self.bodyProtocol = collector
        response.deliverBody(collector)
        try:
            body = await collector.done
        finally:
            self.close()
        if self.timedOut:
            raise internalError(f"failed to read http/request response body: {BODY_ERROR}")
        result["bodyBase64"] = encodeBase64(body)
        return result

    async def _fetch(self) -> IResponse:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = await self._send(self.hop)
            except Exception as err:
                if isinstance(err, RpcError):
                    raise
                log.debug(
                    "http/request to {url} failed: {err!r}", url=self.hop.url.display(), err=err
                )
                raise internalError(
                    f"http/request failed: error sending request for url ({self.hop.url.display()})"
                ) from None
            locations = response.headers.getRawHeaders(b"location") or []
            location = locations[0].decode("utf-8", "replace") if locations else None
            following = nextHop(self.hop, response.code, location)
            if following is None:
                return response
            discard = _Discard()
            self.bodyProtocol = discard
            response.deliverBody(discard)
            await discard.done
            self.bodyProtocol = None
            self.hop = following
        raise internalError(
            f"http/request failed: error following redirect for url ({self.hop.url.display()})"
        )

    # -- streaming ----------------------------------------------------------------------------

    def _startStreaming(self, response: IResponse) -> None:
        if self.closed:
            # The session ended before the body started: drop the connection.
            discard = _Discard()
            response.deliverBody(discard)
            _producer(discard).stopProducing()
            return
        streamer = _BodyStreamer(self, self.requester.maxDeltaBytes)
        self.bodyProtocol = streamer
        response.deliverBody(streamer)
        if self.timedOut:
            _producer(streamer).stopProducing()
        elif self.requester.paused:
            _producer(streamer).pauseProducing()

    def sendDelta(self, data: bytes, *, done: bool, error: str | None) -> None:
        if self.closed and not done:
            return
        self.seq += 1
        self.requester.notify(
            DELTA_METHOD,
            {
                "requestId": self.prepared.requestId,
                "seq": self.seq,
                "deltaBase64": encodeBase64(data),
                "done": done,
                "error": error,
            },
        )

    def finishStream(self, error: str | None) -> None:
        if self.closed:
            return
        self.sendDelta(b"", done=True, error=error)
        self.close()

    # -- control ------------------------------------------------------------------------------

    def pause(self) -> None:
        _producer(self.bodyProtocol).pauseProducing()

    def resume(self) -> None:
        _producer(self.bodyProtocol).resumeProducing()

    def close(self) -> None:
        """The exchange is over: release the deadline and the request id."""
        if self.closed:
            return
        self.closed = True
        self._stopTimer()
        self.requester._forget(self)

    def cancel(self) -> None:
        """The session ended: abort without another notification."""
        inFlight = self.inFlight
        protocol = self.bodyProtocol
        self.close()
        if inFlight is not None:
            inFlight.cancel()
        if isinstance(protocol, _BodyStreamer):
            protocol.abort()
        else:
            _producer(protocol).stopProducing()


@implementer(IBodyProducer)
class _BytesProducer:
    """The whole request body in one write: it is in memory already (decoded from base64)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.length = len(data)

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        consumer.write(self._data)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


@implementer(IPushProducer)
class HttpRequester:
    """The ``http/request`` handler of one session.

    ``notify(method, params)`` sends the session's notifications. ``agent`` defaults to an
    :class:`Agent` with a persistent connection pool of its own. ``maxBufferedBody`` caps a
    buffered (not streamed) body; None keeps the reference's behaviour (no limit).
    """

    def __init__(
        self,
        reactor: Any,
        notify: Notify,
        agent: IAgent | None = None,
        *,
        maxBufferedBody: int | None = None,
        maxDeltaBytes: int = DEFAULT_MAX_DELTA_BYTES,
    ) -> None:
        self.reactor = reactor
        self.notify = notify
        self.pool: HTTPConnectionPool | None = None
        if agent is None:
            self.pool = _RecordingPool(reactor, persistent=True)
            agent = Agent(reactor, pool=self.pool)
        self.agent = agent
        self.maxBufferedBody = maxBufferedBody
        self.maxDeltaBytes = maxDeltaBytes
        self.paused = False
        self._exchanges: set[_Exchange] = set()
        self._streams: dict[str, _Exchange] = {}

    def request(self, p: HttpRequestParams) -> Deferred[dict[str, Any]]:
        try:
            prepared = prepare(p, lambda requestId: requestId in self._streams)
        except RpcError as err:
            return _failed(err)
        exchange = _Exchange(self, prepared)
        self._exchanges.add(exchange)
        if prepared.stream:
            self._streams[prepared.requestId] = exchange
        if prepared.timeoutMs == 0:
            exchange.close()
            return _failed(
                internalError(
                    f"http/request failed: error sending request for url ({prepared.url.display()})"
                )
            )
        return exchange.start()

    def _forget(self, exchange: _Exchange) -> None:
        self._exchanges.discard(exchange)
        if self._streams.get(exchange.prepared.requestId) is exchange:
            del self._streams[exchange.prepared.requestId]

    @property
    def activeCount(self) -> int:
        return len(self._exchanges)

    def cancelAll(self) -> None:
        """The session ended: abort every request and stream; no more notifications."""
        for exchange in list(self._exchanges):
            exchange.cancel()
        if self.pool is not None:
            self.pool.closeCachedConnections()

    # -- IPushProducer: a transport with a slow reader pauses every active stream ---------------

    def pauseProducing(self) -> None:
        self.paused = True
        for exchange in list(self._exchanges):
            exchange.pause()

    def resumeProducing(self) -> None:
        self.paused = False
        for exchange in list(self._exchanges):
            exchange.resume()

    def stopProducing(self) -> None:
        self.cancelAll()


def _failed(err: RpcError) -> Deferred[dict[str, Any]]:
    d: Deferred[dict[str, Any]] = Deferred()
    d.errback(err)
    return d


__all__ = [
    "DELTA_METHOD",
    "HttpRequester",
    "OtherScheme",
    "Url",
    "UrlError",
    "joinUrl",
    "nextHop",
    "parseUrl",
    "prepare",
]
