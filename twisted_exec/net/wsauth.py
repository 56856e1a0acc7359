"""Who may open the local websocket: Origin, Host and bearer checks, as Codex 0.171 answers them.

Sans-IO: the listener hands in the request's raw header values and the time, and gets ``None``
(admit) or a :class:`Refusal` (status and body). Every answer was probed on the 0.171 binary
(``codex exec-server --listen ws://127.0.0.1:0 --ws-auth ...``; ``scripts/ws_auth_side_by_side.py``
shows both executors' answers next to each other):

- an ``Origin`` header (any value, empty included, on any path) is a ``403`` with an empty body:
  a web page can always make the browser open a websocket to loopback, but never without
  ``Origin``;
- ``--ws-auth capability-token`` (``--ws-token-file F`` or ``--ws-token-sha256 HEX``): the client
  sends ``Authorization: Bearer <token>``; we keep only the token's SHA-256 and compare digests in
  constant time;
- ``--ws-auth signed-bearer-token`` (``--ws-shared-secret-file F``, at least 32 bytes once
  trimmed): the bearer is an HS256 JWT. ``exp`` is required (an integer), ``nbf`` optional, both
  with ``--ws-max-clock-skew-seconds`` (default 30) of slack; ``iss`` and ``aud`` (a string or a
  list of strings) are checked only when ``--ws-issuer`` / ``--ws-audience`` are given. ``iat``,
  ``sub``, ``jti``, ``typ`` and ``crit`` are not looked at, any other algorithm is refused;
- a refusal is ``401`` with a ``text/plain`` body naming the reason (``missing websocket bearer
  token``, ``invalid authorization header``, ``invalid websocket bearer token``, ``invalid
  websocket jwt``, ``expired websocket jwt``, ``websocket jwt is not valid yet``, ``websocket jwt
  issuer mismatch``, ``websocket jwt audience mismatch``), checked in that order.

The JWT is parsed here, strictly (canonical unpadded base64url, JSON objects without repeated
known fields, typed claims), because the reference's decoder is strict and PyJWT's ``decode`` is
lenient in places (padding, ``b64``) and strict in others (it refuses ``crit`` headers the
reference accepts); the HMAC itself is PyJWT's HS256, compared in constant time.

Two checks are ours alone (the reference has neither): a ``Host`` that names neither loopback nor
the listening address is refused (DNS rebinding; ``403 Forbidden: Host header is not allowed``),
and :func:`listenerProblem` refuses to listen beyond loopback without ``--ws-auth`` unless the
operator says ``--insecure-no-auth`` (the reference listens and logs a warning).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MAX_CLOCK_SKEW_SECONDS = 30
MIN_SIGNED_BEARER_SECRET_BYTES = 32
_I64_MAX = 2**63 - 1
_I64_MIN = -(2**63)

CAPABILITY_TOKEN = "capability-token"
SIGNED_BEARER_TOKEN = "signed-bearer-token"
MODES = (CAPABILITY_TOKEN, SIGNED_BEARER_TOKEN)

MISSING_BEARER = "missing websocket bearer token"
INVALID_HEADER = "invalid authorization header"
INVALID_TOKEN = "invalid websocket bearer token"
INVALID_JWT = "invalid websocket jwt"
EXPIRED_JWT = "expired websocket jwt"
NOT_YET_VALID_JWT = "websocket jwt is not valid yet"
ISSUER_MISMATCH = "websocket jwt issuer mismatch"
AUDIENCE_MISMATCH = "websocket jwt audience mismatch"
HOST_NOT_ALLOWED = "Forbidden: Host header is not allowed"


class WsAuthConfigError(Exception):
    """The ``--ws-*`` options do not make a usable configuration; ``str()`` is the message."""


@dataclass(frozen=True)
class Refusal:
    """An upgrade refused: the HTTP status and the ``text/plain`` body (empty for 403 Origin)."""

    status: int
    body: str


def sha256(data: bytes) -> bytes:
    # hashlib, not cryptography's hashes: the same digest without loading cryptography's
    # bindings into every executor at start-up (tests/test_startup_imports.py)
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class CapabilityToken:
    """``--ws-auth capability-token``: only the token's digest is kept."""

    tokenSha256: bytes = field(repr=False)

    def __repr__(self) -> str:
        return "<CapabilityToken>"


@dataclass(frozen=True)
class SignedBearerToken:
    """``--ws-auth signed-bearer-token``: an HS256 JWT signed with ``secret``."""

    secret: bytes = field(repr=False)
    issuer: str | None = None
    audience: str | None = None
    maxClockSkewSeconds: int = DEFAULT_MAX_CLOCK_SKEW_SECONDS

    def __repr__(self) -> str:
        return (
            f"<SignedBearerToken issuer={self.issuer!r} audience={self.audience!r} "
            f"skew={self.maxClockSkewSeconds}s>"
        )


WsAuthMode = CapabilityToken | SignedBearerToken


