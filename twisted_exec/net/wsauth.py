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

The options become a mode in :mod:`.wsauth_config`; the JWT is parsed in :mod:`.wsauth_jwt`.

Two checks are ours alone (the reference has neither): a ``Host`` that names neither loopback nor
the listening address is refused (DNS rebinding; ``403 Forbidden: Host header is not allowed``),
and :func:`listenerProblem` refuses to listen beyond loopback without ``--ws-auth`` unless the
operator says ``--insecure-no-auth`` (the reference listens and logs a warning).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from twisted_exec.net.wsauth_config import (
    CapabilityToken,
    WsAuthMode,
    readTrimmedSecret,
    sha256,
)
from twisted_exec.net.wsauth_jwt import verifySignedBearer

MISSING_BEARER = "missing websocket bearer token"
INVALID_HEADER = "invalid authorization header"
INVALID_TOKEN = "invalid websocket bearer token"
HOST_NOT_ALLOWED = "Forbidden: Host header is not allowed"


@dataclass(frozen=True)
class Refusal:
    """An upgrade refused: the HTTP status and the ``text/plain`` body (empty for 403 Origin)."""

    status: int
    body: str


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
