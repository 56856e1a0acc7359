"""Params of the fs methods new in Codex 0.171, decoded as the 0.171 binary decodes them.

0.171 reads params with serde_json's ``arbitrary_precision`` rules, so a number reads differently
from 0.131 (docs/reference-0.171-fs.md): a number where a string is expected is ``invalid type:
number, expected a string`` (0.131: ``integer `5```), and a negative, fractional or too large
number where a ``u64`` is expected is ``invalid number``. Everything else is serde's derive as in
:mod:`twisted_exec.compat.params`: fields in arrival order, then missing required fields in
declaration order, the array ("sequence") form with its own defaults.

Paths are ``file:`` URIs, parsed with the dialect's codec (``compat/fileuri``) into ``FileUri``;
the handlers (``executor/methods/fs171``) turn them into host paths.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from twisted_exec.compat.fileuri import FileUri
from twisted_exec.compat.params import parse as parse171
from twisted_exec.compat.params171 import pathUri
from twisted_exec.compat.record import frozen
from twisted_exec.compat.serde import (
    U64_MAX,
    Decoder,
    Field,
    base64Of,
    decodeStruct,
    describe,
    exactly,
    optional,
)
from twisted_exec.compat.serde import sequenceOf as _sequenceOf
from twisted_exec.compat.serde import struct as _struct
from twisted_exec.wire.errors import RpcError, invalidParams


def describe171(value: object) -> str:
    """serde's ``Unexpected`` under ``arbitrary_precision``: every number is "number"."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "number"
    return describe(value)


def invalidType171(value: object, expected: str) -> RpcError:
    return invalidParams(f"invalid type: {describe171(value)}, expected {expected}")


string = exactly(str, "a string", invalidType171)
boolean = exactly(bool, "a boolean", invalidType171)