def readTrimmedSecret(path: str) -> str:
    """A secret file's text without surrounding whitespace (the reference's rule)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise WsAuthConfigError(
            f"failed to read websocket auth secret {path}: {e.strerror} (os error {e.errno})"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WsAuthConfigError(
            f"failed to read websocket auth secret {path}: stream did not contain valid UTF-8"
        ) from None
    trimmed = text.strip()
    if not trimmed:
        raise WsAuthConfigError(f"websocket auth secret {path} must not be empty")
    return trimmed


@dataclass(frozen=True)
class WsAuthArgs:
    """The ``--ws-*`` options as given (``None`` when absent)."""

    mode: str | None = None
    tokenFile: str | None = None
    tokenSha256: str | None = None
    sharedSecretFile: str | None = None
    issuer: str | None = None
    audience: str | None = None
    maxClockSkewSeconds: int | None = None

    def check(self) -> None:
        """The flag-combination errors, without touching any file (for option parsing)."""
        signedOnly = (
            self.sharedSecretFile is not None
            or self.issuer is not None
            or self.audience is not None
            or self.maxClockSkewSeconds is not None
        )
        capabilityOnly = self.tokenFile is not None or self.tokenSha256 is not None
        if self.mode is None:
            if signedOnly or capabilityOnly:
                raise WsAuthConfigError(
                    "websocket auth flags require `--ws-auth capability-token` or "
                    "`--ws-auth signed-bearer-token`"
                )
            return
        if self.mode == CAPABILITY_TOKEN:
            if signedOnly:
                raise WsAuthConfigError(
                    "`--ws-shared-secret-file`, `--ws-issuer`, `--ws-audience`, and "
                    "`--ws-max-clock-skew-seconds` require `--ws-auth signed-bearer-token`"
                )
            if self.tokenFile is not None and self.tokenSha256 is not None:
                raise WsAuthConfigError(
                    "`--ws-token-file` and `--ws-token-sha256` are mutually exclusive"
                )
            if not capabilityOnly:
                raise WsAuthConfigError(
                    "`--ws-token-file` or `--ws-token-sha256` is required when "
                    "`--ws-auth capability-token` is set"
                )
            if self.tokenSha256 is not None and not re.fullmatch(
                r"[0-9a-fA-F]{64}", self.tokenSha256
            ):
                raise WsAuthConfigError(
                    "--ws-token-sha256 must be a 64-character hex SHA-256 digest"
                )
            return
        if self.mode == SIGNED_BEARER_TOKEN:
            if capabilityOnly:
                raise WsAuthConfigError(
                    "`--ws-token-file` and `--ws-token-sha256` require `--ws-auth "
                    "capability-token`, not `signed-bearer-token`"
                )
            if self.sharedSecretFile is None:
                raise WsAuthConfigError(
                    "`--ws-shared-secret-file` is required when `--ws-auth "
                    "signed-bearer-token` is set"
                )
            skew = self.maxClockSkewSeconds
            if skew is not None and not 0 <= skew <= _I64_MAX:
                raise WsAuthConfigError(
                    "websocket auth clock skew must fit in a signed 64-bit integer"
                )
            return
        raise WsAuthConfigError(
            f"invalid value {self.mode!r} for --ws-auth (possible values: "
            "capability-token, signed-bearer-token)"
        )

    def resolve(self, cwd: str | None = None) -> WsAuthMode | None:
        """Read the secret files: the mode the listener enforces (``None``: no auth).

        Relative paths are taken from ``cwd`` (the reference resolves them the same way).
        """
        self.check()
        base = cwd if cwd is not None else os.getcwd()

        def absolute(path: str) -> str:
            return path if os.path.isabs(path) else os.path.join(base, path)

        if self.mode == CAPABILITY_TOKEN:
            if self.tokenSha256 is not None:
                return CapabilityToken(bytes.fromhex(self.tokenSha256))
            assert self.tokenFile is not None
            token = readTrimmedSecret(absolute(self.tokenFile))
            return CapabilityToken(sha256(token.encode()))
        if self.mode == SIGNED_BEARER_TOKEN:
            assert self.sharedSecretFile is not None
            path = absolute(self.sharedSecretFile)
            secret = readTrimmedSecret(path).encode()
            if len(secret) < MIN_SIGNED_BEARER_SECRET_BYTES:
                raise WsAuthConfigError(
                    f"signed websocket bearer secret {path} must be at least "
                    f"{MIN_SIGNED_BEARER_SECRET_BYTES} bytes"
                )

            def normalize(value: str | None) -> str | None:
                return value.strip() or None if value is not None else None

            skew = self.maxClockSkewSeconds
            return SignedBearerToken(
                secret,
                normalize(self.issuer),
                normalize(self.audience),
                DEFAULT_MAX_CLOCK_SKEW_SECONDS if skew is None else skew,
            )
        return None


# -- the checks of one upgrade request ----------------------------------------------------


def originRefusal(origins: Sequence[bytes] | None) -> Refusal | None:
    """Any ``Origin`` header at all: ``403`` with an empty body (as 0.171, on every path)."""
    if origins:
        return Refusal(403, "")
    return None


def _hostName(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else host
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _isLoopbackOrEqual(name: str, bindHost: str) -> bool:
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if address.is_loopback:
        return True
    try:
        return address == ipaddress.ip_address(bindHost)
    except ValueError:
        return False


def isWildcard(bindHost: str) -> bool:
    try:
        return ipaddress.ip_address(bindHost).is_unspecified
    except ValueError:
        return False


def isLoopback(bindHost: str) -> bool:
    if bindHost == "localhost":
        return True
    try:
        return ipaddress.ip_address(bindHost).is_loopback
    except ValueError:
        return False


def hostRefusal(hosts: Sequence[bytes] | None, bindHost: str) -> Refusal | None:
    """A ``Host`` naming neither loopback nor ``bindHost`` (any port: tunnels remap ports).

    A wildcard bind (``0.0.0.0``, ``::``) has no one name to hold the header to; it requires
    ``--ws-auth`` (or ``--insecure-no-auth``), and browsers, the rebinding attack's vehicle,
    always send the ``Origin`` that is refused first. No ``Host`` at all is admitted, as by the
    reference (only HTTP/1.0 clients omit it).
    """
    if not hosts or isWildcard(bindHost):
        return None
    try:
        name = _hostName(hosts[0].decode("ascii"))
    except UnicodeDecodeError:
        return Refusal(403, HOST_NOT_ALLOWED)
    if _isLoopbackOrEqual(name, bindHost):
        return None
    return Refusal(403, HOST_NOT_ALLOWED)


def bearerToken(authorizations: Sequence[bytes] | None) -> str | Refusal:
    """The bearer of the first ``Authorization`` header, or the reference's 401 for it."""
    if not authorizations:
        return Refusal(401, MISSING_BEARER)
    raw = authorizations[0]
    if any(not (0x20 <= b <= 0x7E or b == 0x09) for b in raw):
        return Refusal(401, INVALID_HEADER)
    text = raw.decode("ascii")
    scheme, space, token = text.partition(" ")
    if not space or scheme.lower() != "bearer":
        return Refusal(401, INVALID_HEADER)
    token = token.strip()
    if not token:
        return Refusal(401, INVALID_HEADER)
    return token


