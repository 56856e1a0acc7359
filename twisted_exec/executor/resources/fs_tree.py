"""Recursive fs operations as the reference does them: create_dir_all, remove_dir_all, copying a
tree, and the same-or-descendant check that refuses copying a directory into itself.

Blocking system calls: these run on the offload pool, never on the reactor thread.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator

from twisted_exec.wire.errors import INVALID_REQUEST, RpcError

_COPY_CHUNK = 1 << 20


def _createDirAll(path: str) -> None:
    """``std::fs::create_dir_all``: an existing directory (or symlink to one) is fine."""
    pending: list[str] = []
    current = path
    while True:
        try:
            os.mkdir(current)
        except FileNotFoundError:
            parent = os.path.dirname(current)
            if parent == current:
                raise
            pending.append(current)
            current = parent
            continue
        except OSError:
            if not os.path.isdir(current):
                raise
        break
    for missing in reversed(pending):
        try:
            os.mkdir(missing)
        except OSError:
            if not os.path.isdir(missing):
                raise


def _removeTree(path: str) -> None:
    """Remove a directory tree like Rust's ``remove_dir_all``.

    Descends through directory file descriptors opened with ``O_NOFOLLOW``, so a directory
    swapped for a symlink meanwhile is never followed; entries that vanish meanwhile are fine.
    Iterative, unlike ``shutil.rmtree`` (recursive on Python 3.11), so depth is not limited by
    Python's recursion limit.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    top = os.open(path, flags)
    stack: list[tuple[int, str, Iterator[os.DirEntry[str]]]] = []
    try:
        stack.append((top, path, os.scandir(top)))
    except BaseException:
        os.close(top)
        raise
    try:
        while stack:
            fd, name, entries = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                _closeListing(entries)
                os.close(fd)
                if stack:
                    _ignoreMissing(os.rmdir, name, dir_fd=stack[-1][0])
                else:
                    os.rmdir(path)
                continue
            if entry.is_dir(follow_symlinks=False):
                try:
                    child = os.open(entry.name, flags, dir_fd=fd)
                except FileNotFoundError:
                    continue
                try:
                    stack.append((child, entry.name, os.scandir(child)))
                except BaseException:
                    os.close(child)
                    raise
            else:
                _ignoreMissing(os.unlink, entry.name, dir_fd=fd)
    finally:
        for fd, _, entries in stack:
            _closeListing(entries)
            os.close(fd)


def _ignoreMissing(remove: Callable[..., None], name: str, *, dir_fd: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        remove(name, dir_fd=dir_fd)


def _copyFile(source: str, destination: str) -> None:
    """``std::fs::copy``: truncate-and-write in place, then give the copy the source's mode."""
    reader = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        st = os.fstat(reader)
        if not stat.S_ISREG(st.st_mode):
            raise RpcError(
                INVALID_REQUEST,
                "the source path is neither a regular file nor a symlink to a regular file",
            )
        permissions = stat.S_IMODE(st.st_mode)
        writer = os.open(
            destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, permissions
        )
        try:
            if stat.S_ISREG(os.fstat(writer).st_mode):
                os.fchmod(writer, permissions)
            while chunk := os.read(reader, _COPY_CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(writer, view) :]
        finally:
            os.close(writer)
    finally:
        os.close(reader)


def _copyTree(source: str, destination: str) -> None:
    """Depth first, in directory order, stopping at the first error (the partial copy stays).

    Iterative so that deep trees do not hit Python's recursion limit.
    """
    _createDirAll(destination)
    stack: list[tuple[Iterator[os.DirEntry[str]], str]] = []
    listing = os.scandir(source)
    stack.append((listing, destination))
    try:
        while stack:
            entries, target = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                _closeListing(entries)
                continue
            targetPath = os.path.join(target, entry.name)
            if entry.is_dir(follow_symlinks=False):
                _createDirAll(targetPath)
                stack.append((os.scandir(entry.path), targetPath))
            elif entry.is_file(follow_symlinks=False):
                _copyFile(entry.path, targetPath)
            elif entry.is_symlink():
                os.symlink(os.readlink(entry.path), targetPath)
    finally:
        for entries, _ in stack:
            _closeListing(entries)


def _closeListing(entries: Iterator[os.DirEntry[str]]) -> None:
    close = getattr(entries, "close", None)
    if close is not None:
        close()


def _isSameOrDescendant(source: str, destination: str) -> bool:
    """Whether ``destination`` is ``source`` or inside it, symlinks resolved.

    The source is canonicalised; the destination's longest existing ancestor is canonicalised and
    the missing rest appended, so ``/a/link-to-src/new`` counts as inside the source.
    """
    sourceParts = _components(os.path.realpath(source, strict=True))
    missing: list[str] = []
    existing = destination
    while not os.path.exists(existing):
        parent, name = os.path.split(existing)
        if not name:
            break
        missing.append(name)
        existing = parent
    resolved = os.path.realpath(existing, strict=True)
    destinationParts = _components(resolved) + list(reversed(missing))
    return destinationParts[: len(sourceParts)] == sourceParts


def _components(path: str) -> list[str]:
    return [part for part in path.split("/") if part]
