"""One established Noise relay stream, sans-IO: messages <-> (seq, ciphertext) records.

Outbound: frame, split into 60 KiB records, encrypt each once, number them 0, 1, 2, ... per
direction (never wrapping: the seq is the ordering key of an implicit nonce). Inbound: reorder
by seq, decrypt in order, reassemble. Any error is fatal to the stream (the relay resets it).
"""

from __future__ import annotations

from twisted_exec.wire.noise.errors import NoiseError
from twisted_exec.wire.noise.framing import (
    PREFIX_LEN,
    RECORD_PLAINTEXT_LEN,
    MessageDecoder,
    frameMessage,
    messageRecords,
)
from twisted_exec.wire.noise.reorder import MAX_SEQ, ReorderWindow
from twisted_exec.wire.noise.transport import NoiseTransport

#: The longest message that travels in a single record with its length prefix.
_ONE_RECORD = RECORD_PLAINTEXT_LEN - PREFIX_LEN


class NoiseChannel:
    """The record layer of one stream on top of a finished handshake's transport."""

    __slots__ = ("_decoder", "_nextSendSeq", "_transport", "_window", "failed")

    def __init__(self, transport: NoiseTransport) -> None:
        self._transport = transport
        self._window = ReorderWindow()
        self._decoder = MessageDecoder()
        self._nextSendSeq = 0
        self.failed = False

    @property
    def bufferedBytes(self) -> int:
        """Inbound bytes held (reorder window + reassembly), for budgets and tests."""
        return self._window.pendingBytes + self._decoder.bufferedBytes

    def _check(self) -> None:
        if self.failed:
            raise NoiseError("Noise relay stream already failed")

    def encodeMessage(self, message: bytes) -> list[tuple[int, bytes]]:
        """The ``(seq, ciphertext)`` records carrying ``message``, one data frame each."""
        self._check()
        if len(message) <= _ONE_RECORD and self._nextSendSeq <= MAX_SEQ:
            # the usual message fits one record: no split, no list of copies
            seq = self._nextSendSeq
            try:
                ciphertext = self._transport.encrypt(frameMessage(message))
            except NoiseError:
                self.failed = True
                raise
            self._nextSendSeq = seq + 1
            return [(seq, ciphertext)]
        try:
            records = messageRecords(message)
            if self._nextSendSeq + len(records) - 1 > MAX_SEQ:
                raise NoiseError("Noise relay sequence number exhausted")
            out = []
            for record in records:
                out.append((self._nextSendSeq, self._transport.encrypt(record)))
                self._nextSendSeq += 1
            return out
        except NoiseError:
            self.failed = True
            raise

    def receiveRecord(self, seq: int, ciphertext: bytes) -> list[bytes]:
        """The complete messages this record (and any it unblocked) finished."""
        self._check()
        try:
            if self._window.takeInOrder(seq):
                return self._decoder.push(self._transport.decrypt(ciphertext))
            messages: list[bytes] = []
            for record in self._window.push(seq, ciphertext):
                messages.extend(self._decoder.push(self._transport.decrypt(record)))
            return messages
        except NoiseError:
            self.failed = True
            raise
