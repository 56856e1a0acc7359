"""Noise transport after the handshake: two cipher states with implicit nonces.

Records use an empty AD (clatter ``TransportState``). A Noise message is at most 65535 bytes,
so a record's plaintext is at most 65519; Codex's framing uses 60 KiB records.
"""

from __future__ import annotations

from twisted_exec.wire.noise.errors import NoiseError
from twisted_exec.wire.noise.primitives import TAGLEN, CipherState

MAX_NOISE_MESSAGE_LEN = 65535


class NoiseTransport:
    """Encrypt outbound records in order, decrypt inbound records in order (no rekey)."""

    __slots__ = ("receiveCipher", "sendCipher")

    def __init__(self, send: CipherState, receive: CipherState) -> None:
        self.sendCipher = send
        self.receiveCipher = receive

    def encrypt(self, plaintext: bytes | memoryview) -> bytes:
        if len(plaintext) + TAGLEN > MAX_NOISE_MESSAGE_LEN:
            raise NoiseError("Noise transport plaintext is too large")
        return self.sendCipher.encryptWithAd(b"", plaintext)

    def decrypt(self, ciphertext: bytes) -> bytes:
        if len(ciphertext) < TAGLEN:
            raise NoiseError("Noise transport ciphertext is too short")
        if len(ciphertext) > MAX_NOISE_MESSAGE_LEN:
            raise NoiseError("Noise transport ciphertext is too large")
        return self.receiveCipher.decryptWithAd(b"", ciphertext)
