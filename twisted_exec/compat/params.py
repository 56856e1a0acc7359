"""Typed method parameters, validated the way the reference's serde derive validates them.

Harnesses see the reference's serde messages (``missing field `processId```, ``invalid type:
integer `5`, expected a string``...), so we reproduce serde's rules rather than invent our own:

- a map is walked in the order its keys arrive; the first bad value is reported;
- then missing required fields are reported in declaration order;
- unknown keys are ignored; a duplicate key keeps the last value (params are a JSON value first);
- a JSON array fills fields positionally (serde accepts the "sequence" form of a struct): a short
  array gives ``invalid length N, expected struct X with M elements``;
- anything else gives ``invalid type: <what>, expected struct X``.

Each ``*Params`` class is a frozen dataclass; :func:`parse` builds one from raw JSON or raises
:class:`~twisted_exec.wire.errors.RpcError` (-32602).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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


# -- field decoders: each takes the raw JSON value and returns the Python value or raises ----------

Decoder = Callable[[object], Any]


def string(value: object) -> str:
    if not isinstance(value, str):
        raise invalidType(value, "a string")
    return value


def base64Bytes(value: object) -> bytes:
    """A base64 string decoded while the params are decoded, as the reference's serde
    deserializer does: a bad chunk is -32602 even before ``initialize`` (probed)."""
    text = string(value)
    try:
        return decodeBase64Strict(text)
    except ValueError as err:
        raise invalidParams(str(err)) from None


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise invalidType(value, "a boolean")
    return value


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


def pathString(value: object) -> str:
    """A ``PathBuf``: any string; relative paths are refused later, where the reference does."""
    if not isinstance(value, str):
        raise invalidType(value, "path string")
    return value


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


def sequenceOf(decoder: Decoder) -> Decoder:
    def decode(value: object) -> list[Any]:
        if not isinstance(value, list):
            raise invalidType(value, "a sequence")
        return [decoder(item) for item in value]

    return decode


def mapOf(decoder: Decoder) -> Decoder:
    def decode(value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalidType(value, "a map")
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


# -- struct machinery --------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One struct field: its wire name, decoder, and whether it may be absent.

    ``seqDefault`` marks a field with ``#[serde(default)]``: in the sequence form it takes its
    default when the array ends before it (an ``Option`` without that attribute does not).
    """

    wire: str
    decoder: Decoder
    required: bool = True
    seqDefault: bool = False


T = TypeVar("T")


def decodeStruct(
    value: object, name: str, fields: tuple[Field, ...], build: Callable[[dict[str, Any]], T]
) -> T:
    """serde's derived ``Deserialize`` for a struct, in map or sequence form."""
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
                found[spec.wire] = None
        return build(found)
    if isinstance(value, list):
        count = len(fields)
        noun = "element" if count == 1 else "elements"
        for index, spec in enumerate(fields):
            if index < len(value):
                found[spec.wire] = spec.decoder(value[index])
            elif spec.seqDefault:
                found[spec.wire] = None
            else:
                # serde names the index of the first field it could not fill
                raise invalidParams(
                    f"invalid length {index}, expected struct {name} with {count} {noun}"
                )
        if len(value) > count:
            # serde_json's Value deserializer, once the struct is complete (probed)
            raise invalidParams(f"invalid length {len(value)}, expected fewer elements in array")
        return build(found)
    raise invalidType(value, f"struct {name}")


def struct(name: str, *fields: Field) -> Callable[[type[T]], type[T]]:
    """Attach a ``fromJson`` classmethod decoding ``name`` with ``fields`` onto a dataclass."""

    def attach(cls: type[T]) -> type[T]:
        def fromJson(klass: type[T], value: object) -> T:
            return decodeStruct(value, name, fields, lambda found: klass(**found))

        cls.fromJson = classmethod(fromJson)  # type: ignore[attr-defined]
        cls.structName = name  # type: ignore[attr-defined]
        return cls

    return attach


def _sandbox(value: object) -> Mapping[str, Any]:
    """``FileSystemSandboxContext``: accepted as a map with ``permissions`` and otherwise ignored.

    twisted-exec runs without Codex's sandbox; see docs/decisions.md.
    """
    if not isinstance(value, dict):
        raise invalidType(value, "struct FileSystemSandboxContext")
    if "permissions" not in value:
        raise invalidParams("missing field `permissions`")
    return value


_SANDBOX = Field("sandbox", optional(_sandbox), required=False)


# -- the methods' parameter types ---------------------------------------------------------------


@struct(
    "InitializeParams",
    Field("clientName", string),
    Field("resumeSessionId", optional(string), False),
)
@dataclass(frozen=True)
class InitializeParams:
    clientName: str
    resumeSessionId: str | None = None


@struct(
    "ExecEnvPolicy",
    Field("inherit", enum("core", "all", "none")),
    Field("ignoreDefaultExcludes", boolean),
    Field("exclude", sequenceOf(string)),
    Field("set", mapOf(string)),
    Field("includeOnly", sequenceOf(string)),
)
@dataclass(frozen=True)
class ExecEnvPolicy:
    inherit: str
    ignoreDefaultExcludes: bool
    exclude: list[str]
    set: dict[str, str]
    includeOnly: list[str]


def _envPolicy(value: object) -> ExecEnvPolicy:
    if not isinstance(value, dict | list):
        raise invalidType(value, "struct ExecEnvPolicy")
    return ExecEnvPolicy.fromJson(value)  # type: ignore[attr-defined,no-any-return]


