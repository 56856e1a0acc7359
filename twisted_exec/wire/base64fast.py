"""Standard base64 (with padding, no newline) of process output, by SIMD when it is there.

Every ``process/output`` notification carries its chunk in base64, and CPython's
``binascii.b2a_base64`` takes about 6 µs for an 8 KiB chunk on this machine: the largest piece
of the ~20 µs of Python an output chunk costs the executor (perfout, bench/results). The
``pybase64`` package (a C extension over the SIMD base64 library) gives the same bytes in
about 0.3 µs. It is optional: without it the standard library's encoder is used, and the
output is byte for byte the same either way (tests/test_base64fast.py).
"""

from __future__ import annotations

import binascii
from collections.abc import Callable

__all__ = ["ACCELERATED", "encodeBase64"]


def _standardEncode(data: bytes) -> bytes:
    return binascii.b2a_base64(data, newline=False)


def _load() -> tuple[Callable[[bytes], bytes], bool]:
    try:
        import pybase64  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return _standardEncode, False
    encode: Callable[[bytes], bytes] = pybase64.b64encode
    return encode, True


_ENCODE, ACCELERATED = _load()


def encodeBase64(data: bytes) -> bytes:
    """``binascii.b2a_base64(data, newline=False)``, faster when it can be."""
    return _ENCODE(data)
