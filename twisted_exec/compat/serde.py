"""serde's derive rules, as decoders: what the reference accepts for a field and what it says
when a value does not fit (``invalid type: integer `5`, expected a string``, ...).

:mod:`twisted_exec.compat.params` (0.131) and :mod:`twisted_exec.compat.params171` build their
``*Params`` structs from these; :mod:`twisted_exec.compat.fsparams171` builds 0.171's fs structs
from them too, passing its own wording of a type error (an :data:`InvalidType`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from twisted_exec.compat.base64strict import decodeBase64Strict
from twisted_exec.wire.errors import RpcError, invalidParams

U64_MAX = 2**64 - 1


def describe(value: object) -> str:
    """serde's ``Unexpected`` rendering of a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        if -(2**63) <= value <= U64_MAX:
            return f"integer `{value}`"
        return f"floating point `{_rustFloat(float(value))}`"
    if isinstance(value, float):
        return f"floating point `{_rustFloat(value)}`"
    if isinstance(value, str):
        return f"string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, list):
        return "sequence"
    if isinstance(value, dict):
        return "map"
    return "unknown"


def _rustFloat(value: float) -> str:
    """Rust's ``Display`` for f64 as serde prints it (``1.5``, ``1.8446744073709552e+19``)."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e16:
        return f"{int(value)}"
    text = repr(value)
    if "e" in text:
        mantissa, exp = text.split("e")
        sign = "-" if exp.startswith("-") else "+"
        return f"{mantissa}e{sign}{exp.lstrip('+-').lstrip('0') or '0'}"
    return text


def invalidType(value: object, expected: str) -> RpcError:
    return invalidParams(f"invalid type: {describe(value)}, expected {expected}")


#: How a dialect words a value of the wrong type: :func:`invalidType` (0.131) or
#: ``compat/fsparams171.invalidType171``. The decoders below take one, so both dialects share
#: serde's rules and differ only in that wording.
InvalidType = Callable[[object, str], RpcError]

Decoder = Callable[[object], Any]

V = TypeVar("V")


def exactly(
    pytype: type[V], expected: str, invalid: InvalidType = invalidType
) -> Callable[[object], V]:
    """A field of one JSON type (``String``, ``bool``, ``PathBuf``): the value as it is."""

    def decode(value: object) -> V:
        if not isinstance(value, pytype):
            raise invalid(value, expected)
        return value

    return decode


string = exactly(str, "a string")


boolean = exactly(bool, "a boolean")


#: A ``PathBuf``: any string; relative paths are refused later, where the reference does.
pathString = exactly(str, "path string")  # noqa: N816 (a decoder, named as functions are)


def base64Of(text: Callable[[object], str]) -> Callable[[object], bytes]:
    """A base64 string decoded while the params are decoded, as the reference's serde
    deserializer does: a bad chunk is -32602 even before ``initialize`` (probed). ``text`` is
    the dialect's ``string``."""

    def decode(value: object) -> bytes:
        try:
            return decodeBase64Strict(text(value))
        except ValueError as err:
            raise invalidParams(str(err)) from None

    return decode


base64Bytes = base64Of(string)  # noqa: N816 (a decoder, named as functions are)


def _unsigned(name: str, maximum: int) -> Decoder:
    def decode(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalidType(value, name)
        if value < 0 or value > maximum:
            if value > U64_MAX:
                raise invalidType(value, name)
            raise invalidParams(f"invalid value: integer `{value}`, expected {name}")
        return value

    return decode


u64 = _unsigned("u64", U64_MAX)


usize = _unsigned("usize", U64_MAX)


u32 = _unsigned("u32", 2**32 - 1)


u16 = _unsigned("u16", 2**16 - 1)


def absolutePath(value: object) -> str:
    """An ``AbsolutePathBuf``: relative paths are a params error."""
    path = pathString(value)
    if not path.startswith("/"):
        raise invalidParams("AbsolutePathBuf deserialized without a base path")
    return path


def optional(decoder: Decoder) -> Decoder:
    """``Option<T>``: null is None."""

    def decode(value: object) -> Any:
        return None if value is None else decoder(value)

    return decode


def sequenceOf(decoder: Decoder, invalid: InvalidType = invalidType) -> Decoder:
    def decode(value: object) -> list[Any]:
        if not isinstance(value, list):
            raise invalid(value, "a sequence")
        return [decoder(item) for item in value]

    return decode


def mapOf(decoder: Decoder, invalid: InvalidType = invalidType) -> Decoder:
    def decode(value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid(value, "a map")
        return {key: decoder(item) for key, item in value.items()}

    return decode


def enum(*variants: str) -> Decoder:
    expected = ", ".join(f"`{v}`" for v in variants)

    def decode(value: object) -> str:
        if not isinstance(value, str):
            raise invalidType(value, "string or map")
        if value not in variants:
            raise invalidParams(f"unknown variant `{value}`, expected one of {expected}")
        return value

    return decode


@dataclass(frozen=True)  # not compat/record.frozen: read on every decode, see decisions
class Field:
    """One struct field: its wire name, decoder, and whether it may be absent.

    ``required``: absent from a map is an error. ``seqDefault`` marks a field with
    ``#[serde(default)]``: in the sequence form it takes its default when the array ends before
    it (an ``Option`` without that attribute does not). ``default`` is what an absent field
    becomes (None unless the Rust default is a value, as 0.171's ``mode: read``).
    """

    wire: str
    decoder: Decoder
    required: bool = True
    seqDefault: bool = False
    default: Any = None


T = TypeVar("T")


def decodeStruct(
    value: object, name: str, fields: tuple[Field, ...], invalid: InvalidType = invalidType
) -> dict[str, Any]:
    """serde's derived ``Deserialize`` for a struct, in map or sequence form: the decoded
    fields by wire name (the caller builds its value from them)."""
    found: dict[str, Any] = {}
    if isinstance(value, dict):
        byWire = {f.wire: f for f in fields}
        for key, raw in value.items():
            spec = byWire.get(key)
            if spec is not None:
                found[key] = spec.decoder(raw)
        for spec in fields:
            if spec.wire not in found:
                if spec.required:
                    raise invalidParams(f"missing field `{spec.wire}`")
                found[spec.wire] = spec.default
        return found
    if isinstance(value, list):
        count = len(fields)
        noun = "element" if count == 1 else "elements"
        for index, spec in enumerate(fields):
            if index < len(value):
                found[spec.wire] = spec.decoder(value[index])
            elif spec.seqDefault:
                found[spec.wire] = spec.default
            else:
                # serde names the index of the first field it could not fill
                raise invalidParams(
                    f"invalid length {index}, expected struct {name} with {count} {noun}"
                )
        if len(value) > count:
            # serde_json's Value deserializer, once the struct is complete (probed)
            raise invalidParams(f"invalid length {len(value)}, expected fewer elements in array")
        return found
    raise invalid(value, f"struct {name}")


def struct(
    name: str, *fields: Field, invalid: InvalidType = invalidType
) -> Callable[[type[T]], type[T]]:
    """Attach a ``fromJson`` classmethod decoding ``name`` with ``fields`` onto a dataclass."""

    def attach(cls: type[T]) -> type[T]:
        def fromJson(klass: type[T], value: object) -> T:
            return klass(**decodeStruct(value, name, fields, invalid))

        cls.fromJson = classmethod(fromJson)  # type: ignore[attr-defined]
        cls.structName = name  # type: ignore[attr-defined]
        return cls

    return attach
