"""``fs/*``: the reference's local filesystem methods, run on a thread pool.

Every method does its blocking work (system calls, base64 of whole files) in one call on a thread
pool, so a 50 MB file never stalls the reactor; the reactor only builds the result ``dict``.

Behaviour and error text follow Codex CLI 0.131.0 as probed on this machine (see
docs/decisions.md and tests/test_filesystem_*.py for the cases). Notable facts:

- Paths are normalised lexically first, as the reference's ``AbsolutePathBuf`` does: ``.`` and
  empty components vanish and ``..`` pops the previous component without looking at the disk
  (``/a/file/../b`` is ``/a/b``, ``/a/file/`` is ``/a/file``).
- Errors are Rust ``io::Error`` rendered by a musl-linked binary: ``<musl strerror> (os error N)``
  (``Symbolic link loop (os error 40)``, not glibc's wording). ENOENT is -32004; EACCES, EPERM and
  EINVAL (Rust's ``PermissionDenied``/``InvalidInput``) are -32600; the rest -32603.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import Any, ParamSpec

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorThreads
from twisted.python.threadpool import ThreadPool

from twisted_exec.compat.base64strict import decodeBase64Strict, encodeBase64Pieces
from twisted_exec.compat.fileuri import normalizePath
from twisted_exec.compat.params import (
    FsCopyParams,
    FsCreateDirectoryParams,
    FsGetMetadataParams,
    FsReadDirectoryParams,
    FsReadFileParams,
    FsRemoveParams,
    FsWriteFileParams,
)
from twisted_exec.executor.resources.fs_blocking import mapped, onPool, onPoolBatched
from twisted_exec.executor.resources.fs_stat import statFollowing
from twisted_exec.executor.resources.fs_tree import (
    _copyFile,
    _copyTree,
    _createDirAll,
    _isSameOrDescendant,
    _removeTree,
)
from twisted_exec.executor.resources.fsguard import readRegularFile, writeWholeFile
from twisted_exec.wire.errors import INVALID_REQUEST, RpcError
from twisted_exec.wire.jsonrpc import EncodedParams

MAX_READ_FILE_BYTES = 512 * 1024 * 1024
"""The reference refuses ``fs/readFile`` of anything whose size is above this (512 MiB)."""


# -- the blocking operations (run on the thread pool; plain functions, testable directly) --------


_READ_FILE_HEAD = b'{"dataBase64":"'


def readFile(path: str, maxReadBytes: int | None) -> EncodedParams:
    """Never blocks on a FIFO nor reads past the limit (``fsguard.readRegularFile``).

    The reply's JSON is built here, on the worker, as ``fs/readBlock``'s is: base64 needs no
    escapes, and ``orjson`` scanning a 5.6 MB string for them on the reactor thread cost as much
    as the base64 itself (docs/decisions.md 198).
    """
    pieces = encodeBase64Pieces(readRegularFile(path, maxReadBytes))
    raw = b"".join((_READ_FILE_HEAD, *pieces, b'"}'))
    text = str(memoryview(raw)[len(_READ_FILE_HEAD) : -2], "ascii")
    return EncodedParams({"dataBase64": text}, raw)


def writeFile(path: str, dataBase64: str) -> dict[str, Any]:
    """Decode, then write in place, like the reference's ``tokio::fs::write``.

    Not atomic: the file is opened with ``O_CREAT|O_TRUNC`` (mode 0666 minus umask when created)
    and written, so a concurrent reader can see it empty or half written, and a failure part way
    (a full disk) leaves it truncated. In exchange the existing file keeps its inode, permissions,
    owner and hard links, and a symlink is written through to its target (a dangling one creates
    the target): callers rewrite executable scripts and symlinked config files and expect that.
    A temp-file-and-rename would change all of those, so we match the reference instead.
    """
    try:
        data = decodeBase64Strict(dataBase64)
    except ValueError as e:
        raise RpcError(
            INVALID_REQUEST, f"fs/writeFile requires valid base64 dataBase64: {e}"
        ) from None
    writeWholeFile(path, data)  # never blocks on a FIFO (fsguard)
    return {}


def createDirectory(path: str, recursive: bool) -> dict[str, Any]:
    if recursive:
        _createDirAll(path)
    else:
        os.mkdir(path)
    return {}


def getMetadata(path: str, withSize: bool = False) -> dict[str, Any]:
    """``isDirectory``/``isFile``/``modifiedAtMs`` (and 0.171's ``size``) follow symlinks;
    ``isSymlink`` does not."""
    st, isSymlink = statFollowing(path)
    result: dict[str, Any] = {
        "isDirectory": stat.S_ISDIR(st.st_mode),
        "isFile": stat.S_ISREG(st.st_mode),
        "isSymlink": isSymlink,
    }
    if withSize:
        result["size"] = st.st_size
    result["createdAtMs"] = 0
    result["modifiedAtMs"] = _unixMillis(st.st_mtime_ns)
    return result


def readDirectory(path: str) -> dict[str, Any]:
    """Entries in directory order; entries whose target cannot be stat'ed are left out.

    The reference drops dangling symlinks, symlink loops and entries it may not stat (EACCES)
    from the listing rather than failing it. Names that are not UTF-8 are decoded lossily.
    """
    entries: list[dict[str, Any]] = []
    with os.scandir(os.fsencode(path)) as it:
        for entry in it:
            try:
                st = entry.stat()
            except OSError:
                continue
            entries.append(
                {
                    "fileName": entry.name.decode("utf-8", "replace"),
                    "isDirectory": stat.S_ISDIR(st.st_mode),
                    "isFile": stat.S_ISREG(st.st_mode),
                }
            )
    return {"entries": entries}


def remove(path: str, recursive: bool, force: bool) -> dict[str, Any]:
    """A symlink is removed itself, never its target; ``force`` only excuses a missing path."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        if force:
            return {}
        raise
    if not stat.S_ISDIR(mode):
        os.unlink(path)
    elif recursive:
        _removeTree(path)
    else:
        os.rmdir(path)
    return {}


def copy(source: str, destination: str, recursive: bool) -> dict[str, Any]:
    """Copy a file, a symlink (as a symlink) or a directory tree.

    A directory is merged into an existing destination directory (not nested inside it); inside
    a tree, special files are skipped silently. Regular files keep their permission bits
    (setuid included, as ``std::fs::copy``), directories get 0777 minus umask, and no times are
    kept. Like the reference, copying a file onto itself truncates it.
    """
    mode = os.lstat(source).st_mode
    if stat.S_ISDIR(mode):
        if not recursive:
            raise RpcError(
                INVALID_REQUEST, "fs/copy requires recursive: true when sourcePath is a directory"
            )
        if _isSameOrDescendant(source, destination):
            raise RpcError(
                INVALID_REQUEST,
                "fs/copy cannot copy a directory to itself or one of its descendants",
            )
        _copyTree(source, destination)
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(source), destination)
    elif stat.S_ISREG(mode):
        _copyFile(source, destination)
    else:
        raise RpcError(
            INVALID_REQUEST, "fs/copy only supports regular files, directories, and symlinks"
        )
    return {}


