"""The executor's credentials: where they come from, and where they must never go.

- ``--ws-auth`` and its ``--ws-*`` options (``net/wsauth``: the 0.171 checks of the local
  websocket), and ``--insecure-no-auth`` for a bind beyond loopback without them;
- the registry bearer: ``$CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN`` as before, or, so that it is in
  no environment at all, ``--registration-bearer-stdin`` (one line on stdin, as 0.171's option
  of that name) or ``--registration-bearer-file F``;
- :func:`secureEnvironment`: once read, every credential is blanked from our own environment
  block (``/proc/<pid>/environ``) and learned by the :class:`SecretScrubber` that every
  ``process/start`` passes its child environment through, whatever its ``envPolicy``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import IO, Any

from twisted.python import usage

from twisted_exec.net.secretenv import SECRET_VARIABLES, SecretScrubber, scrubOwnEnvironment
from twisted_exec.net.wsauth_config import (
    MODES,
    WsAuthArgs,
    WsAuthConfigError,
    WsAuthMode,
    readTrimmedSecret,
)

REGISTRATION_TOKEN_ENV = "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN"

WS_AUTH_PARAMETERS: list[list[Any]] = [
    [
        "ws-auth",
        None,
        None,
        "Authentication of incoming websocket connections: capability-token or "
        "signed-bearer-token (as Codex 0.171). Required to listen beyond loopback.",
    ],
    ["ws-token-file", None, None, "capability-token: the file holding the token."],
    ["ws-token-sha256", None, None, "capability-token: the token's SHA-256, in hex."],
    [
        "ws-shared-secret-file",
        None,
        None,
        "signed-bearer-token: the HS256 secret file (at least 32 bytes).",
    ],
    ["ws-issuer", None, None, "signed-bearer-token: the required `iss` claim."],
    ["ws-audience", None, None, "signed-bearer-token: the required `aud` claim."],
    [
        "ws-max-clock-skew-seconds",
        None,
        None,
        "signed-bearer-token: slack on `exp` and `nbf`, in seconds (default 30).",
    ],
    [
        "registration-bearer-file",
        None,
        None,
        "Remote mode: read the registry bearer from this file instead of "
        f"${REGISTRATION_TOKEN_ENV}.",
    ],
]

SECURITY_FLAGS: list[list[Any]] = [
    [
        "insecure-no-auth",
        None,
        "Listen beyond loopback without --ws-auth: anyone who reaches the port runs commands.",
    ],
    [
        "registration-bearer-stdin",
        None,
        f"Remote mode: read the registry bearer from one line of stdin instead of "
        f"${REGISTRATION_TOKEN_ENV}.",
    ],
]


def wsAuthArgs(options: Mapping[str, Any]) -> WsAuthArgs:
    skew = options.get("ws-max-clock-skew-seconds")
    if skew is not None:
        if not str(skew).isdigit():
            raise usage.UsageError(
                f"invalid value {skew!r} for --ws-max-clock-skew-seconds: expected a number "
                "of seconds (0 or more)"
            )
        skew = int(skew)
    return WsAuthArgs(
        mode=options.get("ws-auth"),
        tokenFile=options.get("ws-token-file"),
        tokenSha256=options.get("ws-token-sha256"),
        sharedSecretFile=options.get("ws-shared-secret-file"),
        issuer=options.get("ws-issuer"),
        audience=options.get("ws-audience"),
        maxClockSkewSeconds=skew,
    )


def checkOptions(options: Mapping[str, Any]) -> None:
    """``postOptions``: the flag combinations (no file is read yet)."""
    mode = options.get("ws-auth")
    if mode is not None and mode not in MODES:
        raise usage.UsageError(
            f"invalid value {mode!r} for --ws-auth (possible values: {', '.join(MODES)})"
        )
    args = wsAuthArgs(options)
    try:
        args.check()
    except WsAuthConfigError as err:
        raise usage.UsageError(str(err)) from None
    if mode is not None and options.get("listen") in ("stdio", "stdio://"):
        raise usage.UsageError("WebSocket auth requires a WebSocket listener, not stdio")
    fromStdin = bool(options.get("registration-bearer-stdin"))
    fromFile = options.get("registration-bearer-file") is not None
    if fromStdin and fromFile:
        raise usage.UsageError(
            "--registration-bearer-stdin and --registration-bearer-file are mutually exclusive"
        )
    if (fromStdin or fromFile) and options.get("remote") is None:
        raise usage.UsageError("--registration-bearer-* options are for remote mode (--remote URL)")
    if fromStdin and options.get("listen") in ("stdio", "stdio://"):
        raise usage.UsageError("--registration-bearer-stdin cannot be used with --listen stdio")


def wsAuth(options: Mapping[str, Any], scrubber: SecretScrubber) -> WsAuthMode | None:
    """Read the ``--ws-*`` files; a configuration error is twistd's ``Error: ...``, exit 1."""
    args = wsAuthArgs(options)
    try:
        mode = args.resolve()
    except WsAuthConfigError as err:
        raise SystemExit(f"Error: {err}") from None
    for path in (args.tokenFile, args.sharedSecretFile):
        if path is not None:
            scrubber.learn(readTrimmedSecret(path))
    return mode


def registrationEnviron(
    options: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    stdin: IO[str] | None = None,
) -> Mapping[str, str]:
    """The mapping ``RemoteConfig.fromInputs`` reads the bearer from.

    ``--registration-bearer-stdin`` reads one line (before the reactor runs, like a file);
    ``--registration-bearer-file`` reads a file; otherwise the variable from our environment
    (copied).
    """
    env = os.environ if environ is None else environ
    if options.get("registration-bearer-stdin"):
        line = (stdin if stdin is not None else sys.stdin).readline()
        return {REGISTRATION_TOKEN_ENV: line.strip()}
    path = options.get("registration-bearer-file")
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                return {REGISTRATION_TOKEN_ENV: f.read().strip()}
        except (OSError, UnicodeDecodeError) as err:
            raise SystemExit(
                f"Error: cannot read the registration bearer file {path}: "
                f"{getattr(err, 'strerror', None) or err}"
            ) from None
    # A copy: our environment is about to lose the variable (secureEnvironment).
    return (
        {REGISTRATION_TOKEN_ENV: env[REGISTRATION_TOKEN_ENV]}
        if REGISTRATION_TOKEN_ENV in env
        else {}
    )


def secureEnvironment(scrubber: SecretScrubber, *secrets: str | None) -> bool:
    """Learn ``secrets`` and blank every credential from our own environment block.

    Returns whether ``/proc/self/environ`` itself could be rewritten (see ``net/secretenv``).
    """
    for secret in secrets:
        scrubber.learn(secret)
    return scrubOwnEnvironment(SECRET_VARIABLES, scrubber)
