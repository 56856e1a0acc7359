"""Static Noise identities and the registry's JSON form of a public key.

A key travels as ``{"suite": SUITE, "x25519_public_key": b64, "mlkem768_public_key": b64}``
(standard padded base64 of 32 and 1184 bytes). Like Codex (serde ``deny_unknown_fields`` on
``NoiseChannelPublicKey``), anything else in the object, a missing field, another suite, bad
base64 or a wrong length is refused.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from twisted_exec.wire.noise.errors import NoiseKeyError

SUITE = "Noise_hybridIK_X25519+MLKEM768_AESGCM_SHA256"
X25519_KEY_BYTES = 32
MLKEM768_PUBLIC_KEY_BYTES = 1184
MLKEM768_CIPHERTEXT_BYTES = 1088
MLKEM768_SEED_BYTES = 64
_FIELDS = frozenset({"suite", "x25519_public_key", "mlkem768_public_key"})


def _b64decode(value: object, what: str, size: int) -> bytes:
    if not isinstance(value, str):
        raise NoiseKeyError(f"{what} is not a string")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise NoiseKeyError(f"invalid {what}") from None
    # Rust's STANDARD engine refuses non-canonical encodings (stray trailing bits); so do we.
    if base64.b64encode(raw).decode("ascii") != value:
        raise NoiseKeyError(f"invalid {what}")
    if len(raw) != size:
        raise NoiseKeyError(f"invalid {what} length")
    return raw


@dataclass(frozen=True)
class NoisePublicKey:
    """The public half of a hybrid identity: an X25519 key and an ML-KEM-768 key."""

    x25519: bytes = field(repr=False)
    mlkem768: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.x25519) != X25519_KEY_BYTES:
            raise NoiseKeyError("invalid X25519 public key length")
        if len(self.mlkem768) != MLKEM768_PUBLIC_KEY_BYTES:
            raise NoiseKeyError("invalid ML-KEM-768 public key length")

    def toJson(self) -> dict[str, str]:
        return {
            "suite": SUITE,
            "x25519_public_key": base64.b64encode(self.x25519).decode("ascii"),
            "mlkem768_public_key": base64.b64encode(self.mlkem768).decode("ascii"),
        }

    @classmethod
    def fromJson(cls, obj: Any) -> NoisePublicKey:
        """Parse the registry form; :class:`NoiseKeyError` for anything Codex would refuse."""
        if not isinstance(obj, dict):
            raise NoiseKeyError("Noise public key is not an object")
        keys = set(obj)
        if keys - _FIELDS:
            raise NoiseKeyError("Noise public key has unknown fields")
        if keys != _FIELDS:
            raise NoiseKeyError("Noise public key is missing fields")
        if obj["suite"] != SUITE:
            raise NoiseKeyError("unsupported Noise channel suite")
        return cls(
            _b64decode(obj["x25519_public_key"], "X25519 public key", X25519_KEY_BYTES),
            _b64decode(
                obj["mlkem768_public_key"], "ML-KEM-768 public key", MLKEM768_PUBLIC_KEY_BYTES
            ),
        )


class NoiseIdentity:
    """A static X25519 + ML-KEM-768 key pair, kept in memory only (as Codex 0.171 does)."""

    __slots__ = ("dh", "kem", "publicKey")

    def __init__(self, dh: x25519.X25519PrivateKey, kem: mlkem.MLKEM768PrivateKey) -> None:
        self.dh = dh
        self.kem = kem
        self.publicKey = NoisePublicKey(
            dh.public_key().public_bytes_raw(), kem.public_key().public_bytes_raw()
        )

    @classmethod
    def generate(cls) -> NoiseIdentity:
        return cls(x25519.X25519PrivateKey.generate(), mlkem.MLKEM768PrivateKey.generate())

    @classmethod
    def fromSecrets(cls, x25519Private: bytes, mlkemSeed: bytes) -> NoiseIdentity:
        """Deterministic identity (tests, vectors): a raw X25519 key and a 64-byte ML-KEM seed."""
        if len(mlkemSeed) != MLKEM768_SEED_BYTES:
            raise NoiseKeyError("ML-KEM-768 seed must be 64 bytes")
        return cls(
            x25519.X25519PrivateKey.from_private_bytes(x25519Private),
            mlkem.MLKEM768PrivateKey.from_seed_bytes(mlkemSeed),
        )

    def __repr__(self) -> str:
        return "NoiseIdentity(<redacted>)"
