"""``fs/open``, ``fs/readBlock``, ``fs/writeBlock``, ``fs/close``: the file handles of a connection.

As the 0.171 binary (docs/reference-0.171-fs.md): handles belong to the connection (a resumed
session does not get them back), at most 128 are open, an id is at most 32 bytes, a block is 1 to
1 MiB, reads and writes are positional (``pread``/``pwrite``: a handle has no cursor), ``eof`` is
"fewer bytes than asked", a failed read drops its handle while a failed write keeps it, and
``replace`` truncates the file in place at open time.

Every system call runs on the offload pool. A descriptor is never closed while a worker may still
use it: ``fs/close`` (or the connection's end) unlinks the id at once and the descriptor is closed
when its last in-flight call returns, so a recycled descriptor number can never be read by a
stale call. Memory per connection is bounded by 128 descriptors and one block in flight per call
(the processor handles a connection's requests one at a time).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import Any

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from twisted_exec.compat.base64strict import encodeBase64
from twisted_exec.compat.fsparams171 import (
    FsCloseParams,
    FsOpenParams,
    FsReadBlockParams,
    FsWriteBlockParams,
    decodeChunk,
)
from twisted_exec.executor.core.interfaces import IConnectionResource
from twisted_exec.executor.resources.fs_blocking import BlockingRunner, CallInThread
from twisted_exec.wire.errors import INVALID_REQUEST, NOT_FOUND, RpcError
from twisted_exec.wire.jsonrpc import EncodedParams

MAX_HANDLES = 128
"""Open handles per connection (the reference's limit)."""

MAX_HANDLE_ID_BYTES = 32
MAX_BLOCK_BYTES = 1 << 20
"""The largest ``len`` of ``fs/readBlock`` and decoded chunk of ``fs/writeBlock`` (1 MiB)."""

I64_MAX = 2**63 - 1


# -- the blocking calls (worker thread; plain functions, testable directly) ----------------------


def openBlocking(path: str, mode: str) -> int:
    """Open ``path`` for ``read`` or ``replace``; only a regular file is kept.

    Non-blocking open, so a FIFO never hangs a worker: ``read`` of a FIFO opens at once and is
    refused as "not a file"; ``replace`` of a FIFO without a reader is ENXIO, as in the reference.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC if mode == "replace" else os.O_RDONLY
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, 0o666)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RpcError(INVALID_REQUEST, f"path `{path}` is not a file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def readBlocking(fd: int, offset: int, length: int) -> EncodedParams:
    """Up to ``length`` bytes at ``offset``, base64- and JSON-encoded here, off the reactor.

    The result carries its JSON (``EncodedParams``): encoding a 1.4 MB base64 string with
    ``json.dumps`` on the reactor costs more than the read itself, and base64 needs no escapes.
    """
    parts: list[bytes] = []
    got = 0
    while got < length:
        piece = os.pread(fd, length - got, offset + got)
        if not piece:
            break
        parts.append(piece)
        got += len(piece)
    data = parts[0] if len(parts) == 1 else b"".join(parts)
    chunk = encodeBase64(data)
    eof = got < length
    tail = b"true}" if eof else b"false}"
    raw = b"".join((b'{"chunk":"', chunk.encode("ascii"), b'","eof":', tail))
    return EncodedParams({"chunk": chunk, "eof": eof}, raw)


def writeBlocking(handleId: str, fd: int | None, offset: int, chunk: str) -> dict[str, Any]:
    """Decode, check and write one block, in the reference's order of errors.

    All in the worker: the base64 first (-32602), then the id, the length and the range
    (-32600), then the handle (-32004, ``fd`` None), then ``pwrite`` of the whole block.
    """
    data = decodeChunk(chunk)
    checkHandleId(handleId)
    if not 1 <= len(data) <= MAX_BLOCK_BYTES:
        raise RpcError(
            INVALID_REQUEST, f"file write block length must be between 1 and {MAX_BLOCK_BYTES}"
        )
    if offset + len(data) > I64_MAX:
        raise RpcError(
            INVALID_REQUEST, "file write range exceeds the signed 64-bit file offset limit"
        )
    if fd is None:
        raise _unknown(handleId)
    view = memoryview(data)
    position = offset
    while view:
        written = os.pwrite(fd, view, position)
        if written <= 0:
            raise OSError(errno.EIO, "short write")
        view = view[written:]
        position += written
    return {}


def closeBlocking(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


# -- the table ----------------------------------------------------------------------------------


class _Handle:
    """One open descriptor and the number of worker calls using it right now."""

    __slots__ = ("closed", "fd", "users")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.users = 0
        self.closed = False


_OPENING = object()
"""Placeholder of an id whose ``fs/open`` is in flight (it holds the id and a slot)."""


def _unknown(handleId: str) -> RpcError:
    return RpcError(NOT_FOUND, f"unknown file handle `{handleId}`")


def checkHandleId(handleId: str) -> None:
    if len(handleId.encode("utf-8", "surrogatepass")) > MAX_HANDLE_ID_BYTES:
        raise RpcError(
            INVALID_REQUEST, f"file handle ID must not exceed {MAX_HANDLE_ID_BYTES} bytes"
        )


@implementer(IConnectionResource)
class FileHandleTable:
    """The handles of one connection; ``close`` when the connection ends."""

    def __init__(self, reactor: Any, pool: CallInThread, *, maxHandles: int = MAX_HANDLES) -> None:
        self._blocking = BlockingRunner(reactor, pool)
        self.maxHandles = maxHandles
        self._handles: dict[str, _Handle | object] = {}
        self._ended = False

    def __len__(self) -> int:
        return len(self._handles)

    # -- methods --------------------------------------------------------------------------------

    def open(self, p: FsOpenParams) -> Deferred[dict[str, Any]]:
        checkHandleId(p.handleId)
        if p.handleId in self._handles:
            raise RpcError(INVALID_REQUEST, f"file handle `{p.handleId}` already exists")
        if len(self._handles) >= self.maxHandles:
            raise RpcError(
                INVALID_REQUEST,
                f"at most {self.maxHandles} file handles may be open per connection",
            )
        self._handles[p.handleId] = _OPENING
        d = self._blocking.run(openBlocking, str(p.path), p.mode)

        def opened(fd: int) -> dict[str, Any]:
            if self._ended or self._handles.get(p.handleId) is not _OPENING:
                self._blocking.run(closeBlocking, fd)
                raise RpcError(INVALID_REQUEST, "file handle was closed while opening")
            self._handles[p.handleId] = _Handle(fd)
            return {"handleId": p.handleId}

        def failed(failure: Any) -> Any:
            if self._handles.get(p.handleId) is _OPENING:
                del self._handles[p.handleId]
            return failure

        return d.addCallbacks(opened, failed)

    def readBlock(self, p: FsReadBlockParams) -> Deferred[dict[str, Any]]:
        checkHandleId(p.handleId)
        if not 1 <= p.len <= MAX_BLOCK_BYTES:
            raise RpcError(
                INVALID_REQUEST, f"file read block length must be between 1 and {MAX_BLOCK_BYTES}"
            )
        handle = self._lookup(p.handleId)
        d = self._using(handle, readBlocking, p.offset, p.len)

        def failed(failure: Any) -> Any:
            # the reference drops a handle whose read failed (the next use is "unknown")
            if self._handles.get(p.handleId) is handle:
                self._drop(p.handleId, handle)
            return failure

        return d.addErrback(failed)

    def writeBlock(self, p: FsWriteBlockParams) -> Deferred[dict[str, Any]]:
        """The checks and the base64 decoding run with the write, on the pool (see
        ``writeBlocking``); the handle is looked up now and held while the worker uses it."""
        handle = self._handles.get(p.handleId)
        if not isinstance(handle, _Handle):
            return self._blocking.run(writeBlocking, p.handleId, None, p.offset, p.chunk)
        handle.users += 1
        d: Deferred[dict[str, Any]] = self._blocking.run(
            writeBlocking, p.handleId, handle.fd, p.offset, p.chunk
        )
        return d.addBoth(self._released, handle)

    def closeHandle(self, p: FsCloseParams) -> Deferred[dict[str, Any]]:
        checkHandleId(p.handleId)
        handle = self._handles.get(p.handleId)
        if handle is _OPENING:
            del self._handles[p.handleId]  # the open's result closes its descriptor
        elif isinstance(handle, _Handle):
            self._drop(p.handleId, handle)
        return succeed({})

    def close(self) -> None:
        """The connection ended (``connectionResource`` protocol)."""
        self.closeAll()

    def closeAll(self) -> None:
        """The connection ended: every handle goes (descriptors close once idle)."""
        self._ended = True
        for handleId, handle in list(self._handles.items()):
            if isinstance(handle, _Handle):
                self._drop(handleId, handle)
        self._handles.clear()

    # -- helpers --------------------------------------------------------------------------------

    def _lookup(self, handleId: str) -> _Handle:
        handle = self._handles.get(handleId)
        if not isinstance(handle, _Handle):
            raise _unknown(handleId)
        return handle

    def _using(self, handle: _Handle, f: Any, *args: Any) -> Deferred[dict[str, Any]]:
        handle.users += 1
        d: Deferred[dict[str, Any]] = self._blocking.run(f, handle.fd, *args)
        return d.addBoth(self._released, handle)

    def _released(self, result: Any, handle: _Handle) -> Any:
        handle.users -= 1
        self._closeIfIdle(handle)
        return result

    def _drop(self, handleId: str, handle: _Handle) -> None:
        del self._handles[handleId]
        handle.closed = True
        self._closeIfIdle(handle)

    def _closeIfIdle(self, handle: _Handle) -> None:
        if handle.closed and handle.users == 0 and handle.fd >= 0:
            fd, handle.fd = handle.fd, -1
            self._blocking.run(closeBlocking, fd)


__all__ = [
    "MAX_BLOCK_BYTES",
    "MAX_HANDLES",
    "MAX_HANDLE_ID_BYTES",
    "FileHandleTable",
    "checkHandleId",
    "openBlocking",
    "readBlocking",
    "writeBlocking",
]
