"""Credentials of the rendezvous: accepted bearer tokens, and the signed executor URLs.

Tokens come from the environment or a file, never from the command line (``ps`` shows argv to
every user). They are compared in constant time and never logged.

An executor's websocket URL carries ``sig=<exp>.<nonce>.<mac>``: an HMAC-SHA256, keyed with a
secret only the service knows, over the executor id, the expiry time and a random nonce. It is
valid for ``ttl`` seconds and only once (spent nonces are remembered until they expire), so a URL
seen in a log or a proxy cannot be used to impersonate the executor later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from twisted.internet.interfaces import IReactorTime

from twisted_exec.net.configfile import readOrFail
from twisted_exec.rendezvous.tenancy import (
    Principal,
    TokensFileError,
    authenticate,
    parsePrincipal,
    parseTokensFile,
)

TOKENS_ENV = "CODEX_RENDEZVOUS_TOKENS"
FALLBACK_TOKEN_ENV = "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN"
DEFAULT_SIGNATURE_TTL = 60.0


class TokenConfigError(Exception):
    """No usable token configuration; ``str()`` is the operator-facing message."""


def _split(text: str) -> list[str]:
    return [t for t in text.replace(",", " ").split() if t and not t.startswith("#")]


class TokenSet:
    """The bearer tokens the service accepts, each a tenant (``tenancy.Principal``).

    Only the tokens' SHA-256 digests are kept; a token's fields (``name=``, ``register=``,
    ``reach=``, ``max-executors=``) come from its line in the tokens file.
    """

    def __init__(self, tokens: Iterable[str | tuple[str, Principal]]) -> None:
        principals: dict[bytes, Principal] = {}
        for entry in tokens:
            if isinstance(entry, tuple):
                principal = entry[1]
            else:
                token = entry.strip()
                if not token:
                    continue
                principal = parsePrincipal(token, len(principals) + 1)[1]
            principals.setdefault(principal.digest, principal)
        self.principals: tuple[Principal, ...] = tuple(principals.values())

    def __repr__(self) -> str:
        return f"<TokenSet of {len(self.principals)} token(s)>"

    def __len__(self) -> int:
        return len(self.principals)

    def principal(self, token: str | None) -> Principal | None:
        """The tenant ``token`` authenticates; constant time in the token's content."""
        return authenticate(self.principals, token)

    def principalFor(self, header: str | bytes | None) -> Principal | None:
        """The tenant of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
        if header is None:
            return None
        if isinstance(header, bytes):
            header = header.decode("latin-1")
        scheme, _, token = header.strip().partition(" ")
        return self.principal(token.strip()) if scheme.lower() == "bearer" else None

    def check(self, token: str | None) -> bool:
        """Whether ``token`` is one of ours; constant time in the token's content."""
        return self.principal(token) is not None

    def checkAuthorization(self, header: str | None) -> bool:
        """``Authorization: Bearer <token>`` (scheme case-insensitive)."""
        return self.principalFor(header) is not None

    @classmethod
    def load(
        cls, tokensFile: str | None = None, environ: Mapping[str, str] | None = None
    ) -> TokenSet:
        """Tokens from ``tokensFile`` (one per line, ``#`` comments), else
        ``$CODEX_RENDEZVOUS_TOKENS`` (comma or space separated), else
        ``$CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN``."""
        env = os.environ if environ is None else environ
        if tokensFile is not None:
            text = readOrFail(
                Path(tokensFile).read_text,
                lambda e: TokenConfigError(
                    f"cannot read the tokens file {tokensFile}: {e.strerror}"
                ),
            )
            try:
                entries: list[Any] = list(parseTokensFile(text))
            except TokensFileError as e:
                raise TokenConfigError(f"the tokens file {tokensFile}: {e}") from None
            tokens = entries
            where = f"the tokens file {tokensFile}"
        elif env.get(TOKENS_ENV, "").strip():
            tokens = list(_split(env[TOKENS_ENV]))
            where = f"${TOKENS_ENV}"
        else:
            tokens = list(_split(env.get(FALLBACK_TOKEN_ENV, "")))
            where = f"${FALLBACK_TOKEN_ENV}"
        if not tokens:
            raise TokenConfigError(
                f"no bearer tokens configured: set ${TOKENS_ENV} (or ${FALLBACK_TOKEN_ENV}) "
                f"or pass --tokens-file (nothing usable in {where})"
            )
        return cls(tokens)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class UrlSigner:
    """Mints and checks the single-use, expiring ``sig`` of executor websocket URLs."""

    def __init__(
        self, clock: IReactorTime, secret: bytes | None = None, ttl: float = DEFAULT_SIGNATURE_TTL
    ) -> None:
        self._clock = clock
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self.ttl = ttl
        self._spent: dict[str, float] = {}  # nonce -> expiry

    def __repr__(self) -> str:
        return f"<UrlSigner ttl={self.ttl:g}s>"

    def _mac(self, executorId: str, expiry: int, nonce: str) -> str:
        message = f"{executorId}\n{expiry}\n{nonce}".encode()
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())

    def sign(self, executorId: str) -> str:
        expiry = int(self._clock.seconds() + self.ttl) + 1
        nonce = _b64(secrets.token_bytes(12))
        return f"{expiry}.{nonce}.{self._mac(executorId, expiry, nonce)}"

    def verify(self, executorId: str, sig: str | None) -> bool:
        """True once for a genuine, unexpired signature of ``executorId``; it is spent then."""
        if not sig:
            return False
        parts = sig.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            return False
        expiry, nonce, mac = int(parts[0]), parts[1], parts[2]
        if not hmac.compare_digest(mac.encode(), self._mac(executorId, expiry, nonce).encode()):
            return False
        now = self._clock.seconds()
        self._spent = {n: e for n, e in self._spent.items() if e >= now}
        if expiry < now or nonce in self._spent:
            return False
        self._spent[nonce] = expiry
        return True
