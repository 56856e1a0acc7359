"""``stat`` that follows symlinks, and whether the path itself is one, in one system call.

``fs/getMetadata`` (both dialects) and ``fs/walk``'s root answer ``isDirectory``/``isFile``/
``size``/``modifiedAtMs`` of the target and ``isSymlink`` of the entry. The reference asks with
one ``lstat``, and a ``stat`` only when the entry is a symlink (its ``strace`` during the relay
benchmark: one ``lstat`` per call, no ``stat``). Both resolve every component but the last the
same way, so when ``lstat`` fails, ``stat`` fails with the same errno, and when the entry is
not a symlink the two results are the same: answers and errors are unchanged, one system call
fewer on the worker thread of every call (docs/decisions.md 196).
"""

from __future__ import annotations

import os
import stat


def statFollowing(path: str) -> tuple[os.stat_result, bool]:
    """``(os.stat(path), whether path is a symlink)``; ``OSError`` as ``os.stat`` raises it."""
    entry = os.lstat(path)
    if stat.S_ISLNK(entry.st_mode):
        return os.stat(path), True
    return entry, False
