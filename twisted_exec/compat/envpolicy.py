"""``process/start``'s ``env``/``envPolicy`` → the child's exact environment.

Probed on the reference (0.131.0):

- without ``envPolicy``, ``env`` is the whole environment of the child;
- with it: start from the executor's own environment (``inherit``: ``all``, ``core`` or ``none``),
  drop names matching ``*KEY*``/``*SECRET*``/``*TOKEN*`` unless ``ignoreDefaultExcludes``, drop
  names matching an ``exclude`` glob, insert ``set`` (not filtered by the excludes), keep only names
  matching an ``includeOnly`` glob when that list is non-empty, and finally lay ``env`` over it;
- every name match is case-insensitive (``core`` keeps a variable named ``path``; ``foo*`` drops
  ``FOOBAR``); globs know only ``*`` and ``?`` (``[H]OME`` matches the literal name ``[H]OME``,
  not ``HOME``);
- the child's environment is sorted by name (Rust's ``Command`` keeps it in a ``BTreeMap``), with
  or without ``envPolicy``: ``/usr/bin/env`` prints it in that order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

from twisted_exec.compat.params import ExecEnvPolicy

#: ``inherit: core`` keeps exactly these names (compared case-insensitively), as probed.
CORE_VARS = frozenset(
    {
        "HOME",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "LOGNAME",
        "PATH",
        "SHELL",
        "TEMP",
        "TMP",
        "TMPDIR",
        "USER",
    }
)

DEFAULT_EXCLUDES = ("*KEY*", "*SECRET*", "*TOKEN*")


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    """``*`` and ``?`` are wildcards; every other character, ``[`` included, is literal."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body + r"\Z", re.IGNORECASE | re.DOTALL)


def matchesAny(name: str, patterns: Iterable[str]) -> bool:
    return any(_compile(pattern).match(name) for pattern in patterns)


def childEnvironment(
    env: Mapping[str, str], policy: ExecEnvPolicy | None, environ: Mapping[str, str]
) -> dict[str, str]:
    """The environment the child gets; ``environ`` is the executor's own."""
    if policy is None:
        return dict(sorted(env.items()))
    if policy.inherit == "all":
        result = dict(environ)
    elif policy.inherit == "core":
        result = {k: v for k, v in environ.items() if k.upper() in CORE_VARS}
    else:
        result = {}
    excludes = list(policy.exclude)
    if not policy.ignoreDefaultExcludes:
        excludes[:0] = DEFAULT_EXCLUDES
    if excludes:
        result = {k: v for k, v in result.items() if not matchesAny(k, excludes)}
    result.update(policy.set)
    if policy.includeOnly:
        result = {k: v for k, v in result.items() if matchesAny(k, policy.includeOnly)}
    result.update(env)
    return dict(sorted(result.items()))
