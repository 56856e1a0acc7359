"""Secrets in environments: never handed to a child, and gone from our own once read.

The executor's credentials (the registry bearer, an API key, the local websocket's token or JWT
secret) reach it through its environment or files. Two leaks follow unless we act:

- **Children.** ``process/start`` with ``envPolicy {inherit: "all", ignoreDefaultExcludes:
  true}`` (what the Codex CLI sends) gives the child the executor's whole environment, bearer
  included, and the command is whatever the model chose. :class:`SecretScrubber` removes the
  known credential *names* and any variable whose *value* holds a secret we learned (a token
  copied under another name), whatever the policy asked for.
- **Our own environment.** ``/proc/<pid>/environ`` (readable by the same user, and by root)
  shows the environment block the kernel laid out at ``exec``; ``unsetenv`` only edits libc's
  pointer array, never that block. :func:`scrubOwnEnvironment` overwrites the values in the block
  itself (its bounds are ``env_start``/``env_end`` in ``/proc/self/stat``) with NUL bytes, then
  removes the names from ``os.environ`` (and so from libc's ``environ``). Afterwards
  ``/proc/<pid>/environ`` still lists ``NAME=`` followed by NULs: the name, never the value.
  Where the block cannot be written (not Linux, no ``/proc``) the variables are still removed
  from ``os.environ``, and the function says so.

Better still is never to put the secret in the environment: ``--registration-bearer-stdin`` and
``--registration-bearer-file`` (and the ``--ws-*-file`` options) read it from a pipe or a file.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable, Mapping, MutableMapping

#: Credential variables of the executor, the rendezvous and codex-exec: never passed to a child.
SECRET_VARIABLES = frozenset(
    {
        "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN",
        "CODEX_API_KEY",
        "CODEX_ACCESS_TOKEN",
        "CODEX_EXEC_SERVER_NOISE_AUTH_TOKEN",
        "CODEX_EXEC_SERVER_WS_TOKEN",
        "CODEX_RENDEZVOUS_TOKEN",
        "CODEX_RENDEZVOUS_TOKENS",
    }
)
#: Values shorter than this are not matched by value (they would match innocent text).
MIN_SECRET_CHARS = 8


class SecretScrubber:
    """Removes secret names and secret-bearing values from a child's environment."""

    def __init__(self, names: Iterable[str] = SECRET_VARIABLES) -> None:
        self.names = frozenset(names)
        self._values: set[str] = set()

    def __repr__(self) -> str:
        return f"<SecretScrubber {len(self.names)} names, {len(self._values)} values>"

    def learn(self, secret: str | bytes | None) -> None:
        """A secret value (a token, a JWT secret) no child may see, under any name."""
        if isinstance(secret, bytes):
            try:
                secret = secret.decode("utf-8")
            except UnicodeDecodeError:
                return
        if secret and len(secret.strip()) >= MIN_SECRET_CHARS:
            self._values.add(secret.strip())

    def isSecret(self, name: str, value: str) -> bool:
        return name in self.names or any(secret in value for secret in self._values)

    def scrub(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` without the secret names and values (order kept): for what is inherited."""
        return {k: v for k, v in env.items() if not self.isSecret(k, v)}

    def scrubValues(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` without variables holding a learned secret value (order kept): for the
        final environment, where a name the harness set itself is the harness's business."""
        if not self._values:
            return dict(env)
        return {k: v for k, v in env.items() if not any(s in v for s in self._values)}


def _environBlock() -> tuple[int, int] | None:
    """The address range of our exec-time environment block (Linux ≥ 3.5), or ``None``."""
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    # Fields after "(comm)" start at field 3; env_start and env_end are fields 50 and 51.
    try:
        start, end = int(fields[50 - 3]), int(fields[51 - 3])
    except (IndexError, ValueError):
        return None
    return (start, end) if 0 < start < end else None


def _blankInBlock(names: set[str], scrubber: SecretScrubber | None) -> bool:
    block = _environBlock()
    if block is None:
        return False
    start, end = block
    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return False
    if len(raw) > end - start:
        return False
    offset = 0
    for entry in raw.split(b"\0"):
        name, eq, value = entry.partition(b"=")
        if eq and value:
            text = name.decode("utf-8", "replace")
            if text in names or (
                scrubber is not None and scrubber.isSecret(text, value.decode("utf-8", "replace"))
            ):
                ctypes.memset(start + offset + len(name) + 1, 0, len(value))
        offset += len(entry) + 1
    return True


def scrubOwnEnvironment(
    names: Iterable[str] = SECRET_VARIABLES,
    scrubber: SecretScrubber | None = None,
    environ: MutableMapping[str, str] | None = None,
) -> bool:
    """Remove ``names`` (and values ``scrubber`` knows) from our environment, block included.

    Returns whether the exec-time block (what ``/proc/<pid>/environ`` shows) was rewritten.
    ``environ`` defaults to ``os.environ``; pass a dict to test without touching the process.
    """
    env = os.environ if environ is None else environ
    doomed = {
        k for k, v in env.items() if k in set(names) or (scrubber and scrubber.isSecret(k, v))
    }
    rewritten = _blankInBlock(doomed | set(names), scrubber) if environ is None else False
    for name in doomed:
        env.pop(name, None)
    return rewritten
