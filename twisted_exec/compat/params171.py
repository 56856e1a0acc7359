"""Decoding rules that differ in Codex 0.171's params (see ``compat/params.py`` for the rest).

Probed on the 0.171.0 binary:

- its serde_json keeps numbers as text (``arbitrary_precision``), so a number where none belongs
  is ``invalid type: number, expected a string`` (0.131: ``integer `5```), and an integer field
  given a negative, fractional or too large number is ``invalid number`` (0.131: ``invalid value:
  integer `-1`, expected u64``): :func:`decode171` rewrites 0.131's messages into these;
- paths are ``file:`` URIs (:func:`pathUri`, errors from ``compat/fileuri.py``);
- ``metadata.threadId`` is a UUID parsed by the ``uuid`` crate, whose error texts
  :func:`uuidString` reproduces;
- methods without params (``environment/info``) take serde's unit: null, absent or ``{}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from twisted_exec.compat.fileuri import FileUri, UriParseError, parseUri
from twisted_exec.compat.params import describe, string
from twisted_exec.wire.errors import RpcError, invalidParams

T = TypeVar("T")

_INTEGER_TYPES = frozenset({"u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64"})
_NUMBER_TYPE_RE = re.compile(r"^invalid type: (?:integer|floating point) `[^`]*`, expected (.+)$")
_NUMBER_VALUE_RE = re.compile(r"^invalid value: integer `[^`]*`, expected (\w+)$")


def numberMessage(message: str) -> str:
    """0.131's serde message about a number, as 0.171's ``arbitrary_precision`` build says it."""
    match = _NUMBER_TYPE_RE.match(message)
    if match is not None:
        expected = match.group(1)
        return (
            "invalid number"
            if expected in _INTEGER_TYPES
            else f"invalid type: number, expected {expected}"
        )
    match = _NUMBER_VALUE_RE.match(message)
    if match is not None and match.group(1) in _INTEGER_TYPES:
        return "invalid number"
    return message


def decode171(decode: Callable[[object], T]) -> Callable[[object], T]:
    """Wrap a 0.131-style decoder so its -32602 messages read as 0.171's."""

    def decodeWith171Numbers(raw: object) -> T:
        try:
            return decode(raw)
        except RpcError as err:
            raise RpcError(err.code, numberMessage(err.message)) from None

    return decodeWith171Numbers


def variant(*names: str) -> Callable[[object], str]:
    """A unit-variant enum, with serde's wording of the expected variants (one: `a`; two:
    `a` or `b`; more: one of `a`, `b`, `c`); ``compat/params.enum`` always says "one of"."""
    quoted = [f"`{n}`" for n in names]
    if len(quoted) == 1:
        expected = quoted[0]
    elif len(quoted) == 2:
        expected = f"{quoted[0]} or {quoted[1]}"
    else:
        expected = "one of " + ", ".join(quoted)

    def decode(value: object) -> str:
        if not isinstance(value, str):
            raise invalidParams(
                numberMessage(f"invalid type: {describe(value)}, expected string or map")
            )
        if value not in names:
            raise invalidParams(f"unknown variant `{value}`, expected {expected}")
        return value

    return decode


def pathUri(value: object) -> FileUri:
    """A ``PathUri`` field: a string that parses as a ``file:`` URI."""
    text = string(value)
    try:
        return parseUri(text)
    except UriParseError as err:
        raise invalidParams(err.message) from None


def unitParams(value: object) -> None:
    """serde's unit, as 0.171 takes the params of ``environment/info``: null, absent, ``{}``."""
    if value is None or value == {}:
        return None
    raise invalidParams(numberMessage(f"invalid type: {describe(value)}, expected unit"))


_GROUPS = (0, 9, 14, 19, 24)
_GROUP_LENGTHS = (8, 4, 4, 4, 12)
_HEX = frozenset("0123456789abcdefABCDEF")


def _validUuid(text: str) -> bool:
    if len(text) == 32:
        return all(c in _HEX for c in text)
    if len(text) == 38 and text[0] == "{" and text[-1] == "}":
        text = text[1:-1]
    elif len(text) == 45 and text.startswith("urn:uuid:"):
        text = text[9:]
    if len(text) != 36:
        return False
    return all((c == "-") if i in (8, 13, 18, 23) else (c in _HEX) for i, c in enumerate(text))


def uuidError(text: str) -> str:
    """The ``uuid`` crate's error for a string it does not parse (its ``InvalidUuid::into_err``)."""
    if text.startswith("{") and text.endswith("}") and len(text) >= 2:
        body, offset, simple = text[1:-1], 1, False
    elif text.startswith("urn:uuid:"):
        body, offset, simple = text[9:], 9, False
    else:
        body, offset, simple = text, 0, True
    hyphens: list[int] = []
    position = 0  # byte index, as Rust counts
    for ch in body:
        if ch == "-":
            hyphens.append(position)
        elif not (ch.isascii() and ch in _HEX):
            return (
                "invalid character: expected an optional prefix of `urn:uuid:` followed by "
                f"[0-9a-fA-F-], found `{ch}` at {position + offset + 1}"
            )
        position += len(ch.encode("utf-8"))
    if not hyphens and simple:
        return f"invalid length: expected length 32 for simple format, found {len(text.encode())}"
    if len(hyphens) != 4:
        return f"invalid group count: expected 5, found {len(hyphens) + 1}"
    for group in range(4):
        if hyphens[group] != _GROUPS[group + 1] - 1:
            found = hyphens[group] - _GROUPS[group]
            return (
                f"invalid group length in group {group}: expected {_GROUP_LENGTHS[group]}, "
                f"found {found}"
            )
    found = len(text.encode()) - _GROUPS[4]
    return f"invalid group length in group 4: expected 12, found {found}"


def uuidString(value: object) -> str:
    """A ``ThreadId`` (a UUID in any of the crate's four spellings), kept as sent."""
    text = string(value)
    if not _validUuid(text):
        raise invalidParams(uuidError(text))
    return text


def anyMap(name: str, required: tuple[str, ...] = ()) -> Callable[[object], dict[str, Any]]:
    """A struct we accept but do not act on: a map (or null) with ``required`` keys present."""

    def decode(value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalidParams(
                numberMessage(f"invalid type: {describe(value)}, expected struct {name}")
            )
        for key in required:
            if key not in value:
                raise invalidParams(f"missing field `{key}`")
        return value

    return decode


__all__ = [
    "anyMap",
    "decode171",
    "numberMessage",
    "pathUri",
    "unitParams",
    "uuidError",
    "uuidString",
    "variant",
]
