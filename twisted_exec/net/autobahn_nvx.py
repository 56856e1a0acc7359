"""autobahn's NVX accelerators (UTF-8 validation, XOR masking) without their cffi *builders*.

Why: ``autobahn.websocket.protocol`` imports ``autobahn.websocket.utf8validator`` and
``.xormasker``, which import ``autobahn.nvx._utf8validator`` and ``._xormasker``. Those two are
the cffi build scripts: at import they create an ``FFI``, parse their C declarations with
``pycparser`` and read the C source, only for their classes to use the compiled modules
(``_nvx_utf8validator``, ``_nvx_xormasker``) that were built from them. That was 1.4 MiB of
the idle executor's RSS and ~16 ms of every start-up (``docs/decisions.md`` 197).

:func:`installLeanAccelerators` registers the two ``autobahn.websocket`` modules with classes of
the same behaviour over the compiled modules (the same C functions, called the same way), before
our code's first import of autobahn's websocket protocol: ``net/autobahn_compat`` and
``net/autobahn_ws`` call it at import, the rendezvous plugin before its imports. It changes
nothing where that cannot be done as autobahn would: autobahn's modules already imported (a test
process, an embedding application that imported autobahn first), NVX not built, or turned off
with ``AUTOBAHN_USE_NVX=0``; autobahn then loads its own modules as usual.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

VALIDATOR_MODULE = "autobahn.websocket.utf8validator"
MASKER_MODULE = "autobahn.websocket.xormasker"


class Utf8Validator:
    """Incremental UTF-8 validator: autobahn's NVX class, over the compiled module only."""

    __slots__ = ("_lib", "_vld")

    def __init__(self) -> None:
        from _nvx_utf8validator import ffi, lib  # type: ignore[import-not-found]

        self._lib = lib
        self._vld = ffi.gc(lib.nvx_utf8vld_new(), lib.nvx_utf8vld_free)

    def reset(self) -> None:
        self._lib.nvx_utf8vld_reset(self._vld)

    def validate(self, ba: bytes) -> tuple[bool, bool, int, int]:
        """(valid so far, ends on a code point, index in this chunk, index in the message)."""
        lib = self._lib
        res = lib.nvx_utf8vld_validate(self._vld, ba, len(ba))
        current = lib.nvx_utf8vld_get_current_index(self._vld)
        total = lib.nvx_utf8vld_get_total_index(self._vld)
        return (res >= 0, res == 0, current, total)


class XorMaskerNull:
    """No masking (autobahn's class of the same name): counts the bytes it passes through."""

    __slots__ = ("_ptr",)

    def __init__(self, mask: bytes | None = None) -> None:
        self._ptr = 0

    def pointer(self) -> int:
        return self._ptr

    def reset(self) -> None:
        self._ptr = 0

    def process(self, data: bytes) -> bytes:
        self._ptr += len(data)
        return data


class XorMasker:
    """RFC 6455 masking with one 4-byte key across calls: autobahn's NVX masker classes."""

    __slots__ = ("_ffi", "_lib", "_masker")

    def __init__(self, mask: bytes, simd: bool = True) -> None:
        if len(mask) != 4:
            raise ValueError("a websocket mask is exactly 4 bytes")
        from _nvx_xormasker import ffi, lib  # type: ignore[import-not-found]

        self._ffi = ffi
        self._lib = lib
        self._masker = ffi.gc(lib.nvx_xormask_new(mask), lib.nvx_xormask_free)
        lib.nvx_xormask_set_impl(self._masker, 2 if simd else 1)  # 1 scalar, 2 SSE2

    def pointer(self) -> int:
        return int(self._lib.nvx_xormask_pointer(self._masker))

    def reset(self) -> None:
        self._lib.nvx_xormask_reset(self._masker)

    def process(self, data: bytes) -> bytes:
        buf = bytearray(data)
        self._lib.nvx_xormask_process(self._masker, self._ffi.from_buffer(buf), len(buf))
        return bytes(buf)


def create_xor_masker(mask: bytes, length: int | None = None) -> XorMasker:
    """autobahn's factory: the scalar loop under 128 bytes, SSE2 from there."""
    return XorMasker(mask, simd=length is not None and length >= 128)


def _module(name: str, **attributes: Any) -> ModuleType:
    module = ModuleType(name, __doc__)
    module.__dict__.update(attributes)
    module.__all__ = list(attributes)  # type: ignore[attr-defined]
    return module


def installLeanAccelerators() -> bool:
    """Register the two lean modules if autobahn would use NVX; ``True`` when they are in use."""
    if VALIDATOR_MODULE in sys.modules or MASKER_MODULE in sys.modules:
        return getattr(sys.modules.get(VALIDATOR_MODULE), "LEAN", False) is True
    from autobahn.websocket import USES_NVX

    if not USES_NVX:
        return False
    try:
        import _nvx_utf8validator  # noqa: F401
        import _nvx_xormasker  # noqa: F401
    except ImportError:  # pragma: no cover - USES_NVX says they import
        return False
    sys.modules[VALIDATOR_MODULE] = _module(
        VALIDATOR_MODULE, Utf8Validator=Utf8Validator, LEAN=True
    )
    sys.modules[MASKER_MODULE] = _module(
        MASKER_MODULE,
        XorMaskerNull=XorMaskerNull,
        create_xor_masker=create_xor_masker,
        LEAN=True,
    )
    return True