@struct(
    "ExecParams",
    Field("processId", string),
    Field("argv", sequenceOf(string)),
    Field("cwd", pathString),
    Field("envPolicy", optional(_envPolicy), False),
    Field("env", mapOf(string)),
    Field("tty", boolean),
    Field("pipeStdin", optional(boolean), False),
    Field("arg0", optional(string), False),
)
@dataclass(frozen=True)
class ExecParams:
    processId: str
    argv: list[str]
    cwd: str
    env: dict[str, str]
    tty: bool
    envPolicy: ExecEnvPolicy | None = None
    pipeStdin: bool | None = None
    arg0: str | None = None


@struct(
    "ReadParams",
    Field("processId", string),
    Field("afterSeq", optional(u64), False),
    Field("maxBytes", optional(usize), False),
    Field("waitMs", optional(u64), False),
)
@dataclass(frozen=True)
class ReadParams:
    processId: str
    afterSeq: int | None = None
    maxBytes: int | None = None
    waitMs: int | None = None


@struct("WriteParams", Field("processId", string), Field("chunk", base64Bytes))
@dataclass(frozen=True)
class WriteParams:
    processId: str
    chunk: bytes


@struct("CloseStdinParams", Field("processId", string))
@dataclass(frozen=True)
class CloseStdinParams:
    """``process/closeStdin``: our extension (neither Codex dialect can end a stdin)."""

    processId: str


@struct("ResizeParams", Field("processId", string), Field("rows", u16), Field("cols", u16))
@dataclass(frozen=True)
class ResizeParams:
    """``process/resize``: our extension (the reference's pty is always 24x80)."""

    processId: str
    rows: int
    cols: int


@struct("TerminateParams", Field("processId", string))
@dataclass(frozen=True)
class TerminateParams:
    processId: str


@struct("FsReadFileParams", Field("path", absolutePath), _SANDBOX)
@dataclass(frozen=True)
class FsReadFileParams:
    path: str
    sandbox: Mapping[str, Any] | None = None


@struct("FsWriteFileParams", Field("path", absolutePath), Field("dataBase64", string), _SANDBOX)
@dataclass(frozen=True)
class FsWriteFileParams:
    path: str
    dataBase64: str
    sandbox: Mapping[str, Any] | None = None


@struct(
    "FsCreateDirectoryParams",
    Field("path", absolutePath),
    Field("recursive", optional(boolean), False),
    _SANDBOX,
)
@dataclass(frozen=True)
class FsCreateDirectoryParams:
    path: str
    recursive: bool | None = None
    sandbox: Mapping[str, Any] | None = None


@struct("FsGetMetadataParams", Field("path", absolutePath), _SANDBOX)
@dataclass(frozen=True)
class FsGetMetadataParams:
    path: str
    sandbox: Mapping[str, Any] | None = None


@struct("FsReadDirectoryParams", Field("path", absolutePath), _SANDBOX)
@dataclass(frozen=True)
class FsReadDirectoryParams:
    path: str
    sandbox: Mapping[str, Any] | None = None


@struct(
    "FsRemoveParams",
    Field("path", absolutePath),
    Field("recursive", optional(boolean), False),
    Field("force", optional(boolean), False),
    _SANDBOX,
)
@dataclass(frozen=True)
class FsRemoveParams:
    path: str
    recursive: bool | None = None
    force: bool | None = None
    sandbox: Mapping[str, Any] | None = None


@struct(
    "FsCopyParams",
    Field("sourcePath", absolutePath),
    Field("destinationPath", absolutePath),
    Field("recursive", boolean),
    _SANDBOX,
)
@dataclass(frozen=True)
class FsCopyParams:
    sourcePath: str
    destinationPath: str
    recursive: bool
    sandbox: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class HttpHeader:
    name: str
    value: str


def _header(value: object) -> HttpHeader:
    return decodeStruct(
        value,
        "HttpHeader",
        (Field("name", string), Field("value", string)),
        lambda found: HttpHeader(**found),
    )


@struct(
    "HttpRequestParams",
    Field("method", string),
    Field("url", string),
    # headers and streamResponse are #[serde(default)] non-Options: null is a type error there
    Field("headers", sequenceOf(_header), False, seqDefault=True),
    Field("bodyBase64", optional(string), False, seqDefault=True),
    Field("timeoutMs", optional(u64), False, seqDefault=True),
    Field("requestId", string),
    Field("streamResponse", boolean, False, seqDefault=True),
)
@dataclass(frozen=True)
class HttpRequestParams:
    method: str
    url: str
    requestId: str
    headers: list[HttpHeader] | None = None
    bodyBase64: str | None = None
    timeoutMs: int | None = None
    streamResponse: bool | None = None
    #: Not a 0.131 field: 0.171's ``redirectPolicy: "stop"`` sets it False (methods/http.py).
    followRedirects: bool = True


P = TypeVar("P")


def parse(cls: type[P], raw: object) -> P:
    """Decode ``raw`` (the request's ``params``, None when absent) into ``cls`` or raise -32602."""
    return cls.fromJson(raw)  # type: ignore[attr-defined,no-any-return]


__all__ = [
    "ExecEnvPolicy",
    "ExecParams",
    "FsCopyParams",
    "FsCreateDirectoryParams",
    "FsGetMetadataParams",
    "FsReadDirectoryParams",
    "FsReadFileParams",
    "FsRemoveParams",
    "FsWriteFileParams",
    "HttpHeader",
    "HttpRequestParams",
    "InitializeParams",
    "ReadParams",
    "TerminateParams",
    "WriteParams",
    "describe",
    "field",
    "parse",
]
