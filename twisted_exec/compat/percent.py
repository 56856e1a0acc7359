"""Percent-encoding and input trimming as the ``url`` crate does them, for ``fileuri``.

Split from :mod:`twisted_exec.compat.fileuri` (the ``file:`` URI parser) so that each stays
short; nothing here knows about URIs: bytes in the given unsafe set (and every control and
non-ASCII byte) are escaped, ``%XX`` sequences decoded, and the URL parser's input trimmed.
"""

from __future__ import annotations

_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))


def trimInput(text: str) -> str:
    """Trim leading/trailing C0 controls and spaces; drop every tab and newline."""
    text = text.strip(_C0_AND_SPACE)
    return text.replace("\t", "").replace("\n", "").replace("\r", "")


#: Per unsafe set, every byte :func:`percentEncode` escapes. ``bytes.translate`` deletes them
#: in C, so a segment that needs no escape (nearly every one) skips the per-byte Python loop:
#: every 0.171 call parses a ``file:`` URI or two, and the loops were ~10 µs of each.
_ESCAPED: dict[frozenset[int], bytes] = {}


def percentEncode(text: str, unsafe: frozenset[int]) -> str:
    """``%XX`` for every byte of ``text`` (UTF-8, surrogate escapes as their bytes) in ``unsafe``,
    below 0x20 or from 0x7F up."""
    raw = text.encode("utf-8", "surrogateescape")
    escaped = _ESCAPED.get(unsafe)
    if escaped is None:
        escaped = _ESCAPED[unsafe] = bytes(
            b for b in range(256) if b < 0x20 or b >= 0x7F or b in unsafe
        )
    if len(raw.translate(None, escaped)) == len(raw):
        return text  # every byte is printable ASCII outside ``unsafe``: the loop's own output
    out = []
    for byte in raw:
        if byte < 0x20 or byte >= 0x7F or byte in unsafe:
            out.append(f"%{byte:02X}")
        else:
            out.append(chr(byte))
    return "".join(out)


def percentDecode(text: str) -> bytes:
    """Percent-decoding as the url crate does it: a ``%`` not followed by two hex digits stays."""
    raw = text.encode("utf-8", "surrogateescape")
    if b"%" not in raw:
        return raw  # nothing to decode (the usual case): skip the per-byte loop
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x25 and i + 2 < len(raw) and _isHex(raw[i + 1 : i + 3]):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def _isHex(pair: bytes) -> bool:
    return len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair)


__all__ = ["percentDecode", "percentEncode", "trimInput"]
