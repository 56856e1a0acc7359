"""The environment registry's request bodies, parsed as strictly as Codex 0.171 parses them.

A public key is ``{"suite", "x25519_public_key", "mlkem768_public_key"}`` (upstream's
``NoiseChannelPublicKey``, ``deny_unknown_fields``): the one suite, standard padded base64 in
its canonical spelling, exactly 32 and 1184 bytes. A body is one JSON object without duplicate
fields or non-JSON constants; unknown top-level fields are ignored, as serde does by default.
Every refusal is a :class:`RegistryError`: a status and the cloud's error body.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from twisted_exec.rendezvous.registry import errorBody

Reply = tuple[int, dict[str, Any]]

SECURITY_PROFILE = "noise_hybrid_ik_v1"
NOISE_SUITE = "Noise_hybridIK_X25519+MLKEM768_AESGCM_SHA256"
X25519_KEY_BYTES = 32
MLKEM768_KEY_BYTES = 1184
KEY_FIELDS = frozenset({"suite", "x25519_public_key", "mlkem768_public_key"})


class RegistryError(Exception):
    """A refusal: ``status`` and the cloud's error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def reply(self) -> Reply:
        return self.status, errorBody(self.code, self.message)


@dataclass(frozen=True)
class NoisePublicKey:
    """A party's static key: X25519 (32 bytes) and ML-KEM-768 (1184 bytes)."""

    x25519: bytes
    mlkem768: bytes

    def toJson(self) -> dict[str, str]:
        return {
            "suite": NOISE_SUITE,
            "x25519_public_key": base64.b64encode(self.x25519).decode("ascii"),
            "mlkem768_public_key": base64.b64encode(self.mlkem768).decode("ascii"),
        }

    def __repr__(self) -> str:
        return f"<NoisePublicKey x25519={self.x25519[:4].hex()}...>"


def _strictBase64(text: str, size: int, name: str) -> bytes:
    """Standard padded base64 of exactly ``size`` bytes, in its one canonical spelling."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise RegistryError(400, "invalid_public_key", f"{name} is not valid base64") from None
    if len(raw) != size:
        raise RegistryError(
            400, "invalid_public_key", f"{name} must be {size} bytes, got {len(raw)}"
        )
    if base64.b64encode(raw).decode("ascii") != text:
        raise RegistryError(400, "invalid_public_key", f"{name} is not canonical base64")
    return raw


def parsePublicKey(value: Any, field: str) -> NoisePublicKey:
    """``{suite, x25519_public_key, mlkem768_public_key}``, as strictly as 0.171 parses it
    (``deny_unknown_fields``; the one suite; exact key sizes)."""
    if not isinstance(value, dict):
        raise RegistryError(400, "invalid_public_key", f"{field} must be an object")
    unknown = sorted(set(value) - KEY_FIELDS)
    if unknown:
        raise RegistryError(400, "invalid_public_key", f"unknown field `{unknown[0]}` in {field}")
    missing = sorted(KEY_FIELDS - set(value))
    if missing:
        raise RegistryError(400, "invalid_public_key", f"missing field `{missing[0]}` in {field}")
    if any(not isinstance(value[k], str) for k in KEY_FIELDS):
        raise RegistryError(400, "invalid_public_key", f"the fields of {field} must be strings")
    if value["suite"] != NOISE_SUITE:
        raise RegistryError(
            400, "invalid_public_key", f"unsupported suite in {field}: expected {NOISE_SUITE}"
        )
    return NoisePublicKey(
        _strictBase64(value["x25519_public_key"], X25519_KEY_BYTES, f"{field}.x25519_public_key"),
        _strictBase64(
            value["mlkem768_public_key"], MLKEM768_KEY_BYTES, f"{field}.mlkem768_public_key"
        ),
    )


def _noDuplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise RegistryError(400, "invalid_request", f"duplicate field `{key}`")
        result[key] = value
    return result


def _rejectConstant(name: str) -> Any:
    raise RegistryError(400, "invalid_request", f"{name} is not JSON")


def parseBody(body: bytes) -> dict[str, Any]:
    """The request's JSON object (unknown top-level fields are ignored, as serde does)."""
    try:
        value = json.loads(
            body.decode("utf-8"), object_pairs_hook=_noDuplicates, parse_constant=_rejectConstant
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise RegistryError(400, "invalid_request", "request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise RegistryError(400, "invalid_request", "request body must be a JSON object")
    return value


def string(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str):
        raise RegistryError(400, "invalid_request", f"`{field}` must be a string")
    return value
