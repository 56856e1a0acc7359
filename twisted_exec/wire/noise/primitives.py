"""Noise's symmetric primitives for the ``AESGCM_SHA256`` suite, all from ``cryptography``.

HASH is SHA-256, HKDF is Noise's HKDF (RFC 5869 with the chaining key as salt and an empty
info, which is exactly what ``cryptography``'s HKDF computes), and the AEAD is AES-256-GCM with
the Noise nonce encoding for AESGCM: 4 zero bytes then the 64-bit counter big-endian (Noise
spec section 12.3; clatter ``aes.rs`` does the same).
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from twisted_exec.wire.noise.errors import NoiseError

HASHLEN = 32
KEYLEN = 32
TAGLEN = 16
# Noise: n = 2**64 - 1 is reserved; reaching it means the cipher state is exhausted.
MAX_NONCE = 2**64 - 1

_NONCE = struct.Struct(">4xQ")


def sha256(data: bytes) -> bytes:
    """HASH(data)."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


def hkdf(chainingKey: bytes, inputKeyMaterial: bytes, outputs: int) -> tuple[bytes, ...]:
    """Noise ``HKDF(chaining_key, input_key_material, num_outputs)`` for 2 or 3 outputs."""
    if outputs not in (2, 3):
        raise ValueError("Noise HKDF yields 2 or 3 outputs")
    derived = HKDF(
        algorithm=hashes.SHA256(), length=HASHLEN * outputs, salt=chainingKey, info=b""
    ).derive(inputKeyMaterial)
    return tuple(derived[i : i + HASHLEN] for i in range(0, len(derived), HASHLEN))


def nonceBytes(n: int) -> bytes:
    """The 12-byte AES-GCM nonce for counter ``n``."""
    return _NONCE.pack(n)


class CipherState:
    """Noise CipherState: a key and an implicit 64-bit counter; no rekey (Codex never rekeys)."""

    __slots__ = ("_aead", "n")

    def __init__(self, key: bytes, n: int = 0) -> None:
        if len(key) != KEYLEN:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        self._aead = AESGCM(key)
        self.n = n

    def _take(self) -> bytes:
        # encryptWithAd writes the same steps out: it runs once per record, and a call is ~5 %
        n = self.n
        if n >= MAX_NONCE:
            raise NoiseError("Noise nonce exhausted")
        self.n = n + 1
        return _NONCE.pack(n)

    def encryptWithAd(self, ad: bytes, plaintext: bytes | memoryview) -> bytes:
        """ciphertext || tag; consumes one nonce."""
        n = self.n
        if n >= MAX_NONCE:
            raise NoiseError("Noise nonce exhausted")
        self.n = n + 1
        return self._aead.encrypt(_NONCE.pack(n), plaintext, ad)

    def decryptWithAd(self, ad: bytes, ciphertext: bytes) -> bytes:
        """The plaintext; a bad tag raises :class:`NoiseError` and still consumes the nonce.

        Consuming it matches clatter only in that the state is unusable afterwards: every
        caller ends the stream on the first failure.
        """
        if len(ciphertext) < TAGLEN:
            raise NoiseError("Noise ciphertext is shorter than its tag")
        nonce = self._take()
        try:
            return self._aead.decrypt(nonce, ciphertext, ad)
        except InvalidTag:
            raise NoiseError("Noise decryption failed") from None
