"""``fs/walk``: a bounded breadth-first listing, as the 0.171 binary walks.

The algorithm and every limit are the reference's (docs/reference-0.171-fs.md, "fs/walk"): limits
checked before the root is looked at (zero first, then the maxima 64/10,000/50,000); the root
``stat``ed, nothing for a non-directory or an unfollowed symlink; each directory listed like
``fs/readDirectory`` (entries whose ``stat`` fails left out), sorted by name; every listed entry
counts towards ``maxEntries`` (skipped symlinks and FIFOs included), only files and directories
are emitted; a 4 MiB response budget of ``len(uri) + 64`` per entry (``+ len(message)`` per
error); ``maxDirectories`` counts the root and every queued directory.

Runs in one worker call (:func:`walk` is blocking). Memory is bounded by the limits: at most
50,000 entries and 4 MiB of URIs come back; listing a huge directory keeps at most the entries
the walk can still count (``heapq.nsmallest``), not the whole directory.
"""

from __future__ import annotations

import heapq
import os
import stat
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from twisted_exec.compat.fsparams171 import WalkOptions
from twisted_exec.compat.oserror import osErrorMessage
from twisted_exec.compat.record import frozen
from twisted_exec.executor.resources.fs_stat import statFollowing
from twisted_exec.wire.errors import INVALID_REQUEST, RpcError

MAX_WALK_DEPTH = 64
MAX_WALK_DIRECTORIES = 10_000
MAX_WALK_ENTRIES = 50_000
MAX_WALK_RESPONSE_BYTES = 4 * 1024 * 1024
WALK_RESPONSE_ITEM_OVERHEAD_BYTES = 64


def checkLimits(options: WalkOptions) -> None:
    """The reference's two limit errors, in its order (before the root is looked at)."""
    if options.maxDirectories == 0 or options.maxEntries == 0:
        raise RpcError(INVALID_REQUEST, "filesystem walk limits must be greater than zero")
    if (
        options.maxDepth > MAX_WALK_DEPTH
        or options.maxDirectories > MAX_WALK_DIRECTORIES
        or options.maxEntries > MAX_WALK_ENTRIES
    ):
        raise RpcError(
            INVALID_REQUEST,
            "filesystem walk limits exceed maximums: "
            f"depth={MAX_WALK_DEPTH}, directories={MAX_WALK_DIRECTORIES}, "
            f"entries={MAX_WALK_ENTRIES}",
        )


@dataclass
class _Outcome:
    entries: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    truncated: bool = False
    budget: int = 0

    def reserve(self, contentBytes: int) -> bool:
        total = self.budget + contentBytes + WALK_RESPONSE_ITEM_OVERHEAD_BYTES
        if total > MAX_WALK_RESPONSE_BYTES:
            self.truncated = True
            return False
        self.budget = total
        return True

    def error(self, uri: str, message: str) -> bool:
        if not self.reserve(len(uri) + len(message)):
            return False
        self.errors.append({"path": uri, "message": message})
        return True

    def result(self) -> dict[str, Any]:
        return {"entries": self.entries, "errors": self.errors, "truncated": self.truncated}


@frozen
class _Listed:
    """One entry of a listing: name, path, and its followed ``stat`` (done while listing)."""

    name: str
    path: str
    st: os.stat_result | None
    isSymlink: bool


def _join(directory: str, name: str) -> str:
    return directory + name if directory.endswith("/") else f"{directory}/{name}"


def _listed(directory: str, keep: int) -> list[_Listed]:
    """The ``keep`` smallest names of ``directory`` whose target can be ``stat``ed, sorted.

    Names that are not UTF-8 are decoded lossily, as the reference's ``String`` file names;
    such an entry is listed (its real ``stat`` works) but has ``st`` None: the walk then looks
    the lossy path up, which fails, and reports it as an error, as the reference does.
    """

    def candidates() -> Iterator[_Listed]:
        with os.scandir(os.fsencode(directory)) as it:
            for entry in it:
                name = entry.name.decode("utf-8", "replace")
                try:
                    st: os.stat_result | None = entry.stat()
                    isSymlink = entry.is_symlink()  # d_type: no system call, mostly
                except (OSError, ValueError):
                    continue
                if name.encode("utf-8", "surrogatepass") != entry.name:
                    st = None
                yield _Listed(name, _join(directory, name), st, isSymlink)

    return heapq.nsmallest(keep, candidates(), key=lambda item: item.name)


def walk(root: str, options: WalkOptions, toUri: Callable[[str], str]) -> dict[str, Any]:
    """The blocking walk (worker thread). Raises ``OSError`` only for the root's ``stat``."""
    checkLimits(options)
    rootStat, rootIsLink = statFollowing(root)
    if not stat.S_ISDIR(rootStat.st_mode) or (rootIsLink and not options.followDirectorySymlinks):
        return _Outcome().result()

    follow = options.followDirectorySymlinks
    outcome = _Outcome()
    queue: deque[tuple[str, int]] = deque([(root, 0)])
    visited = {os.path.realpath(root) if follow else root}
    directoryCount = 1
    entryCount = 0

    while queue:
        directory, depth = queue.popleft()
        try:
            listing = _listed(directory, options.maxEntries - entryCount + 1)
        except OSError as err:
            if not outcome.error(toUri(directory), osErrorMessage(err)):
                return outcome.result()
            continue
        for item in listing:
            if entryCount == options.maxEntries:
                outcome.truncated = True
                return outcome.result()
            entryCount += 1
            st = item.st
            if st is None:  # a lossy name: the path it makes does not exist
                try:
                    st = os.stat(item.path)
                except OSError as err:
                    if not outcome.error(toUri(item.path), osErrorMessage(err)):
                        return outcome.result()
                    continue
            isDir = stat.S_ISDIR(st.st_mode)
            if item.isSymlink and (not follow or not isDir):
                continue
            if isDir:
                kind = "directory"
            elif stat.S_ISREG(st.st_mode):
                kind = "file"
            else:
                continue
            uri = toUri(item.path)
            if not outcome.reserve(len(uri)):
                return outcome.result()
            outcome.entries.append({"path": uri, "kind": kind})
            if not isDir or depth >= options.maxDepth:
                continue
            if options.pruneHiddenDirectories and item.name.startswith("."):
                continue
            if follow:
                try:
                    identity = os.path.realpath(item.path, strict=True)
                except OSError as err:
                    if not outcome.error(uri, osErrorMessage(err)):
                        return outcome.result()
                    continue
            else:
                identity = item.path
            if identity in visited:
                continue
            visited.add(identity)
            if directoryCount == options.maxDirectories:
                outcome.truncated = True
            else:
                directoryCount += 1
                queue.append((item.path, depth + 1))
    return outcome.result()


__all__ = [
    "MAX_WALK_DEPTH",
    "MAX_WALK_DIRECTORIES",
    "MAX_WALK_ENTRIES",
    "MAX_WALK_RESPONSE_BYTES",
    "checkLimits",
    "walk",
]
