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
to explain a rejection.
"""

from __future__ import annotations

import binascii
import re

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_VALUE = {byte: index for index, byte in enumerate(_ALPHABET)}
_PAD = ord("=")
_NOT_SYMBOL = re.compile(rb"[^A-Za-z0-9+/]")


def encodeBase64(data: bytes) -> str:
    """``STANDARD.encode``: padded, no line breaks."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def decodeBase64Strict(text: str) -> bytes:
    """Decode ``text`` or raise :class:`ValueError` carrying the reference's message."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) % 4 == 0:
        try:
            decoded = binascii.a2b_base64(data, strict_mode=True)
        except binascii.Error:
            pass
        else:
            if _tailIsCanonical(data):
                return decoded
    _explain(data)
    # _explain found nothing wrong: the input is canonical, whatever binascii's strict mode thinks.
    return binascii.a2b_base64(data)


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
    bad = _NOT_SYMBOL.search(data, 0, bodyEnd)
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