def _unsigned(name: str) -> Decoder:
    def decode(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalidType171(value, name)
        if isinstance(value, float) or value < 0 or value > U64_MAX:
            raise invalidParams("invalid number")
        return value

    return decode


u64 = _unsigned("u64")
usize = _unsigned("usize")

#: A ``ByteChunk``: base64 decoded while params are decoded (a bad one is -32602).
base64Chunk = base64Of(string)  # noqa: N816 (a decoder, named as functions are)


def sequenceOf(decoder: Decoder) -> Decoder:
    return _sequenceOf(decoder, invalidType171)


# -- paths -------------------------------------------------------------------------------------


def uriPath(value: object) -> FileUri:
    """A ``PathUri``: parsed here (a bad URI is -32602); the handler turns it into a host path
    (a foreign one is -32600 there, after the checks the reference makes first)."""
    return pathUri(string(value))


def _sandbox(value: object) -> Mapping[str, Any]:
    """``WireFileSystemSandboxContext``: accepted and ignored (no sandbox here, decisions.md)."""
    if isinstance(value, list):
        if len(value) < 10:
            raise invalidParams(
                f"invalid length {len(value)}, expected struct WireFileSystemSandboxContext "
                "with 10 elements"
            )
        return {"sequence": value}
    if not isinstance(value, dict):
        raise invalidType171(value, "struct WireFileSystemSandboxContext")
    if "permissions" not in value:
        raise invalidParams("missing field `permissions`")
    return value


# -- structs -----------------------------------------------------------------------------------


T = TypeVar("T")


def struct171(name: str, *fields: Field) -> Callable[[type[T]], type[T]]:
    """serde's struct rules (``compat/serde.struct``), with this dialect's type errors."""
    return _struct(name, *fields, invalid=invalidType171)


_SANDBOX = Field("sandbox", optional(_sandbox), required=False)


def _openMode(value: object) -> str:
    """``FsOpenMode``, a unit-variant enum: ``"read"``, ``"replace"`` or ``{"read": null}``."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        if inner is not None:
            raise invalidType171(inner, "unit variant")
        value = key
    if not isinstance(value, str):
        raise invalidType171(value, "string or map")
    if value not in ("read", "replace"):
        raise invalidParams(f"unknown variant `{value}`, expected `read` or `replace`")
    return value


@struct171("WireFsCanonicalizeParams", Field("path", uriPath), _SANDBOX)
@frozen
class FsCanonicalizeParams:
    path: FileUri
    sandbox: Mapping[str, Any] | None = None


@struct171(
    "WireFsOpenParams",
    Field("handleId", string),
    Field("path", uriPath),
    Field("mode", _openMode, required=False, seqDefault=True, default="read"),
    _SANDBOX,
)
@frozen
class FsOpenParams:
    handleId: str
    path: FileUri | str  # a host path once the handler has checked it
    mode: str = "read"
    sandbox: Mapping[str, Any] | None = None


@struct171(
    "FsReadBlockParams", Field("handleId", string), Field("offset", u64), Field("len", usize)
)
@frozen
class FsReadBlockParams:
    handleId: str
    offset: int
    len: int


_WRITE_BLOCK_EAGER = (Field("handleId", string), Field("offset", u64), Field("chunk", base64Chunk))
_WRITE_BLOCK_LAZY = (Field("handleId", string), Field("offset", u64), Field("chunk", string))


@frozen
class FsWriteBlockParams:
    """``chunk`` is still base64 here: 1 MiB of it takes milliseconds to decode, so the handler
    decodes it on the offload pool (``decodeChunk``), not on the reactor thread.

    When the struct itself is bad, it is decoded again with the chunk decoded in place, so the
    first error is exactly the reference's (an invalid chunk ahead of a bad ``offset`` wins).
    """

    handleId: str
    offset: int
    chunk: str

    @classmethod
    def fromJson(cls, value: object) -> FsWriteBlockParams:
        try:
            found = decodeStruct(value, "FsWriteBlockParams", _WRITE_BLOCK_LAZY, invalidType171)
        except RpcError:
            decodeStruct(value, "FsWriteBlockParams", _WRITE_BLOCK_EAGER, invalidType171)
            raise
        return cls(**found)


def decodeChunk(chunk: str) -> bytes:
    """The base64 of ``fs/writeBlock`` (blocking: call it off the reactor thread)."""
    return base64Chunk(chunk)


@struct171("FsCloseParams", Field("handleId", string))
@frozen
class FsCloseParams:
    handleId: str


@struct171(
    "WalkOptions",
    Field("maxDepth", usize),
    Field("maxDirectories", usize),
    Field("maxEntries", usize),
    Field("followDirectorySymlinks", boolean),
    Field("pruneHiddenDirectories", boolean, required=False, seqDefault=True, default=False),
)
@frozen
class WalkOptions:
    maxDepth: int
    maxDirectories: int
    maxEntries: int
    followDirectorySymlinks: bool
    pruneHiddenDirectories: bool = False


def _walkOptions(value: object) -> WalkOptions:
    return WalkOptions.fromJson(value)  # type: ignore[attr-defined,no-any-return]


@struct171("WireFsWalkParams", Field("path", uriPath), Field("options", _walkOptions), _SANDBOX)
@frozen
class FsWalkParams:
    path: FileUri
    options: WalkOptions
    sandbox: Mapping[str, Any] | None = None


@struct171(
    "FsWatchMissingParams",
    Field("watchId", u64),
    Field("missing", sequenceOf(uriPath)),
    Field("present", optional(uriPath), required=False),
)
@frozen
class FsWatchMissingParams:
    watchId: int
    missing: list[FileUri]
    present: FileUri | None = None


__all__ = [
    "FsCanonicalizeParams",
    "FsCloseParams",
    "FsOpenParams",
    "FsReadBlockParams",
    "FsWalkParams",
    "FsWatchMissingParams",
    "FsWriteBlockParams",
    "WalkOptions",
    "decodeChunk",
    "describe171",
    "parse171",
]
