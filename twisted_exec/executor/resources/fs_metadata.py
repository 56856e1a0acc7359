"""0.171 ``fs/getMetadata`` (``size``, ``followSymlinks``) and ``fs/canonicalize``: blocking calls.

As the binary answers (docs/reference-0.171-fs.md):

- following (``followSymlinks`` absent, null or true): ``stat`` for the kinds, ``size`` and
  ``modifiedAtMs``, ``lstat`` for ``isSymlink`` (one ``lstat`` alone unless it is a symlink:
  ``fs_stat.py``), and ``createdAtMs`` always 0;
- not following: the path is resolved one component at a time with ``O_PATH | O_NOFOLLOW``, so an
  intermediate symlink is ENOTDIR and a final one ``-32600 path contains a symbolic link``; the
  answer is the entry itself with its birth time (``statx`` ``stx_btime``, 0 where the
  filesystem keeps none);
- canonicalize: the kernel's own resolution (``O_PATH`` then ``/proc/self/fd``), the errors of
  ``realpath``.

Paths are plain absolute paths, already lexically normalised by the caller.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import struct
from typing import Any

from twisted_exec.executor.resources.fs_stat import statFollowing
from twisted_exec.wire.errors import INVALID_REQUEST, RpcError

_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_AT_EMPTY_PATH = 0x1000
_STATX_BASIC_AND_BTIME = 0x07FF | 0x0800
_STATX_BTIME = 0x0800
_STATX_SIZE = 256
_BTIME_OFFSET = 80  # struct statx: stx_btime {s64 tv_sec; u32 tv_nsec; s32 reserved}

SYMLINK_IN_PATH = "path contains a symbolic link"

try:
    _libc: Any = ctypes.CDLL(None, use_errno=True)
    _statx: Any = _libc.statx
except (OSError, AttributeError):  # not glibc/musl with statx: birth times read as 0
    _statx = None


def _millis(ns: int) -> int:
    return ns // 1_000_000 if ns >= 0 else 0


def birthTimeMillis(fd: int) -> int:
    """The birth time of the file ``fd`` refers to, in ms; 0 when unknown."""
    if _statx is None:
        return 0
    buf = ctypes.create_string_buffer(_STATX_SIZE)
    if _statx(fd, b"", _AT_EMPTY_PATH | _AT_SYMLINK_NOFOLLOW, _STATX_BASIC_AND_BTIME, buf) != 0:
        return 0
    (mask,) = struct.unpack_from("=I", buf, 0)
    if not mask & _STATX_BTIME:
        return 0
    seconds, nanos = struct.unpack_from("=qI", buf, _BTIME_OFFSET)
    return _millis(seconds * 1_000_000_000 + nanos)


def _answer(st: os.stat_result, isSymlink: bool, createdAtMs: int) -> dict[str, Any]:
    return {
        "isDirectory": stat.S_ISDIR(st.st_mode),
        "isFile": stat.S_ISREG(st.st_mode),
        "isSymlink": isSymlink,
        "size": st.st_size,
        "createdAtMs": createdAtMs,
        "modifiedAtMs": _millis(st.st_mtime_ns),
    }


def openNoFollow(path: str) -> int:
    """An ``O_PATH`` descriptor of ``path`` reached without following any symlink.

    The final component may itself be a symlink (the descriptor then refers to the link); an
    intermediate one makes the next step ENOTDIR, as in the reference.
    """
    flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open("/", flags | os.O_DIRECTORY)
    try:
        for part in path.split("/"):
            if not part:
                continue
            child = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def getMetadata171(path: str, followSymlinks: bool | None) -> dict[str, Any]:
    if followSymlinks is None or followSymlinks:
        return _answer(*statFollowing(path), 0)
    fd = openNoFollow(path)
    try:
        st = os.fstat(fd)
        if stat.S_ISLNK(st.st_mode):
            raise RpcError(INVALID_REQUEST, SYMLINK_IN_PATH)
        return _answer(st, False, birthTimeMillis(fd))
    finally:
        os.close(fd)


def canonicalize(path: str) -> str:
    """``realpath``: every symlink resolved; the path must exist."""
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        resolved = os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    if not resolved.startswith("/"):  # an anonymous or unreachable file: not a path
        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
    return resolved


__all__ = ["SYMLINK_IN_PATH", "birthTimeMillis", "canonicalize", "getMetadata171", "openNoFollow"]
