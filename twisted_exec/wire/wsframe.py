"""One masked binary websocket frame (client to server), built in a single step.

The relay websocket only ever sends whole binary messages, uncompressed, one frame each
(``RelayMessageFrame`` bytes). autobahn's ``sendMessage`` is general: it re-checks its
arguments, counts traffic and, to mask the payload, builds a new cffi masker object per frame
(buffer allocations, a gc hook, an import in the constructor). In the relay benchmark that
masker accounted for about a sixth of the executor's main-thread time on small replies
(bench/README.md). Here the smallest payloads are masked with one big-integer XOR; the rest by
autobahn's own compiled masker (``_nvx_xormasker``, SSE2) driven directly: one C masker
allocated and freed, the payload copied once into a ``bytearray`` and masked in place. That is
0.9 µs for an 11 KB output frame where autobahn's masker object takes 2.7 µs (its constructor
and two more buffers), 0.6 µs for a 1 KB reply instead of 1.7 (docs/decisions.md 196).

The bytes are exactly what autobahn's ``sendFrame(opcode=2, payload, mask=key)`` writes
(tests/test_relay_wsframe.py holds the two together). The mask key is drawn per frame from
``random.getrandbits(32)``, as autobahn does.
"""

from __future__ import annotations

import random
import struct

try:  # autobahn's compiled NVX masker (built with autobahn; net/autobahn_nvx.py)
    from _nvx_xormasker import ffi as _nvx_ffi  # type: ignore[import-not-found]
    from _nvx_xormasker import lib as _nvx_lib
except ImportError:  # pragma: no cover - an autobahn without NVX: its masker objects then
    _nvx_ffi = _nvx_lib = None

#: Payloads up to this size are masked in Python; larger ones by autobahn's native masker.
SMALL_PAYLOAD = 256


def newMaskKey() -> bytes:
    return random.getrandbits(32).to_bytes(4, "big")


def maskPayload(payload: bytes | memoryview, key: bytes) -> bytes:
    """RFC 6455 masking: byte i XOR key[i % 4]."""
    masked = _masked(payload, key)
    return masked if isinstance(masked, bytes) else bytes(masked)


def _masked(payload: bytes | memoryview, key: bytes) -> bytes | bytearray:
    """:func:`maskPayload`, a large payload left in its ``bytearray`` (a join copies it anyway)."""
    size = len(payload)
    if size <= SMALL_PAYLOAD:
        stream = (key * ((size >> 2) + 1))[:size]
        masked = int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little")
        return masked.to_bytes(size, "little")
    if _nvx_lib is None:  # pragma: no cover - see the import
        from autobahn.websocket.xormasker import create_xor_masker  # type: ignore[attr-defined]

        out: bytes = create_xor_masker(key, size).process(bytes(payload))
        return out
    buf = bytearray(payload)
    masker = _nvx_lib.nvx_xormask_new(key)  # SSE2 where the build has it
    if masker == _nvx_ffi.NULL:
        raise MemoryError("no memory for a websocket masker")
    try:
        _nvx_lib.nvx_xormask_process(masker, _nvx_ffi.from_buffer(buf), size)
    finally:
        _nvx_lib.nvx_xormask_free(masker)
    return buf


def frameHeader(first: int, size: int, mask: int = 0) -> bytes:
    """The header of one frame: ``first`` (FIN, RSV bits, opcode), then ``mask`` (0x80 for a
    masked client frame, 0 otherwise) with the length in its shortest encoding."""
    if size <= 125:
        return bytes((first, mask | size))
    if size <= 0xFFFF:
        return struct.pack("!BBH", first, mask | 126, size)
    return struct.pack("!BBQ", first, mask | 127, size)


def binaryFrame(payload: bytes, key: bytes) -> bytes:
    """FIN + opcode 2 (binary), the mask bit, the length, ``key``, the masked payload."""
    return b"".join((frameHeader(0x82, len(payload), 0x80), key, _masked(payload, key)))


def serverBinaryFrame(payload: bytes) -> bytes:
    """FIN + opcode 2 (binary), unmasked (server to client): the rendezvous's hot path, where
    autobahn's ``sendMessage`` costs several times the routing itself per small frame."""
    return frameHeader(0x82, len(payload)) + payload


def nextServerMessage(data: bytes, offset: int, limit: int = 0) -> tuple[bytes, int] | None:
    """The payload of the binary message that is one whole frame at ``data[offset:]``, and
    the offset after it; ``None`` when what starts there is anything else.

    The relay's inbound hot path (server to client): an unmasked frame with FIN, opcode 2, no
    RSV bit, its length in the shortest encoding and at most ``limit`` bytes (0: no limit).
    Everything else (control frames, fragments, text, a frame not whole yet, anything a
    websocket library must refuse) is ``None``, for the general parser to handle.
    """
    return wholeFrameAt(data, offset, limit, 0x82, masked=False)


def nextClientMessage(data: bytes, offset: int, limit: int = 0) -> tuple[bytes, int] | None:
    """:func:`nextServerMessage` for the rendezvous (client to server): the frame must be
    masked, and its payload is returned unmasked."""
    return wholeFrameAt(data, offset, limit, 0x82, masked=True)


def wholeFrameAt(
    data: bytes, offset: int, limit: int, first: int, *, masked: bool
) -> tuple[bytes, int] | None:
    """The (unmasked) payload of the frame at ``data[offset:]`` whose first byte is ``first``
    (FIN, no RSV bit, the opcode), masked or not as ``masked`` says, its length in the
    shortest encoding and at most ``limit`` (0: no limit), when it is whole; and the offset
    after it. ``None`` otherwise."""
    mask = 0x80 if masked else 0
    size = len(data)
    if size - offset < 2 or data[offset] != first or data[offset + 1] & 0x80 != mask:
        return None
    length = data[offset + 1] & 0x7F
    start = offset + 2
    if length == 126:
        start = offset + 4
        if size < start:
            return None
        length = int.from_bytes(data[offset + 2 : start], "big")
        if length < 126:
            return None
    elif length == 127:
        start = offset + 10
        if size < start:
            return None
        length = int.from_bytes(data[offset + 2 : start], "big")
        if length <= 0xFFFF or length >> 63:
            return None
    end = start + length + (4 if mask else 0)
    if end > size or (limit and length > limit):
        return None
    if not mask:
        return data[start:end], end
    key = data[start : start + 4]
    return maskPayload(memoryview(data)[start + 4 : end], key), end
