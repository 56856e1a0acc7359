"""Tenancy of the rendezvous: which credential owns an id, and which ids a credential may reach.

Sans IO. Each accepted bearer token is a :class:`Principal`. The rules:

- **First registration owns.** An executor (or environment) id belongs to the principal whose
  registration first claimed it, for the life of the rendezvous process. Another principal's
  registration of that id is refused with ``409`` and the holder keeps it: its websocket is
  never replaced, its streams never rerouted (a reconnect of the holder itself still replaces
  its own half-open websocket, as before).
- **Harnesses reach their own.** A principal's harnesses (websocket ``/harness/{id}``, the
  ``GET /cloud/executors`` listing) reach the ids it registered, plus those its ``reach=`` scope
  names. Another tenant's id is ``403``; an id nobody registered stays ``404`` (registration
  itself tells free ids from held ones, with ``409``).
- **Caps.** A principal registers at most ``maxExecutors`` ids (``--max-executors-per-token``,
  or ``max-executors=`` on its line); one more is ``429``.

The tokens file (``--tokens-file``) has one token per line, then optional ``key=value`` fields;
``#`` starts a comment line::

    # token                                 fields (all optional)
    3f9c...executor-box-token               name=box register=box
    7d1e...ci-harness-token                 name=ci reach=box,build-*  register=
    a0b2...operator-token                   name=ops reach=*

- ``name=LABEL``: how logs call this credential (never the token; default ``token#N``);
- ``register=ID[,ID...]``: the ids it may register (``*`` globs; empty: none; default: any id
  not held by another);
- ``reach=ID[,ID...]``: ids its harnesses may reach besides its own (``*``: every id);
- ``max-executors=N``: its own cap on registered ids.

Tokens from ``$CODEX_RENDEZVOUS_TOKENS`` or ``$CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN`` have no
fields: one token shared by an executor and its harnesses (the one-machine setup) works as
before, and two tokens are two tenants.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from twisted_exec.net.wsauth_config import sha256

DEFAULT_MAX_EXECUTORS = 64
EXECUTOR = "executor"
ENVIRONMENT = "environment"


class TokensFileError(ValueError):
    """A tokens file line that cannot be understood; ``str()`` names the line, not the token."""


@lru_cache(maxsize=1024)
def _pattern(glob: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in glob) + r"\Z", re.S)


def matches(patterns: Sequence[str], ident: str) -> bool:
    return any(_pattern(p).match(ident) for p in patterns)


@dataclass(frozen=True)
class Principal:
    """One accepted credential. ``digest`` is the token's SHA-256; the token is not kept."""

    name: str
    digest: bytes = field(repr=False)
    register: tuple[str, ...] | None = None  # None: any id not held by another
    reach: tuple[str, ...] = ()
    maxExecutors: int | None = None

    def __repr__(self) -> str:
        return f"<Principal {self.name}>"


@dataclass(frozen=True)
class Denial:
    """A refusal: HTTP status, the cloud error body's ``code`` and ``message``."""

    status: int
    code: str
    message: str


def parsePrincipal(line: str, index: int) -> tuple[str, Principal]:
    """``TOKEN [key=value ...]`` → (token, principal); ``index`` numbers default names."""
    fields = line.split()
    token, options = fields[0], fields[1:]
    name = f"token#{index}"
    register: tuple[str, ...] | None = None
    reach: tuple[str, ...] = ()
    maxExecutors: int | None = None
    for option in options:
        key, eq, value = option.partition("=")
        ids = tuple(v for v in value.split(",") if v)
        if not eq:
            raise TokensFileError(f"{name}: expected key=value after the token, got {option!r}")
        if key == "name":
            if not value:
                raise TokensFileError(f"{name}: name= needs a label")
            name = value
        elif key == "register":
            register = ids
        elif key == "reach":
            reach = ids
        elif key == "max-executors":
            if not value.isdigit():
                raise TokensFileError(f"{name}: max-executors= needs a number, got {value!r}")
            maxExecutors = int(value)
        else:
            raise TokensFileError(
                f"{name}: unknown field {key!r} (known: name, register, reach, max-executors)"
            )
    return token, Principal(name, sha256(token.encode()), register, reach, maxExecutors)


def parseTokensFile(text: str) -> list[tuple[str, Principal]]:
    entries: list[tuple[str, Principal]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            entries.append(parsePrincipal(stripped, len(entries) + 1))
    return entries


class Tenancy:
    """Who owns which id, who may register and reach what."""

    def __init__(self, maxExecutors: int | None = DEFAULT_MAX_EXECUTORS) -> None:
        self.maxExecutors = maxExecutors
        self._owners: dict[tuple[str, str], Principal] = {}
        self._counts: dict[tuple[bytes, str], int] = {}

    def owner(self, kind: str, ident: str) -> Principal | None:
        return self._owners.get((kind, ident))

    def owned(self, principal: Principal, kind: str = EXECUTOR) -> int:
        return self._counts.get((principal.digest, kind), 0)

    def registrationDenial(
        self, principal: Principal | None, kind: str, ident: str
    ) -> Denial | None:
        """Why ``principal`` may not register ``ident`` now (``None``: it may)."""
        if principal is None:
            return None
        noun = f"{kind} id {ident!r}"
        if principal.register is not None and not matches(principal.register, ident):
            return Denial(403, "forbidden", f"this token may not register {noun}")
        holder = self.owner(kind, ident)
        if holder is not None:
            if hmac.compare_digest(holder.digest, principal.digest):
                return None
            return Denial(409, f"{kind}_id_taken", f"{noun} is registered by another credential")
        cap = principal.maxExecutors if principal.maxExecutors is not None else self.maxExecutors
        if cap is not None and self.owned(principal, kind) >= cap:
            return Denial(
                429,
                f"too_many_{kind}s",
                f"this token already registered {cap} {kind} ids (limit {cap})",
            )
        return None

    def claim(self, principal: Principal | None, kind: str, ident: str) -> Denial | None:
        """Register ``ident`` for ``principal`` (idempotent for the holder)."""
        denial = self.registrationDenial(principal, kind, ident)
        if denial is None and principal is not None and self.owner(kind, ident) is None:
            self._owners[(kind, ident)] = principal
            key = (principal.digest, kind)
            self._counts[key] = self._counts.get(key, 0) + 1
        return denial

    def mayReach(self, principal: Principal | None, kind: str, ident: str) -> bool:
        if principal is None:
            return True
        if matches(principal.reach, ident):
            return True
        holder = self.owner(kind, ident)
        return holder is not None and hmac.compare_digest(holder.digest, principal.digest)

    def reachDenial(self, principal: Principal | None, kind: str, ident: str) -> Denial | None:
        if self.mayReach(principal, kind, ident):
            return None
        return Denial(403, "forbidden", f"this token may not reach {kind} {ident!r}")


def authenticate(principals: Iterable[Principal], token: str | None) -> Principal | None:
    """The principal of ``token``; every digest is compared (constant time in the content)."""
    if not token:
        return None
    digest = sha256(token.encode())
    found: Principal | None = None
    for principal in principals:
        if hmac.compare_digest(digest, principal.digest) and found is None:
            found = principal
    return found
