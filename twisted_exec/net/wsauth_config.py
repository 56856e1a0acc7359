"""The ``--ws-*`` options of the local websocket, checked and resolved into the mode enforced.

:class:`WsAuthArgs` holds the options as given; :meth:`WsAuthArgs.check` reports the flag
combinations the reference refuses (with its messages), without touching any file, and
:meth:`WsAuthArgs.resolve` reads the secret files into a :class:`CapabilityToken` (only the
token's SHA-256 is kept) or a :class:`SignedBearerToken`. The checks of an upgrade request are in
:mod:`.wsauth`, the JWT in :mod:`.wsauth_jwt`.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from twisted_exec.net.configfile import readOrFail

DEFAULT_MAX_CLOCK_SKEW_SECONDS = 30
MIN_SIGNED_BEARER_SECRET_BYTES = 32
I64_MAX = 2**63 - 1
I64_MIN = -(2**63)

CAPABILITY_TOKEN = "capability-token"
SIGNED_BEARER_TOKEN = "signed-bearer-token"
MODES = (CAPABILITY_TOKEN, SIGNED_BEARER_TOKEN)


class WsAuthConfigError(Exception):
    """The ``--ws-*`` options do not make a usable configuration; ``str()`` is the message."""


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
    raw = readOrFail(
        Path(path).read_bytes,
        lambda e: WsAuthConfigError(
            f"failed to read websocket auth secret {path}: {e.strerror} (os error {e.errno})"
        ),
    )
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
            if skew is not None and not 0 <= skew <= I64_MAX:
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
