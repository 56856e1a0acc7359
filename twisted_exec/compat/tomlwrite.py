"""TOML text as the Rust ``toml`` crate's ``to_string`` writes it, for ``environmentConfig/read``.

0.171 answers ``environmentConfig/read`` with the selected parts of the user's ``config.toml``,
re-serialised (probed): plain values first, then every table under its dotted header (inline
tables become standard tables; a table with only sub-tables gets no header of its own), arrays of
tables as ``[[name]]``, one blank line between sections, strings in double quotes unless they
contain one (then single quotes), bare keys where the key allows it.

:func:`select` keeps the requested key paths of a parsed document, in the document's order.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Sequence
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def select(document: dict[str, Any], paths: Sequence[Sequence[str]]) -> dict[str, Any]:
    """The parts of ``document`` at ``paths``; a non-table on the way is kept whole."""
    wanted: dict[str, Any] = {}
    for path in paths:
        _merge(wanted, document, list(path))
    return _inOrder(document, wanted)


def _merge(into: dict[str, Any], source: dict[str, Any], path: list[str]) -> None:
    key, rest = path[0], path[1:]
    if key not in source:
        return
    value = source[key]
    if not rest or not isinstance(value, dict):
        into[key] = value
        return
    sub = into.get(key)
    if not isinstance(sub, dict) or sub is value:
        if key in into and into[key] is value:
            return
        sub = into[key] = {}
    _merge(sub, value, rest)


def _inOrder(source: dict[str, Any], picked: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in source.items():
        if key not in picked:
            continue
        chosen = picked[key]
        if chosen is not value and isinstance(chosen, dict) and isinstance(value, dict):
            out[key] = _inOrder(value, chosen)
        else:
            out[key] = chosen
    return out


def key(name: str) -> str:
    return name if _BARE_KEY.match(name) else _basic(name)


def _basic(text: str) -> str:
    out = []
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def string(text: str) -> str:
    if '"' in text and "'" not in text and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return f"'{text}'"
    return _basic(text)


def value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        text = repr(v)
        return text if ("." in text or "e" in text) else text + ".0"
    if isinstance(v, str):
        return string(v)
    if isinstance(v, datetime.datetime):
        text = v.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(v, datetime.date | datetime.time):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(value(item) for item in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"not a TOML value: {v!r}")


def _isTableArray(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(item, dict) for item in v)


def dumps(document: dict[str, Any]) -> str:
    """The ``toml`` crate's ``to_string`` of a document."""
    sections: list[str] = []
    _table(document, [], sections, header=False)
    return "\n".join(sections)


def _table(table: dict[str, Any], path: list[str], sections: list[str], *, header: bool) -> None:
    plain = [(k, v) for k, v in table.items() if not isinstance(v, dict) and not _isTableArray(v)]
    lines = [f"{key(k)} = {value(v)}\n" for k, v in plain]
    if lines or (
        header and not any(isinstance(v, dict) or _isTableArray(v) for v in table.values())
    ):
        head = f"[{'.'.join(key(p) for p in path)}]\n" if header else ""
        sections.append(head + "".join(lines))
    for k, v in table.items():
        if isinstance(v, dict):
            _table(v, [*path, k], sections, header=True)
        elif _isTableArray(v):
            for item in v:
                itemPath = [*path, k]
                body = [
                    f"{key(ik)} = {value(iv)}\n"
                    for ik, iv in item.items()
                    if not isinstance(iv, dict) and not _isTableArray(iv)
                ]
                sections.append(f"[[{'.'.join(key(p) for p in itemPath)}]]\n" + "".join(body))
                for ik, iv in item.items():
                    if isinstance(iv, dict):
                        _table(iv, [*itemPath, ik], sections, header=True)


__all__ = ["dumps", "select"]
