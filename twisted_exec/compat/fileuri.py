"""``file:`` URIs exactly as Codex 0.171's ``PathUri`` parses, checks and prints them.

The 0.171 exec-server names every path with a ``file:`` URI. Its ``PathUri`` is a WHATWG URL
(the ``url`` crate) restricted to the ``file`` scheme, so a harness sees the URL parser's own
behaviour and error text: ``file:/tmp``, ``file:tmp``, ``FILE:///tmp``, ``file://localhost/tmp``
and ``file:///tmp\\..\\etc`` all name a local path; ``/tmp`` is ``invalid URI: relative URL
without a base``; a query is ``query parameters are not allowed in path URIs``. A URI with a host
(``file://server/share``) or a drive letter (``file:///C:/x``) parses, but is a Windows path, which
a Linux executor refuses when it needs the host path: ``'file:///C:/x' is invalid on 'linux'``.

Only what a ``file:`` URI needs of the URL standard is implemented (the file-scheme states, hosts
as domain, IPv4 or IPv6, dot segments, the path percent-encode set); other schemes are
recognised only to give the reference's answer (``unsupported path URI scheme `http```, or the
URL error it reports first). Every rule here was checked against the 0.171.0 binary
(``tests/test_fileuri.py`` lists the cases).

No IO, nothing of ours imported: callers turn :class:`UriParseError` and
:class:`ForeignUriError` into the JSON-RPC error their method answers with.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re

from twisted_exec.compat.percent import percentDecode, percentEncode, trimInput
from twisted_exec.compat.record import frozen

PLATFORM = "linux"

#: ``PathUri``'s fallback for host paths without a URI form (paths containing NUL).
BAD_PATH_PREFIX = "file:///%00/bad/path/"

SPECIAL_SCHEMES = frozenset({"ftp", "http", "https", "ws", "wss", "file"})

_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+\-.]*:")
_WINDOWS_DRIVE_RE = re.compile(r"^[A-Za-z][:|]$")
_NORMALISED_DRIVE_RE = re.compile(r"^[A-Za-z]:$")

# WHATWG percent-encode sets, as byte predicates: the path set applies to path text being
# parsed; the segment set is what the url crate's from_file_path applies to host path bytes.
_PATH_SET = frozenset(b' "#<>?`{}')
_SEGMENT_SET = frozenset(b' "#<>?`{}/%\\')
#: Code points a domain may not contain, after percent-decoding (the url crate reports these as
#: an IDNA failure: ``invalid international domain name``).
_FORBIDDEN_DOMAIN = frozenset(" #%/:<>?@[\\]^|") | {chr(c) for c in range(0x20)} | {"\x7f"}


class UriParseError(ValueError):
    """The string is not an acceptable ``file:`` URI (0.171 answers -32602 with ``message``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ForeignUriError(ValueError):
    """A valid URI that names no path on this host (a Windows drive or UNC host)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.message = f"'{uri}' is invalid on '{PLATFORM}'"
        super().__init__(self.message)


def _invalid(reason: str) -> UriParseError:
    return UriParseError(f"invalid URI: {reason}")


def hasScheme(text: str) -> bool:
    """True when ``text`` starts as a URL with a scheme would (after the parser's trimming)."""
    if text.startswith("file:"):
        return True  # the usual 0.171 path: trimming leaves a leading letter alone
    return _SCHEME_RE.match(trimInput(text)) is not None


# -- hosts ------------------------------------------------------------------------------------


def _parseHost(buffer: str) -> str:
    """A URL host (domain, IPv4 or bracketed IPv6), serialised, or UriParseError."""
    if buffer.startswith("["):
        if not buffer.endswith("]"):
            raise _invalid("invalid IPv6 address")
        try:
            address = ipaddress.IPv6Address(buffer[1:-1])
        except ValueError:
            raise _invalid("invalid IPv6 address") from None
        return f"[{address.compressed}]"
    domain = percentDecode(buffer).decode("utf-8", "replace")
    if any(ch in _FORBIDDEN_DOMAIN for ch in domain):
        raise _invalid("invalid international domain name")
    ascii_ = _toAscii(domain)
    if _endsInNumber(ascii_):
        return _parseIPv4(ascii_)
    return ascii_


def _toAscii(domain: str) -> str:
    """UTS-46 in the url crate's lenient mode, for what a file host can hold."""
    labels = []
    for label in domain.split("."):
        if label.isascii():
            label = label.lower()
            if label.startswith("xn--"):
                try:
                    decoded = label[4:].encode("ascii").decode("punycode")
                except (UnicodeError, ValueError):
                    raise _invalid("invalid international domain name") from None
                if not decoded or decoded.isascii():
                    raise _invalid("invalid international domain name")
            labels.append(label)
            continue
        try:
            labels.append("xn--" + label.lower().encode("punycode").decode("ascii"))
        except UnicodeError:
            raise _invalid("invalid international domain name") from None
    return ".".join(labels)


def _endsInNumber(host: str) -> bool:
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    last = parts[-1]
    if last and all(c in "0123456789" for c in last):
        return True
    return re.fullmatch(r"0[xX][0-9A-Fa-f]*", last) is not None


def _ipv4Number(part: str) -> int:
    base = 10
    if part[:2] in ("0x", "0X"):
        part, base = part[2:], 16
    elif len(part) > 1 and part.startswith("0"):
        part, base = part[1:], 8
    if part == "":
        return 0
    try:
        return int(part, base)
    except ValueError:
        raise _invalid("invalid IPv4 address") from None


def _parseIPv4(host: str) -> str:
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4 or any(p == "" for p in parts):
        raise _invalid("invalid IPv4 address")
    numbers = [_ipv4Number(p) for p in parts]
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise _invalid("invalid IPv4 address")
    value = numbers[-1]
    for index, n in enumerate(numbers[:-1]):
        value += n * 256 ** (3 - index)
    return str(ipaddress.IPv4Address(value))


# -- the file-scheme parser ---------------------------------------------------------------------


@frozen
class FileUri:
    """A parsed, validated ``file:`` URI: its canonical text, host ("" if none) and path."""

    text: str
    host: str
    path: str  # percent-encoded, starts with "/"

    def __str__(self) -> str:
        return self.text

    @property
    def isWindows(self) -> bool:
        """``PathUri::infer_path_convention``: a host, or a drive letter first, is Windows."""
        if self.host:
            return True
        first = self.path.lstrip("/").partition("/")[0]  # the first non-empty segment
        return _NORMALISED_DRIVE_RE.match(first) is not None

    def hostPath(self) -> str:
        """The local path (``to_abs_path``), lexically normalised, or ForeignUriError.

        Percent-decoded bytes are joined first and normalised after, as the reference does
        (``%2F..%2F`` climbs, ``%00`` never gets here); non-UTF-8 bytes come back as
        surrogate escapes (``os.fsdecode``), so the path round-trips to the same bytes.
        """
        if self.isWindows or self.text.startswith(BAD_PATH_PREFIX):
            raise ForeignUriError(self.text)
        if "%" not in self.path and self.path.isascii():
            # nothing to decode: the bytes joined below are the path's own (surrogate escapes
            # round-trip through os.fsdecode), so skip the per-segment decode
            return normalizePath(self.path or "/")
        raw = b"".join(b"/" + percentDecode(s) for s in self.path.split("/")[1:])
        return normalizePath(os.fsdecode(raw or b"/"))


def normalizePath(path: str) -> str:
    """``AbsolutePathBuf``'s lexical normalisation (``.``, ``..``, repeated and trailing ``/``):
    of a ``file:`` URI's path here, of 0.131's bare paths in ``executor/resources`` (``..``
    pops without looking at the disk)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def _isSingleDot(segment: str) -> bool:
    return segment == "." or segment.lower() == "%2e"


def _isDoubleDot(segment: str) -> bool:
    return segment.lower() in ("..", ".%2e", "%2e.", "%2e%2e")


_QUERY_OR_FRAGMENT_RE = re.compile(r"[?#]")
_SEPARATOR_RE = re.compile(r"[/\\]")


def _parsePath(rest: str, segments: list[str]) -> str:
    """The path state: segments split on ``/`` and ``\\`` up to ``?`` or ``#``.

    Returns what follows the path (the query or fragment, with its leading character).
    """
    stop = _QUERY_OR_FRAGMENT_RE.search(rest)
    end = stop.start() if stop is not None else len(rest)
    path, tail = rest[:end], rest[end:]
    pieces = _SEPARATOR_RE.split(path)
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        if _isDoubleDot(piece):
            if segments and not (len(segments) == 1 and _NORMALISED_DRIVE_RE.match(segments[0])):
                segments.pop()
            if last:
                segments.append("")
        elif _isSingleDot(piece):
            if last:
                segments.append("")
        else:
            if not segments and not last and _WINDOWS_DRIVE_RE.match(piece):
                piece = piece[0] + ":"
            segments.append(percentEncode(piece, _PATH_SET))
    return tail


def _splitAuthority(rest: str) -> tuple[str, str]:
    """After ``//``: the host buffer (up to / \\ ? #) and what follows it."""
    match = re.search(r"[/\\?#]", rest)
    cut = match.start() if match else len(rest)
    return rest[:cut], rest[cut:]


def _otherScheme(scheme: str, rest: str) -> UriParseError:
    """A URL of another scheme: the URL error the reference reports first, else unsupported."""
    if scheme in SPECIAL_SCHEMES:
        authority, _ = _splitAuthority(rest.lstrip("/\\"))
        hostText = authority.rsplit("@", 1)[-1]
        host, _, port = (
            hostText.partition(":") if not hostText.startswith("[") else (hostText, "", "")
        )
        if host == "":
            return _invalid("empty host")
        try:
            _parseHost(host)
        except UriParseError as err:
            return err
        if port and (not port.isdigit() or int(port) > 65535):
            return _invalid("invalid port number")
    return UriParseError(f"unsupported path URI scheme `{scheme}`")


#: A ``file:///`` URI the parser would hand back unchanged: printable ASCII outside the path
#: percent-encode set, no ``%`` (nothing to decode, so no NUL), no ``\\`` (a separator to
#: rewrite), no ``|`` (a drive letter to rewrite), no ``?`` or ``#``; the one thing left to
#: rule out is a ``.`` or ``..`` segment (:data:`_DOT_SEGMENT`). Nearly every URI a harness
#: sends (``Path.as_uri()``, the reference's own ``from_abs_path``) is one, and the full parse
#: was ~5 µs of a 0.171 call.
_PLAIN_FILE_URI = re.compile(r"file:///[!$&-;=@-\[\]^_a-z~]*")
_DOT_SEGMENT = re.compile(r"/\.\.?(?:/|$)")


def parseUri(text: str) -> FileUri:
    """``PathUri::parse``: parse, then check, or raise UriParseError."""
    if _PLAIN_FILE_URI.fullmatch(text) is not None and _DOT_SEGMENT.search(text, 7) is None:
        return FileUri(text=text, host="", path=text[7:])
    return _parseFull(text)


def _parseFull(text: str) -> FileUri:
    """:func:`parseUri` without its shortcut: the URL standard's file-scheme states."""
    source = trimInput(text)
    match = _SCHEME_RE.match(source)
    if match is None:
        raise _invalid("relative URL without a base")
    scheme = match.group(0)[:-1].lower()
    rest = source[match.end() :]
    if scheme != "file":
        raise _otherScheme(scheme, rest)
    host = ""
    segments: list[str] = []
    if rest[:1] in ("/", "\\") and rest[1:2] in ("/", "\\"):
        buffer, after = _splitAuthority(rest[2:])
        if _WINDOWS_DRIVE_RE.match(buffer):
            tail = _parsePath(buffer + after, segments)
        else:
            if buffer:
                host = _parseHost(buffer)
                if host == "localhost":
                    host = ""
            tail = _parsePath(after[1:] if after[:1] in ("/", "\\") else after, segments)
    else:
        tail = _parsePath(rest[1:] if rest[:1] in ("/", "\\") else rest, segments)
    path = "/" + "/".join(segments)
    if tail.startswith("?"):
        raise UriParseError("query parameters are not allowed in path URIs")
    if tail.startswith("#"):
        raise UriParseError("fragments are not allowed in path URIs")
    uri = FileUri(f"file://{host}{path}", host, path)
    if b"\x00" in percentDecode(path) and not _isBadPathUri(uri.text):
        raise UriParseError(f"'{uri.text}' is invalid on '{PLATFORM}'")
    return uri


def _isBadPathUri(text: str) -> bool:
    if not text.startswith(BAD_PATH_PREFIX):
        return False
    encoded = text[len(BAD_PATH_PREFIX) :]
    if not encoded or "/" in encoded:
        return False
    try:
        decoded = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return False
    return base64.urlsafe_b64encode(decoded).rstrip(b"=").decode() == encoded


def fromHostPath(path: str | bytes) -> str:
    """``PathUri::from_abs_path`` of an absolute host path: ``file:///...``, segments encoded.

    ``path`` is a str (surrogate escapes for non-UTF-8 bytes, as ``os.fsdecode`` makes them)
    or bytes. Empty and ``.`` components vanish, as ``Path::components`` drops them.
    """
    text = os.fsdecode(path)
    if not text.startswith("/"):
        raise ValueError(f"not an absolute path: {text!r}")
    if "\x00" in text:
        raw = base64.urlsafe_b64encode(os.fsencode(text)).rstrip(b"=").decode()
        return BAD_PATH_PREFIX + raw
    parts = [p for p in text.split("/") if p not in ("", ".")]
    return "file:///" + "/".join(percentEncode(p, _SEGMENT_SET) for p in parts)


__all__ = [
    "FileUri",
    "ForeignUriError",
    "UriParseError",
    "fromHostPath",
    "hasScheme",
    "normalizePath",
    "parseUri",
    "percentDecode",
]
