"""One inotify descriptor for the whole executor, read by the reactor; watches shared by path.

Why not ``twisted.internet.inotify``: its ``INotify`` closes the whole descriptor (every watch of
every connection) when any watched directory is deleted (``IN_DELETE_SELF`` →
``loseConnection()``), and it keeps one callback list per path, so two connections watching the
same directory would share and tear down each other's callbacks. This hub keeps subscribers per
path, refcounts the kernel watches, and survives deletions (``IN_IGNORED`` just forgets the wd).

Bounds: at most ``maxWatches`` watched paths per executor (a request beyond that is answered
"not watching"); ``inotify_init1`` is called lazily, once. Event parsing (:func:`parseEvents`) is
a plain function. Adding a watch is one ``inotify_add_watch`` on the reactor thread, as Twisted's
own ``INotify.watch`` does; a watch request adds at most 65 of them.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_exec.compat.record import frozen

log = Logger()

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

CHANGE_MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)
"""Changes, not reads: open/read/close of a watched file does not count (as the reference)."""

MAX_WATCHES = 8192
_EVENT = struct.Struct("=iIII")
_READ_SIZE = 64 * 1024

Callback = Callable[[str | None, int], None]
"""``callback(path, mask)``: the changed path (``None`` on a queue overflow: anything may have
changed) and the event's mask."""


@frozen
class RawEvent:
    wd: int
    mask: int
    name: str | None


def parseEvents(data: bytes) -> Iterator[RawEvent]:
    """``struct inotify_event`` records; the kernel hands out whole records only."""
    offset = 0
    while offset + _EVENT.size <= len(data):
        wd, mask, _cookie, size = _EVENT.unpack_from(data, offset)
        offset += _EVENT.size
        raw = data[offset : offset + size].rstrip(b"\0")
        offset += size
        yield RawEvent(wd, mask, os.fsdecode(raw) if raw else None)


class _Libc:
    """The three inotify calls, through ctypes (no extension module needed)."""

    def __init__(self) -> None:
        libc: Any = ctypes.CDLL(None, use_errno=True)
        self._init = libc.inotify_init1
        self._add = libc.inotify_add_watch
        self._rm = libc.inotify_rm_watch

    def init(self) -> int:
        fd = self._init(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise _lastError()
        return int(fd)

    def add(self, fd: int, path: str, mask: int) -> int:
        wd = self._add(fd, os.fsencode(path), mask)
        if wd < 0:
            raise _lastError()
        return int(wd)

    def rm(self, fd: int, wd: int) -> None:
        self._rm(fd, wd)


def _lastError() -> OSError:
    code = ctypes.get_errno()
    return OSError(code, os.strerror(code))


class WatchCapacityError(Exception):
    """No more kernel watches can be added (the hub's bound, or no inotify at all)."""


@dataclass
class _Watched:
    path: str
    wd: int
    subscribers: dict[int, Callback] = field(default_factory=dict)
    dead: bool = False  # the kernel dropped the watch (IN_IGNORED): its wd may be reused


@implementer(IReadDescriptor)
class InotifyHub:
    """Subscribe a callback to changes of one path; ``unsubscribe`` with the returned token."""

    def __init__(self, reactor: Any, *, maxWatches: int = MAX_WATCHES, libc: Any = None) -> None:
        self._reactor = reactor
        self.maxWatches = maxWatches
        self._libc = libc
        self._fd = -1
        self._failed = False
        self._byPath: dict[str, _Watched] = {}
        self._byWd: dict[int, list[_Watched]] = {}
        self._tokens: dict[int, _Watched] = {}
        self._nextToken = 0

    def __len__(self) -> int:
        return len(self._byPath)

    # -- subscriptions --------------------------------------------------------------------------

    def subscribe(self, path: str, callback: Callback) -> int | None:
        """A token, or None when ``path`` cannot be watched (it does not exist, say).

        Raises :class:`WatchCapacityError` when the hub is full or inotify is unavailable.
        """
        watched = self._byPath.get(path)
        if watched is None:
            if len(self._byPath) >= self.maxWatches:
                raise WatchCapacityError(f"at most {self.maxWatches} watched paths")
            if not self._ensureOpen():
                raise WatchCapacityError("inotify is unavailable")
            try:
                wd = self._libc.add(self._fd, path, CHANGE_MASK)
            except OSError:
                return None
            watched = _Watched(path, wd)
            self._byPath[path] = watched
            self._byWd.setdefault(wd, []).append(watched)
        self._nextToken += 1
        watched.subscribers[self._nextToken] = callback
        self._tokens[self._nextToken] = watched
        return self._nextToken

    def unsubscribe(self, token: int) -> None:
        watched = self._tokens.pop(token, None)
        if watched is None:
            return
        watched.subscribers.pop(token, None)
        if watched.subscribers:
            return
        self._forget(watched)
        if not watched.dead and watched.wd not in self._byWd and self._fd >= 0:
            self._libc.rm(self._fd, watched.wd)

    def _forget(self, watched: _Watched) -> None:
        if self._byPath.get(watched.path) is watched:
            del self._byPath[watched.path]
        siblings = self._byWd.get(watched.wd)
        if siblings is not None and watched in siblings:
            siblings.remove(watched)
            if not siblings:
                del self._byWd[watched.wd]

    def _ensureOpen(self) -> bool:
        if self._fd >= 0:
            return True
        if self._failed:
            return False
        try:
            if self._libc is None:
                self._libc = _Libc()
            self._fd = self._libc.init()
        except (OSError, AttributeError) as err:
            self._failed = True
            log.warn("inotify unavailable, fs/watchMissing answers false: {err}", err=err)
            return False
        self._reactor.addReader(self)
        return True

    def close(self) -> None:
        """Service stop: drop every watch and the descriptor."""
        if self._fd >= 0:
            self._reactor.removeReader(self)
            os.close(self._fd)
            self._fd = -1
        self._byPath.clear()
        self._byWd.clear()
        self._tokens.clear()

    # -- IReadDescriptor ------------------------------------------------------------------------

    def fileno(self) -> int:
        return self._fd

    def logPrefix(self) -> str:
        return "InotifyHub"

    def connectionLost(self, reason: Failure) -> None:
        self._fd = -1

    def doRead(self) -> None:
        try:
            data = os.read(self._fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError as err:
            if err.errno == errno.EINTR:
                return
            raise
        self.dispatch(data)

    def dispatch(self, data: bytes) -> None:
        """Deliver the events in ``data`` (what ``doRead`` read) to their subscribers."""
        for event in parseEvents(data):
            if event.mask & IN_Q_OVERFLOW:
                for watched in list(self._byPath.values()):
                    self._deliver(watched, None, event.mask)
                continue
            for watched in list(self._byWd.get(event.wd, ())):
                path = watched.path if event.name is None else _join(watched.path, event.name)
                self._deliver(watched, path, event.mask)
                if event.mask & IN_IGNORED:
                    watched.dead = True
                    self._forget(watched)

    @staticmethod
    def _deliver(watched: _Watched, path: str | None, mask: int) -> None:
        for callback in list(watched.subscribers.values()):
            try:
                callback(path, mask)
            except Exception:
                log.failure("inotify subscriber failed")


def _join(directory: str, name: str) -> str:
    return directory + name if directory.endswith("/") else f"{directory}/{name}"


__all__ = [
    "CHANGE_MASK",
    "MAX_WATCHES",
    "InotifyHub",
    "RawEvent",
    "WatchCapacityError",
    "parseEvents",
]
