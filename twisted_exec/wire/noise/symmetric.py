"""Noise SymmetricState (spec section 5.2), as clatter runs it for the hybrid patterns.

``mixKeyAndHash`` is used by the hybrid ``skem`` token (PQNoise), not for PSKs here.
"""

from __future__ import annotations

from twisted_exec.wire.noise.errors import NoiseError
from twisted_exec.wire.noise.primitives import HASHLEN, KEYLEN, CipherState, hkdf, sha256


class SymmetricState:
    """Chaining key ``ck``, handshake hash ``h`` and the optional handshake cipher."""

    __slots__ = ("_cipher", "ck", "h")

    def __init__(self, protocolName: bytes) -> None:
        if len(protocolName) <= HASHLEN:
            self.h = protocolName.ljust(HASHLEN, b"\x00")
        else:
            self.h = sha256(protocolName)
        self.ck = self.h
        self._cipher: CipherState | None = None

    @property
    def hasKey(self) -> bool:
        return self._cipher is not None

    def mixHash(self, data: bytes) -> None:
        self.h = sha256(self.h + data)

    def mixKey(self, inputKeyMaterial: bytes) -> None:
        self.ck, tempK = hkdf(self.ck, inputKeyMaterial, 2)
        self._cipher = CipherState(tempK[:KEYLEN])

    def mixKeyAndHash(self, inputKeyMaterial: bytes) -> None:
        self.ck, tempH, tempK = hkdf(self.ck, inputKeyMaterial, 3)
        self.mixHash(tempH)
        self._cipher = CipherState(tempK[:KEYLEN])

    def encryptAndHash(self, plaintext: bytes) -> bytes:
        """Encrypt with ``h`` as AD when a key exists (else pass through), then MixHash."""
        out = plaintext if self._cipher is None else self._cipher.encryptWithAd(self.h, plaintext)
        self.mixHash(out)
        return out

    def decryptAndHash(self, data: bytes) -> bytes:
        out = data if self._cipher is None else self._cipher.decryptWithAd(self.h, data)
        self.mixHash(data)
        return out

    def split(self) -> tuple[CipherState, CipherState]:
        """(initiator -> responder, responder -> initiator) transport ciphers."""
        if self._cipher is None:
            raise NoiseError("Noise split before any key was mixed")
        k1, k2 = hkdf(self.ck, b"", 2)
        return CipherState(k1[:KEYLEN]), CipherState(k2[:KEYLEN])
