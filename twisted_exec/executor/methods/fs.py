"""``fs/*`` in both dialects, around the one ``FileSystem`` resource.

0.131 sends bare absolute paths and gets the results ``FileSystem`` builds. 0.171 (probed on
the 0.171.0 binary) sends ``file:`` URIs, which are decoded while the params are (a bad URI is
-32602 even before ``initialize``) and turned into host paths in the handler (a Windows URI is
-32600 ``'<uri>' is invalid on 'linux'``); it has new, optional ``followSymlinks`` fields (accepted
here; acting on them is the fs methods' own work), its params structs are named ``WireFs...``,
``fs/getMetadata`` answers ``size`` too, and ``fs/readFile`` of something that is not a file is
-32600 ``path `<path>` is not a file``.

The methods only 0.171 has (``fs/open``, ``fs/walk``, ...) register themselves in their own
modules with the same helpers (:func:`hostPath`, :data:`SANDBOX_171`).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure

from twisted_exec.compat import params
from twisted_exec.compat.fileuri import FileUri, ForeignUriError
from twisted_exec.compat.params import Field, boolean, optional, string, struct
from twisted_exec.compat.params171 import decode171, numberMessage, pathUri
from twisted_exec.compat.record import frozen
from twisted_exec.executor.core.dialect import Dialect
from twisted_exec.executor.methods.registry import Method, MethodRegistry
from twisted_exec.wire.errors import INVALID_REQUEST, RpcError, invalidParams

FS = "filesystem"


def hostPath(uri: FileUri) -> str:
    """The local path a URI names, or the reference's -32600 for a foreign (Windows) URI."""
    try:
        return uri.hostPath()
    except ForeignUriError as err:
        raise RpcError(INVALID_REQUEST, err.message) from None


def _sandbox171(value: object) -> dict[str, Any]:
    """``FileSystemSandboxContext`` as 0.171 checks it; accepted and not enforced (no sandbox)."""
    if not isinstance(value, dict):
        raise invalidParams(
            numberMessage(
                f"invalid type: {params.describe(value)}, "
                "expected struct WireFileSystemSandboxContext"
            )
        )
    if "permissions" not in value:
        raise invalidParams("missing field `permissions`")
    permissions = value["permissions"]
    if isinstance(permissions, dict) and "type" not in permissions:
        raise invalidParams("missing field `type`")
    return value


SANDBOX_171 = Field("sandbox", optional(_sandbox171), required=False)
FOLLOW_SYMLINKS = Field("followSymlinks", optional(boolean), required=False, seqDefault=True)
PATH = Field("path", pathUri)


@struct("WireFsReadFileParams", PATH, FOLLOW_SYMLINKS, SANDBOX_171)
@frozen
class ReadFile171:
    path: FileUri
    followSymlinks: bool | None = None
    sandbox: Any = None


@struct("WireFsWriteFileParams", PATH, Field("dataBase64", string), FOLLOW_SYMLINKS, SANDBOX_171)
@frozen
class WriteFile171:
    path: FileUri
    dataBase64: str
    followSymlinks: bool | None = None
    sandbox: Any = None


@struct(
    "WireFsCreateDirectoryParams",
    PATH,
    Field("recursive", optional(boolean), False),
    FOLLOW_SYMLINKS,
    SANDBOX_171,
)
@frozen
class CreateDirectory171:
    path: FileUri
    recursive: bool | None = None
    followSymlinks: bool | None = None
    sandbox: Any = None


@struct("WireFsGetMetadataParams", PATH, FOLLOW_SYMLINKS, SANDBOX_171)
@frozen
class GetMetadata171:
    path: FileUri
    followSymlinks: bool | None = None
    sandbox: Any = None


@struct("WireFsReadDirectoryParams", PATH, SANDBOX_171)
@frozen
class ReadDirectory171:
    path: FileUri
    sandbox: Any = None


@struct(
    "WireFsRemoveParams",
    PATH,
    Field("recursive", optional(boolean), False),
    Field("force", optional(boolean), False),
    FOLLOW_SYMLINKS,
    SANDBOX_171,
)
@frozen
class Remove171:
    path: FileUri
    recursive: bool | None = None
    force: bool | None = None
    followSymlinks: bool | None = None
    sandbox: Any = None


@struct(
    "WireFsCopyParams",
    Field("sourcePath", pathUri),
    Field("destinationPath", pathUri),
    Field("recursive", boolean),
    SANDBOX_171,
)
@frozen
class Copy171:
    sourcePath: FileUri
    destinationPath: FileUri
    recursive: bool
    sandbox: Any = None


# -- 0.131: the resource's own results -------------------------------------------------------------


