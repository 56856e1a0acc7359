"""``fs/watchMissing`` and its ``fs/missingChanged`` notification, per connection.

The 0.171 binary's rules (docs/reference-0.171-fs.md, "fs/watchMissing"): one watch per
connection, replaced by any request with a greater ``watchId`` (a smaller or equal one is
"not watching" and changes nothing); "not watching" too when ``missing`` is empty or has more
than 64 paths, when their ancestors (with ``present``'s) number more than 64, when a missing
path exists or cannot be looked up without following a symlink, or when ``present`` is missing
or has a symlink in it.
Detection is inotify (no polling); the notification goes once, on the first change of a missing
path, of ``present``, or of an ancestor of either.

:func:`planWatch` and :class:`_Active` are plain logic; the checks run on the offload pool; the
kernel watches come from the executor's shared :class:`InotifyHub`. To miss nothing between the
check and the watch, the watches are added first and the checks run after: a change in between
either fails the check ("not watching") or is held and notified right after the reply.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from twisted_exec.compat.fileuri import normalizePath
from twisted_exec.compat.record import frozen
from twisted_exec.executor.core.interfaces import IConnectionResource
from twisted_exec.executor.resources.fs_blocking import BlockingRunner, CallInThread
from twisted_exec.executor.resources.fs_inotify import (
    IN_Q_OVERFLOW,
    InotifyHub,
    WatchCapacityError,
)
from twisted_exec.executor.resources.fs_metadata import openNoFollow

MAX_MISSING_PATHS = 64
MAX_ANCESTORS = 64

NOT_WATCHING = {"watching": False}


def ancestors(path: str) -> list[str]:
    """Every proper prefix directory of ``path``, ``/`` included (``/a/b`` → ``/``, ``/a``)."""
    if path == "/":
        return []
    parts = path.strip("/").split("/")
    return ["/"] + ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


@frozen
class WatchPlan:
    missing: tuple[str, ...]
    present: str | None
    ancestors: frozenset[str]

    @property
    def relevant(self) -> frozenset[str]:
        """A change to any of these paths fires the watch."""
        extra = {self.present} if self.present is not None else set()
        return self.ancestors | frozenset(self.missing) | extra

    @property
    def watchPaths(self) -> list[str]:
        """What to give inotify: every ancestor (those that exist) and ``present``."""
        paths = sorted(self.ancestors)
        if self.present is not None and self.present not in self.ancestors:
            paths.append(self.present)
        return paths


def planWatch(missing: list[str], present: str | None) -> WatchPlan | None:
    """The watch for these paths, or None when the reference answers "not watching" outright."""
    if not missing or len(missing) > MAX_MISSING_PATHS:
        return None
    normal = tuple(normalizePath(path) for path in missing)
    presentPath = None if present is None else normalizePath(present)
    seen: set[str] = set()
    # ``present``'s ancestors count and fire too (probed: chmod of its parent notifies)
    for path in (*normal, *(() if presentPath is None else (presentPath,))):
        seen.update(ancestors(path))
        if len(seen) > MAX_ANCESTORS:
            return None
    return WatchPlan(normal, presentPath, frozenset(seen))


def checkState(missing: tuple[str, ...], present: str | None) -> bool:
    """Blocking: every missing path is absent (no symlink on the way) and ``present`` exists."""
    for path in missing:
        try:
            fd = openNoFollow(path)
        except OSError as err:
            if err.errno == errno.ENOENT:
                continue
            return False
        os.close(fd)
        return False
    if present is not None:
        try:
            fd = openNoFollow(present)
        except OSError:
            return False
        try:
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                return False
        finally:
            os.close(fd)
    return True


class _Active:
    """The connection's current watch: its tokens, and whether it fired or may fire yet."""

    def __init__(self, watchId: int, relevant: frozenset[str]) -> None:
        self.watchId = watchId
        self.relevant = relevant
        self.tokens: list[int] = []
        self.armed = False  # the check passed and the reply is sent (or being sent)
        self.pending = False  # a change came before the watch was armed
        self.spent = False


@implementer(IConnectionResource)
class MissingWatcher:
    """The ``fs/watchMissing`` state of one connection; ``close`` when it ends."""

    def __init__(
        self,
        reactor: Any,
        pool: CallInThread,
        hub: InotifyHub,
        notify: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self._reactor = reactor
        self._blocking = BlockingRunner(reactor, pool)
        self._hub = hub
        self._notify = notify
        self._lastId = 0
        self._active: _Active | None = None

    @property
    def activeWatchId(self) -> int | None:
        active = self._active
        return None if active is None or active.spent else active.watchId

    def watch(
        self, watchId: int, missing: list[str], present: str | None
    ) -> Deferred[dict[str, Any]]:
        """``fs/watchMissing`` with host paths (an empty ``missing`` is "not watching")."""
        if watchId <= self._lastId:
            return succeed(NOT_WATCHING)
        self._lastId = watchId
        self._cancel()
        plan = planWatch(missing, present)
        if plan is None:
            return succeed(NOT_WATCHING)
        active = _Active(watchId, plan.relevant)
        self._active = active
        try:
            for path in plan.watchPaths:
                token = self._hub.subscribe(path, lambda c, m: self._changed(active, c, m))
                if token is not None:  # None: the ancestor does not exist (yet)
                    active.tokens.append(token)
        except WatchCapacityError:
            self._cancel()
            return succeed(NOT_WATCHING)
        d = self._blocking.run(checkState, plan.missing, plan.present)

        def checked(ok: bool) -> dict[str, Any]:
            if self._active is not active:
                return NOT_WATCHING
            if not ok:
                self._cancel()
                return NOT_WATCHING
            active.armed = True
            if active.pending:
                self._reactor.callLater(0, self._fire, active)
            return {"watching": True}

        def failed(failure: Any) -> dict[str, Any]:
            if self._active is active:
                self._cancel()
            return NOT_WATCHING

        return d.addCallbacks(checked, failed)

    def close(self) -> None:
        self._cancel()

    def _changed(self, active: _Active, path: str | None, mask: int) -> None:
        if active.spent or self._active is not active:
            return
        if path is not None and not mask & IN_Q_OVERFLOW and path not in active.relevant:
            return
        if active.armed:
            self._fire(active)
        else:
            active.pending = True

    def _fire(self, active: _Active) -> None:
        if active.spent or self._active is not active:
            return
        active.spent = True
        self._release(active)
        self._notify("fs/missingChanged", {"watchId": active.watchId})

    def _cancel(self) -> None:
        active, self._active = self._active, None
        if active is not None:
            active.spent = True
            self._release(active)

    def _release(self, active: _Active) -> None:
        for token in active.tokens:
            self._hub.unsubscribe(token)
        active.tokens.clear()


__all__ = [
    "MAX_ANCESTORS",
    "MAX_MISSING_PATHS",
    "MissingWatcher",
    "WatchPlan",
    "ancestors",
    "checkState",
    "planWatch",
]
