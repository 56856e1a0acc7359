"""Message framing inside the Noise record stream (Codex ``noise_relay/message_framing.rs``).

Each JSON-RPC message is prefixed with its length as a 4-byte big-endian u32 (1 to 64 MiB);
the framed bytes are cut into records of at most 60 KiB of plaintext, each encrypted as one
Noise message (so the largest ciphertext is 61456 bytes). The receiver concatenates decrypted
records: one record may finish several messages and one message may span many records.
"""

from __future__ import annotations

import struct

from twisted_exec.wire.noise.errors import NoiseError

MAX_MESSAGE_LEN = 64 * 1024 * 1024
RECORD_PLAINTEXT_LEN = 60 * 1024
_PREFIX = struct.Struct(">I")
PREFIX_LEN = _PREFIX.size


def frameMessage(message: bytes) -> bytes:
    """Length prefix + message; :class:`NoiseError` for an empty or over-long message."""
    if not message or len(message) > MAX_MESSAGE_LEN:
        raise NoiseError("Noise relay JSON-RPC message exceeds maximum length")
    return _PREFIX.pack(len(message)) + message


def splitRecords(framed: bytes) -> list[bytes]:
    """The plaintext records, in order, each at most :data:`RECORD_PLAINTEXT_LEN` bytes."""
    view = memoryview(framed)
    return [
        bytes(view[i : i + RECORD_PLAINTEXT_LEN])
        for i in range(0, len(framed), RECORD_PLAINTEXT_LEN)
    ]


class MessageDecoder:
    """Reassemble complete messages from decrypted records, within a fixed byte budget.

    The length is authenticated (it is inside the encryption) but still bounded, so even a
    hostile authenticated peer cannot grow the buffer past prefix + 64 MiB.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def bufferedBytes(self) -> int:
        return len(self._buffer)

    def push(self, record: bytes) -> list[bytes]:
        if len(record) > RECORD_PLAINTEXT_LEN:
            raise NoiseError("Noise relay plaintext record exceeds maximum length")
        buffer = self._buffer
        buffer += record
        messages: list[bytes] = []
        start = 0
        while len(buffer) - start >= PREFIX_LEN:
            (size,) = _PREFIX.unpack_from(buffer, start)
            if size == 0 or size > MAX_MESSAGE_LEN:
                raise NoiseError("Noise relay JSON-RPC message has invalid length")
            end = start + PREFIX_LEN + size
            if len(buffer) < end:
                break
            messages.append(bytes(buffer[start + PREFIX_LEN : end]))
            start = end
        if start:
            del buffer[:start]
        if len(buffer) > PREFIX_LEN + MAX_MESSAGE_LEN:
            raise NoiseError("Noise relay JSON-RPC reassembly buffer exceeds maximum length")
        return messages
