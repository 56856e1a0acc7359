"""Session scripts (``conformance/*.json``): parsing, validation, substitution and matching.

No IO beyond reading the files; conformance/README.md describes the step language.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ScriptError(ValueError):
    """A session script is malformed."""


STEP_KINDS = ("send", "sendText", "sendBinary", "open", "close", "sleepMs", "collect")
STEP_OPTIONS = ("conn", "until", "quietMs", "timeoutMs", "capture", "note")
SETUP_OPS = {"mkdir": 1, "write": 2, "symlink": 2, "chmod": 2}


@dataclass
class SessionScript:
    name: str
    description: str
    steps: list[dict[str, Any]]
    setup: list[list[Any]] = field(default_factory=list)
    mergeOutput: frozenset[str] = frozenset()


def parseScript(name: str, text: str) -> SessionScript:
    """Parse and validate one session script (JSON text)."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ScriptError(f"{name}: not JSON: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
        raise ScriptError(f"{name}: expected an object with a 'steps' list")
    setup = doc.get("setup", [])
    merge = doc.get("mergeOutput", [])
    if not (isinstance(merge, list) and all(isinstance(p, str) for p in merge)):
        raise ScriptError(f"{name}: 'mergeOutput' must be a list of processIds")
    if not isinstance(setup, list):
        raise ScriptError(f"{name}: 'setup' must be a list")
    for op in setup:
        if not (isinstance(op, list) and op and op[0] in SETUP_OPS):
            raise ScriptError(f"{name}: bad setup op {op!r}")
        if len(op) != SETUP_OPS[op[0]] + 1:
            raise ScriptError(f"{name}: setup op {op[0]} takes {SETUP_OPS[op[0]]} arguments")
    for i, step in enumerate(doc["steps"]):
        if not isinstance(step, dict):
            raise ScriptError(f"{name}: step {i} is not an object")
        kinds = [k for k in STEP_KINDS if k in step]
        if len(kinds) != 1:
            raise ScriptError(f"{name}: step {i} needs exactly one of {STEP_KINDS}: {step!r}")
        unknown = set(step) - set(STEP_KINDS) - set(STEP_OPTIONS)
        if unknown:
            raise ScriptError(f"{name}: step {i} has unknown keys {sorted(unknown)}")
        until = step.get("until")
        if until is not None and not (
            isinstance(until, list) and all(isinstance(m, dict) for m in until)
        ):
            raise ScriptError(f"{name}: step {i}: 'until' must be a list of objects")
        cap = step.get("capture")
        if cap is not None and not (isinstance(cap, dict) and "send" in step):
            raise ScriptError(f"{name}: step {i}: 'capture' needs a send step and an object")
    return SessionScript(
        name=name,
        description=str(doc.get("description", "")),
        steps=list(doc["steps"]),
        setup=setup,
        mergeOutput=frozenset(str(p) for p in doc.get("mergeOutput", [])),
    )


def loadScripts(directory: Path, only: Iterable[str] = ()) -> list[SessionScript]:
    wanted = set(only)
    scripts = []
    for path in sorted(directory.glob("*.json")):
        if wanted and path.stem not in wanted:
            continue
        scripts.append(parseScript(path.stem, path.read_text(encoding="utf-8")))
    return scripts


_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute(value: Any, variables: dict[str, str]) -> Any:
    """Replace ``${NAME}`` in strings, and expand ``{"__b64": text}`` /
    ``{"__b64repeat": [text, n]}`` helper objects into base64 strings."""
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            if m.group(1) not in variables:
                raise ScriptError(f"undefined variable ${{{m.group(1)}}}")
            return variables[m.group(1)]

        return _VAR_RE.sub(repl, value)
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__b64"}:
            raw = substitute(value["__b64"], variables)
            return base64.b64encode(raw.encode("utf-8")).decode()
        if set(value) == {"__b64repeat"}:
            text, count = value["__b64repeat"]
            return base64.b64encode(str(text).encode("utf-8") * int(count)).decode()
        return {k: substitute(v, variables) for k, v in value.items()}
    return value


def matches(pattern: Any, value: Any) -> bool:
    """Subset match: every key of a pattern object must match in ``value``."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and matches(v, value[k]) for k, v in pattern.items()
        )
    return bool(pattern == value and type(pattern) is type(value))


def lookup(message: Any, dotted: str) -> Any:
    cur = message
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def connectionCount(script: Any) -> int:
    """How many connections a session opens (the first one implicitly)."""
    named = {step["open"] for step in script.steps if "open" in step}
    return max(1, len(named | {"a"}) if not named else len(named))
