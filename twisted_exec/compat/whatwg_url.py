"""URLs as the reference (reqwest, i.e. the WHATWG URL standard) parses, joins and prints them.

http/request answers a bad URL with the reference's exact text, so the parser is ours, not urllib's.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote

import idna
from twisted.logger import Logger

log = Logger()


_SPECIAL_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}


_SCHEME = re.compile(r"\A([A-Za-z][A-Za-z0-9+\-.]*):")


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
