"""The signed websocket bearer: an HS256 JWT, parsed as strictly as Codex 0.171 parses it.

The JWT is parsed here, strictly (canonical unpadded base64url, JSON objects without repeated
known fields, typed claims), because the reference's decoder is strict and PyJWT's ``decode`` is
lenient in places (padding, ``b64``) and strict in others (it refuses ``crit`` headers the
reference accepts); the HMAC itself is PyJWT's HS256, compared in constant time. ``exp`` is
required (an integer), ``nbf`` optional, both with the mode's clock skew of slack; ``iss`` and
``aud`` (a string or a list of strings) are checked only when the mode names them. ``iat``,
``sub``, ``jti``, ``typ`` and ``crit`` are not looked at; any other algorithm is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from twisted_exec.net.wsauth_config import I64_MAX, I64_MIN, SignedBearerToken

INVALID_JWT = "invalid websocket jwt"
EXPIRED_JWT = "expired websocket jwt"
NOT_YET_VALID_JWT = "websocket jwt is not valid yet"
ISSUER_MISMATCH = "websocket jwt issuer mismatch"
AUDIENCE_MISMATCH = "websocket jwt audience mismatch"

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64urlStrict(segment: str) -> bytes | None:
    """Unpadded, canonical base64url (the reference's ``URL_SAFE_NO_PAD``), else ``None``."""
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != segment:
        return None  # non-zero unused bits in the last symbol
    return raw


class _InvalidError(Exception):
    pass


def _strictObject(raw: bytes, known: frozenset[str]) -> dict[str, Any]:
    """A JSON object as serde reads one into a struct: a repeated known field is an error."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen and key in known:
                raise _InvalidError
            seen[key] = value
        return seen

    def constant(name: str) -> Any:
        raise _InvalidError  # NaN, Infinity: not JSON for serde

    def integer(text: str) -> Any:
        return float(text) if text == "-0" else int(text)  # serde reads -0 as a float

    try:
        value = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=pairs,
            parse_constant=constant,
            parse_int=integer,
        )
    except (ValueError, RecursionError, _InvalidError):
        raise _InvalidError from None
    if not isinstance(value, dict):
        raise _InvalidError
    return value


_HEADER_FIELDS = frozenset(
    {"typ", "alg", "cty", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256"}
)
_CLAIM_FIELDS = frozenset({"exp", "nbf", "iss", "aud"})


def _isI64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and I64_MIN <= value <= I64_MAX


def _checkHeader(header: Mapping[str, Any]) -> None:
    if header.get("alg") != "HS256":
        raise _InvalidError
    for name in ("typ", "cty", "jku", "kid", "x5u", "x5t", "x5t#S256"):
        if header.get(name) is not None and not isinstance(header[name], str):
            raise _InvalidError
    x5c = header.get("x5c")
    if x5c is not None and not (isinstance(x5c, list) and all(isinstance(x, str) for x in x5c)):
        raise _InvalidError
    if header.get("jwk") is not None and not isinstance(header["jwk"], dict):
        raise _InvalidError


def _audiences(claims: Mapping[str, Any]) -> list[str] | None:
    aud = claims.get("aud")
    if aud is None:
        return None
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return aud
    raise _InvalidError


def _verifyHs256(signingInput: bytes, secret: bytes, signature: bytes) -> bool:
    from jwt import get_algorithm_by_name

    algorithm: Any = get_algorithm_by_name("HS256")
    return bool(algorithm.verify(signingInput, algorithm.prepare_key(secret), signature))


def verifySignedBearer(token: str, mode: SignedBearerToken, now: int) -> str | None:
    """``None`` for a good JWT, else the reference's 401 body for it."""
    parts = token.split(".")
    if len(parts) != 3:
        return INVALID_JWT
    decoded = [_b64urlStrict(part) for part in parts]
    headerRaw, claimsRaw, signature = decoded
    if headerRaw is None or claimsRaw is None or signature is None:
        return INVALID_JWT
    try:
        _checkHeader(_strictObject(headerRaw, _HEADER_FIELDS))
        signingInput = f"{parts[0]}.{parts[1]}".encode()
        if not _verifyHs256(signingInput, mode.secret, signature):
            return INVALID_JWT
        claims = _strictObject(claimsRaw, _CLAIM_FIELDS)
        exp, nbf, iss = claims.get("exp"), claims.get("nbf"), claims.get("iss")
        if not _isI64(exp) or (nbf is not None and not _isI64(nbf)):
            return INVALID_JWT
        if iss is not None and not isinstance(iss, str):
            return INVALID_JWT
        audiences = _audiences(claims)
    except _InvalidError:
        return INVALID_JWT
    assert isinstance(exp, int)
    skew = mode.maxClockSkewSeconds
    if now > min(exp + skew, I64_MAX):
        return EXPIRED_JWT
    if nbf is not None and now < max(nbf - skew, I64_MIN):
        return NOT_YET_VALID_JWT
    if mode.issuer is not None and iss != mode.issuer:
        return ISSUER_MISMATCH
    if mode.audience is not None and mode.audience not in (audiences or []):
        return AUDIENCE_MISMATCH
    return None


def mintSignedBearer(secret: bytes, claims: Mapping[str, Any]) -> str:
    """An HS256 JWT for ``claims`` (clients and tests; PyJWT does the encoding)."""
    import jwt

    return jwt.encode(dict(claims), secret, algorithm="HS256")
