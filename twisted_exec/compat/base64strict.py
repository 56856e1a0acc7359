"""Base64 exactly as the reference decodes it (Rust ``base64`` 0.22, ``STANDARD`` engine).

Harnesses see the decoder's error text (``fs/writeFile requires valid base64 dataBase64: Invalid
symbol 33, offset 0.``), so besides accepting exactly the same inputs (canonical padding required,
no whitespace, no trailing bits), a rejection must name the same byte at the same offset. Offsets
count UTF-8 bytes, not characters.

The reference engine checks in this order, which decides the message when an input has several
faults:

1. an input of length ``4k+1`` whose last byte is neither in the alphabet nor ``=``: that byte;
2. the first byte outside the alphabet (``=`` included) before the final group of 1-4 bytes;
3. the final group, byte by byte: ``=`` in its first two places, a symbol after ``=``, or a byte
   outside the alphabet; then a single symbol (``Invalid input length: N``), then symbols plus
   padding not a multiple of four (``Invalid padding``), then non-zero unused bits in the last
   symbol (``Invalid last symbol``).

Well-formed input takes a fast path through :func:`binascii.a2b_base64`; the exact walk only runs
to explain a rejection. Large inputs are handled in 1 MiB slices: binascii holds the GIL for a
whole call, and one call over 50 MB would stall the reactor thread for a tenth of a second while a
worker thread decodes.
"""

from __future__ import annotations

import binascii
import re

from twisted_exec.wire.base64fast import encodeBase64 as encodeBase64Fast

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_VALUE = {byte: index for index, byte in enumerate(_ALPHABET)}
_PAD = ord("=")
_NOT_SYMBOL = re.compile(rb"[^A-Za-z0-9+/]")

_SLICE = 1 << 20
"""Characters of base64 per binascii call (a multiple of 4)."""
_RAW_SLICE = _SLICE // 4 * 3
"""Bytes per encoding call (a multiple of 3, so the pieces concatenate)."""


def encodeBase64(data: bytes) -> str:
    """``STANDARD.encode``: padded, no line breaks."""
    pieces = encodeBase64Pieces(data)
    return (pieces[0] if len(pieces) == 1 else b"".join(pieces)).decode("ascii")


def encodeBase64Pieces(data: bytes) -> list[bytes]:
    """:func:`encodeBase64` as ASCII bytes, in pieces of at most 1 MiB of base64 each (one
    encoder call each, so the GIL is never held for long), for a caller that joins them into
    bytes of its own (``fs/readFile``'s reply). SIMD base64 where ``wire/base64fast`` has it."""
    if len(data) <= _RAW_SLICE:
        return [encodeBase64Fast(data)]
    view = memoryview(data)
    return [
        encodeBase64Fast(view[start : start + _RAW_SLICE])  # type: ignore[arg-type]
        for start in range(0, len(data), _RAW_SLICE)
    ]


def decodeBase64Strict(text: str) -> bytes:
    """Decode ``text`` or raise :class:`ValueError` carrying the reference's message."""
    decoded = _fastDecode(text)
    if decoded is not None:
        return decoded
    data = text.encode("utf-8", "surrogatepass")
    _explain(data)
    # _explain found nothing wrong: the input is canonical, whatever binascii's strict mode thinks.
    return binascii.a2b_base64(data)


def _fastDecode(text: str) -> bytes | None:
    """Decode canonical input slice by slice; None when anything looks off."""
    if len(text) % 4 or not text.isascii():
        return None
    pieces: list[bytes] = []
    piece = b""
    for start in range(0, len(text), _SLICE):
        piece = text[start : start + _SLICE].encode("ascii")
        final = start + _SLICE >= len(text)
        if not final and b"=" in piece:
            return None
        try:
            pieces.append(binascii.a2b_base64(piece, strict_mode=True))
        except binascii.Error:
            return None
    if not _tailIsCanonical(piece):
        return None
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _tailIsCanonical(data: bytes) -> bool:
    """Whether the last group has at most two ``=`` and zero unused bits (``QQ==``, not ``QR==``).

    binascii's strict mode checks the rest but accepts ``AAAA====`` and ``QR==``.
    """
    if not data:
        return True
    symbols = data[-4:].rstrip(b"=")
    if len(symbols) < 2:
        return False
    if len(symbols) == 4:
        return True
    lastValue = _VALUE[symbols[-1]]
    unusedBits = 4 if len(symbols) == 2 else 2
    return lastValue & ((1 << unusedBits) - 1) == 0


def _invalidSymbol(offset: int, byte: int) -> ValueError:
    return ValueError(f"Invalid symbol {byte}, offset {offset}.")


def _explain(data: bytes) -> None:
    """Walk ``data`` the way the reference's decoder does and raise its first complaint."""
    length = len(data)
    remainder = length % 4
    if remainder == 1 and data[-1] != _PAD and data[-1] not in _VALUE:
        raise _invalidSymbol(length - 1, data[-1])
    # Every complete group but the last is plain symbols; the last 1-4 bytes may hold padding.
    bodyEnd = max(length - remainder - (4 if remainder == 0 else 0), 0)
    for start in range(0, bodyEnd, _SLICE):
        bad = _NOT_SYMBOL.search(data, start, min(start + _SLICE, bodyEnd))
        if bad is not None:
            raise _invalidSymbol(bad.start(), data[bad.start()])

    symbols: list[int] = []
    padding = 0
    firstPad = 0
    lastSymbol = 0
    for index in range(bodyEnd, length):
        byte = data[index]
        if byte == _PAD:
            if index - bodyEnd < 2:
                raise _invalidSymbol(index, byte)
            if padding == 0:
                firstPad = index
            padding += 1
            continue
        if padding:
            raise _invalidSymbol(firstPad, _PAD)
        value = _VALUE.get(byte)
        if value is None:
            raise _invalidSymbol(index, byte)
        symbols.append(value)
        lastSymbol = byte

    if length and len(symbols) < 2:
        raise ValueError(f"Invalid input length: {bodyEnd + len(symbols)}")
    if (padding + len(symbols)) % 4:
        raise ValueError("Invalid padding")
    if symbols:
        bits = 0
        for value in symbols:
            bits = (bits << 6) | value
        unusedBits = (len(symbols) * 6) % 8
        if bits & ((1 << unusedBits) - 1):
            raise ValueError(
                f"Invalid last symbol {lastSymbol}, offset {bodyEnd + len(symbols) - 1}."
            )


__all__ = ["decodeBase64Strict", "encodeBase64"]