def authorizeUpgrade(
    mode: WsAuthMode | None, authorizations: Sequence[bytes] | None, now: float
) -> Refusal | None:
    """``None`` when the upgrade may proceed, else the 401 to answer."""
    if mode is None:
        return None
    token = bearerToken(authorizations)
    if isinstance(token, Refusal):
        return token
    if isinstance(mode, CapabilityToken):
        if hmac.compare_digest(sha256(token.encode()), mode.tokenSha256):
            return None
        return Refusal(401, INVALID_TOKEN)
    problem = verifySignedBearer(token, mode, int(now // 1))
    return None if problem is None else Refusal(401, problem)


# -- the signed bearer (JWT) ------------------------------------------------------------------

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
    return isinstance(value, int) and not isinstance(value, bool) and _I64_MIN <= value <= _I64_MAX


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
    if now > min(exp + skew, _I64_MAX):
        return EXPIRED_JWT
    if nbf is not None and now < max(nbf - skew, _I64_MIN):
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


# -- start-up -------------------------------------------------------------------------------


def listenerProblem(bindHost: str, mode: WsAuthMode | None, insecureNoAuth: bool) -> str | None:
    """Why the executor must not listen on ``bindHost`` as configured (``None``: it may)."""
    if mode is not None or insecureNoAuth or isLoopback(bindHost):
        return None
    return (
        f"refusing to listen on {bindHost} without websocket auth: anyone who can reach it "
        "could run commands as this user. Configure `--ws-auth capability-token` or "
        "`--ws-auth signed-bearer-token`, listen on loopback (ws://127.0.0.1:PORT, reached "
        "through an SSH tunnel), or pass --insecure-no-auth"
    )


# -- the client side ---------------------------------------------------------------------------

#: Where a client (harness library, codex-exec, tests) finds the local websocket's bearer.
TOKEN_ENV = "CODEX_EXEC_SERVER_WS_TOKEN"
TOKEN_FILE_ENV = "CODEX_EXEC_SERVER_WS_TOKEN_FILE"


def clientBearer(
    tokenFile: str | None = None,
    environ: Mapping[str, str] | None = None,
    read: Callable[[str], str] = readTrimmedSecret,
) -> str | None:
    """The bearer a client sends: ``tokenFile``, else ``$CODEX_EXEC_SERVER_WS_TOKEN_FILE``,
    else ``$CODEX_EXEC_SERVER_WS_TOKEN``; ``None`` when there is none."""
    env = os.environ if environ is None else environ
    path = tokenFile or env.get(TOKEN_FILE_ENV) or None
    if path is not None:
        return read(path)
    token = env.get(TOKEN_ENV, "").strip()
    return token or None


def authorizationHeader(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}
