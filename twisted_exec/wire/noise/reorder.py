"""Order relay records before they meet Noise's implicit receive nonce.

As Codex (``noise_relay/ordered_ciphertext.rs``): a record whose ``seq`` is below the next
expected one, or already buffered, is a duplicate and dropped silently (the first copy wins);
one more than 64 ahead, a 65th buffered record or more than 1 MiB buffered is an error.
Nothing is retransmitted, so a gap that never fills simply holds the stream.
"""

from __future__ import annotations

from twisted_exec.wire.noise.errors import NoiseError

MAX_REORDER_DISTANCE = 64
MAX_PENDING_RECORDS = 64
MAX_PENDING_BYTES = 1024 * 1024
MAX_SEQ = 2**32 - 1


class ReorderWindow:
    """Release each sequence number at most once, in order, from a bounded window."""

    __slots__ = ("_pending", "nextSeq", "pendingBytes")

    def __init__(self) -> None:
        self.nextSeq = 0
        self._pending: dict[int, bytes] = {}
        self.pendingBytes = 0

    @property
    def pendingRecords(self) -> int:
        return len(self._pending)

    def _advance(self) -> None:
        if self.nextSeq >= MAX_SEQ:
            raise NoiseError("Noise relay sequence number exhausted")
        self.nextSeq += 1

    def takeInOrder(self, seq: int) -> bool:
        """Take ``seq`` if it is the next one and nothing waits (the usual record): the caller
        then uses its payload at once, without a list; ``False`` leaves the window unchanged."""
        if seq != self.nextSeq or self._pending:
            return False
        self._advance()
        return True

    def push(self, seq: int, payload: bytes) -> list[bytes]:
        """The run of records now contiguous (possibly empty)."""
        if seq < self.nextSeq or seq in self._pending:
            return []
        if seq > self.nextSeq:
            if seq - self.nextSeq > MAX_REORDER_DISTANCE:
                raise NoiseError("Noise relay ciphertext exceeds reorder window")
            pendingBytes = self.pendingBytes + len(payload)
            if len(self._pending) >= MAX_PENDING_RECORDS or pendingBytes > MAX_PENDING_BYTES:
                raise NoiseError("Noise relay pending ciphertext buffer is full")
            self._pending[seq] = payload
            self.pendingBytes = pendingBytes
            return []
        ready = [payload]
        self._advance()
        while self.nextSeq in self._pending:
            record = self._pending.pop(self.nextSeq)
            self.pendingBytes -= len(record)
            ready.append(record)
            self._advance()
        return ready