def then(outcome: Any, shape: Any) -> Any:
    """``shape`` applied to a resource's result, whether it came back now or as a Deferred."""
    if isinstance(outcome, Deferred):
        return outcome.addCallback(shape)
    return shape(outcome)


def _register131(registry: MethodRegistry) -> None:
    def add(name: str, paramsType: type[Any], call: Any) -> None:
        registry.add(Method(name, Dialect.V131, paramsType.fromJson, call, FS))  # type: ignore[attr-defined]

    add("fs/readFile", params.FsReadFileParams, lambda ctx, p: ctx.filesystem.readFile(p))
    add("fs/writeFile", params.FsWriteFileParams, lambda ctx, p: ctx.filesystem.writeFile(p))
    add(
        "fs/createDirectory",
        params.FsCreateDirectoryParams,
        lambda ctx, p: ctx.filesystem.createDirectory(p),
    )
    add(
        "fs/getMetadata",
        params.FsGetMetadataParams,
        lambda ctx, p: ctx.filesystem.getMetadata(p),
    )
    add(
        "fs/readDirectory",
        params.FsReadDirectoryParams,
        lambda ctx, p: ctx.filesystem.readDirectory(p),
    )
    add("fs/remove", params.FsRemoveParams, lambda ctx, p: ctx.filesystem.remove(p))
    add("fs/copy", params.FsCopyParams, lambda ctx, p: ctx.filesystem.copy(p))


# -- 0.171: URIs in, the same resource, 0.171's result shapes --------------------------------------

_METADATA_ORDER = ("isDirectory", "isFile", "isSymlink", "size", "createdAtMs", "modifiedAtMs")


def _metadata171(result: dict[str, Any]) -> dict[str, Any]:
    return {key: result[key] for key in _METADATA_ORDER if key in result}


def _readFile171(ctx: Any, p: ReadFile171) -> Deferred[dict[str, Any]]:
    path = hostPath(p.path)

    def notAFile(failure: Failure) -> Failure:
        err = failure.value
        if isinstance(err, RpcError) and err.message == "Is a directory (os error 21)":
            raise RpcError(INVALID_REQUEST, f"path `{path}` is not a file")
        return failure

    d: Deferred[dict[str, Any]] = maybeDeferred(
        ctx.filesystem.readFile, params.FsReadFileParams(path=path, sandbox=p.sandbox)
    )
    return d.addErrback(notAFile)


def _register171(registry: MethodRegistry) -> None:
    def add(name: str, paramsType: type[Any], call: Any) -> None:
        decode = decode171(paramsType.fromJson)  # type: ignore[attr-defined]
        registry.add(Method(name, Dialect.V171, decode, call, FS))

    fs = params
    add("fs/readFile", ReadFile171, _readFile171)
    add(
        "fs/writeFile",
        WriteFile171,
        lambda ctx, p: ctx.filesystem.writeFile(
            fs.FsWriteFileParams(path=hostPath(p.path), dataBase64=p.dataBase64, sandbox=p.sandbox)
        ),
    )
    add(
        "fs/createDirectory",
        CreateDirectory171,
        lambda ctx, p: ctx.filesystem.createDirectory(
            fs.FsCreateDirectoryParams(
                path=hostPath(p.path), recursive=p.recursive, sandbox=p.sandbox
            )
        ),
    )
    add(
        "fs/getMetadata",
        GetMetadata171,
        lambda ctx, p: then(
            ctx.filesystem.getMetadata(
                fs.FsGetMetadataParams(path=hostPath(p.path), sandbox=p.sandbox), withSize=True
            ),
            _metadata171,
        ),
    )
    add(
        "fs/readDirectory",
        ReadDirectory171,
        lambda ctx, p: ctx.filesystem.readDirectory(
            fs.FsReadDirectoryParams(path=hostPath(p.path), sandbox=p.sandbox)
        ),
    )
    add(
        "fs/remove",
        Remove171,
        lambda ctx, p: ctx.filesystem.remove(
            fs.FsRemoveParams(
                path=hostPath(p.path), recursive=p.recursive, force=p.force, sandbox=p.sandbox
            )
        ),
    )
    add(
        "fs/copy",
        Copy171,
        lambda ctx, p: ctx.filesystem.copy(
            fs.FsCopyParams(
                sourcePath=hostPath(p.sourcePath),
                destinationPath=hostPath(p.destinationPath),
                recursive=p.recursive,
                sandbox=p.sandbox,
            )
        ),
    )


def register(registry: MethodRegistry) -> None:
    _register131(registry)
    _register171(registry)


__all__ = ["FOLLOW_SYMLINKS", "PATH", "SANDBOX_171", "hostPath", "register"]
