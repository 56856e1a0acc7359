"""Typed method parameters, validated the way the reference's serde derive validates them.

Harnesses see the reference's serde messages (``missing field `processId```, ``invalid type:
integer `5`, expected a string``...), so we reproduce serde's rules rather than invent our own:

- a map is walked in the order its keys arrive; the first bad value is reported;
- then missing required fields are reported in declaration order;
- unknown keys are ignored; a duplicate key keeps the last value (params are a JSON value first);
- a JSON array fills fields positionally (serde accepts the "sequence" form of a struct): a short
  array gives ``invalid length N, expected struct X with M elements``;
- anything else gives ``invalid type: <what>, expected struct X``.

Each ``*Params`` class is an immutable record (``compat/record.frozen``, a cheaper frozen
dataclass); :func:`parse` builds one from raw JSON or raises
:class:`~twisted_exec.wire.errors.RpcError` (-32602).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Any, TypeVar

from twisted_exec.compat.record import frozen
from twisted_exec.compat.serde import (
    U64_MAX,
    Decoder,
    Field,
    absolutePath,
    base64Bytes,
    boolean,
    decodeStruct,
    describe,
    enum,
    invalidType,
    mapOf,
    optional,
    pathString,
    sequenceOf,
    string,
    struct,
    u16,
    u32,
    u64,
    usize,
)
from twisted_exec.wire.errors import invalidParams

# -- field decoders: each takes the raw JSON value and returns the Python value or raises ----------


# -- struct machinery --------------------------------------------------------------------------


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
@frozen
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
@frozen
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
@frozen
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
@frozen
class ReadParams:
    processId: str
    afterSeq: int | None = None
    maxBytes: int | None = None
    waitMs: int | None = None


@struct("WriteParams", Field("processId", string), Field("chunk", base64Bytes))
@frozen
class WriteParams:
    processId: str
    chunk: bytes


@struct("CloseStdinParams", Field("processId", string))
@frozen
class CloseStdinParams:
    """``process/closeStdin``: our extension (neither Codex dialect can end a stdin)."""

    processId: str


@struct("ResizeParams", Field("processId", string), Field("rows", u16), Field("cols", u16))
@frozen
class ResizeParams:
    """``process/resize``: our extension (the reference's pty is always 24x80)."""

    processId: str
    rows: int
    cols: int


@struct("TerminateParams", Field("processId", string))
@frozen
class TerminateParams:
    processId: str


@struct("FsReadFileParams", Field("path", absolutePath), _SANDBOX)
@frozen
class FsReadFileParams:
    path: str
    sandbox: Mapping[str, Any] | None = None


@struct("FsWriteFileParams", Field("path", absolutePath), Field("dataBase64", string), _SANDBOX)
@frozen
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
@frozen
class FsCreateDirectoryParams:
    path: str
    recursive: bool | None = None
    sandbox: Mapping[str, Any] | None = None


@struct("FsGetMetadataParams", Field("path", absolutePath), _SANDBOX)
@frozen
class FsGetMetadataParams:
    path: str
    sandbox: Mapping[str, Any] | None = None


@struct("FsReadDirectoryParams", Field("path", absolutePath), _SANDBOX)
@frozen
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
@frozen
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
@frozen
class FsCopyParams:
    sourcePath: str
    destinationPath: str
    recursive: bool
    sandbox: Mapping[str, Any] | None = None


@frozen
class HttpHeader:
    name: str
    value: str


_HEADER_FIELDS = (Field("name", string), Field("value", string))


def _header(value: object) -> HttpHeader:
    return HttpHeader(**decodeStruct(value, "HttpHeader", _HEADER_FIELDS))


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
@frozen
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
    # serde's decoders, re-exported for the modules that build structs from them
    "U64_MAX",
    "Decoder",
    "ExecEnvPolicy",
    "ExecParams",
    "Field",
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
    "absolutePath",
    "base64Bytes",
    "boolean",
    "decodeStruct",
    "describe",
    "enum",
    "field",
    "invalidType",
    "mapOf",
    "optional",
    "parse",
    "pathString",
    "sequenceOf",
    "string",
    "struct",
    "u16",
    "u32",
    "u64",
    "usize",
]