# -- helpers ---------------------------------------------------------------------------------


def _unixMillis(ns: int) -> int:
    """Whole milliseconds since the epoch, truncated; 0 for times before it (as the reference)."""
    return ns // 1_000_000 if ns >= 0 else 0


# -- the service object ----------------------------------------------------------------------

_P = ParamSpec("_P")
_MAPPED: dict[Callable[..., Any], Callable[..., Any]] = {}


def _mappedOnce(f: Callable[..., Any]) -> Callable[..., Any]:
    """``mapped(f)``, built once per operation rather than once per call."""
    wrapped = _MAPPED.get(f)
    if wrapped is None:
        wrapped = _MAPPED[f] = mapped(f)
    return wrapped


class FileSystem:
    """The ``fs/*`` handlers: one per service, stateless.

    ``maxReadBytes`` caps ``fs/readFile`` by the file's size (``None``: no cap); the default is
    the reference's 512 MiB and its -32600 ``file is too large to read: limit is N bytes``.
    """

    def __init__(
        self,
        reactor: IReactorThreads,
        threadpool: ThreadPool | None = None,
        *,
        maxReadBytes: int | None = MAX_READ_FILE_BYTES,
    ) -> None:
        self._reactor = reactor
        self._threadpool = threadpool
        self.maxReadBytes = maxReadBytes

    def _pool(self) -> Any:
        return self._threadpool if self._threadpool is not None else self._reactor.getThreadPool()

    def _run(
        self, f: Callable[_P, dict[str, Any]], *args: _P.args, **kwargs: _P.kwargs
    ) -> Deferred[dict[str, Any]]:
        return onPool(self._reactor, self._pool(), _mappedOnce(f), *args, **kwargs)

    def _runQuick(self, f: Callable[..., dict[str, Any]], *args: Any) -> Deferred[dict[str, Any]]:
        """:meth:`_run` for a metadata lookup, batched with the turn's others (decision 199)."""
        return onPoolBatched(self._reactor, self._pool(), _mappedOnce(f), *args)

    def readFile(self, p: FsReadFileParams) -> Deferred[dict[str, Any]]:
        return self._run(readFile, normalizePath(p.path), self.maxReadBytes)

    def writeFile(self, p: FsWriteFileParams) -> Deferred[dict[str, Any]]:
        return self._run(writeFile, normalizePath(p.path), p.dataBase64)

    def createDirectory(self, p: FsCreateDirectoryParams) -> Deferred[dict[str, Any]]:
        recursive = True if p.recursive is None else p.recursive
        return self._run(createDirectory, normalizePath(p.path), recursive)

    def getMetadata(
        self, p: FsGetMetadataParams, withSize: bool = False
    ) -> Deferred[dict[str, Any]]:
        return self._runQuick(getMetadata, normalizePath(p.path), withSize)

    def readDirectory(self, p: FsReadDirectoryParams) -> Deferred[dict[str, Any]]:
        return self._run(readDirectory, normalizePath(p.path))

    def remove(self, p: FsRemoveParams) -> Deferred[dict[str, Any]]:
        recursive = True if p.recursive is None else p.recursive
        force = True if p.force is None else p.force
        return self._run(remove, normalizePath(p.path), recursive, force)

    def copy(self, p: FsCopyParams) -> Deferred[dict[str, Any]]:
        return self._run(
            copy, normalizePath(p.sourcePath), normalizePath(p.destinationPath), p.recursive
        )


__all__ = [
    "MAX_READ_FILE_BYTES",
    "FileSystem",
]
