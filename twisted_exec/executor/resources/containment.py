"""Containment: every descendant of a session's processes dies with the session.

Killing a child's process group (round 1) misses a grandchild that called ``setsid``: it left the
group, and once its parent exits it is re-parented to init and outlives the executor, although
the README promises that processes are never orphaned. Cgroups would contain it, but the one
writable hierarchy on a typical host belongs to whoever runs us; so we use the kernel's *child
subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``, Linux 3.4+) instead:

- orphaned descendants are re-parented to the executor, not to init, so they stay visible
  (``/proc/<executor>/task/*/children``) and their zombies are ours to reap;
- :meth:`Containment.descendants` walks ``/proc/<pid>/task/*/children`` from a live process,
  which finds ``setsid`` grandchildren under a live parent too;
- :meth:`Containment.adopted` lists our children that Twisted did not spawn (orphans we adopted);
  :meth:`Containment.reapAdopted` reaps those that exited with ``waitpid(pid, WNOHANG)`` on their
  own pids only. Twisted's SIGCHLD handling ``waitpid``\\s only the pids it spawned
  (``twisted.internet.process.reapProcessHandlers``), and we never wait on those nor on
  ``-1``, so the two never steal each other's exit statuses.

Who owns an adopted orphan: an orphan of a session process keeps that process's process group
unless it called ``setsid``; the process table attributes adopted pids by process group, by its
last descendant walk, and otherwise to the session whose process exited last (see
``ProcessTable``). Whatever is left is killed when the executor stops.

Signals: a child inherits *ignored* dispositions across ``exec``, but handled ones are reset to
the default. An executor started with SIGINT/SIGQUIT ignored (``nohup``, a non-interactive
shell's ``&``) would pass ``SIG_IGN`` to every child (Twisted leaves an ignored SIGINT alone), so
:func:`restoreChildSignals` replaces ``SIG_IGN`` with a handler that ignores the signal: the
executor still ignores it, and its children start with the default action.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from collections.abc import Callable, Collection, Iterable
from types import FrameType

from twisted.logger import Logger

log = Logger()

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37

#: Signals whose ``SIG_IGN`` must not reach children (see module docstring).
CHILD_DEFAULT_SIGNALS = (signal.SIGINT, signal.SIGQUIT)


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None


def setChildSubreaper(enable: bool = True) -> bool:
    """Make this process the subreaper of its descendants; False where the kernel refuses."""
    libc = _libc()
    if libc is None:
        return False
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    if prctl(PR_SET_CHILD_SUBREAPER, 1 if enable else 0, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        log.warn("prctl(PR_SET_CHILD_SUBREAPER) failed: {err}", err=os.strerror(err))
        return False
    return True


def isChildSubreaper() -> bool:
    libc = _libc()
    if libc is None:
        return False
    value = ctypes.c_int(0)
    prctl = libc.prctl
    prctl.restype = ctypes.c_int
    if prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(value), 0, 0, 0) != 0:
        return False
    return bool(value.value)


def _ignoreSignal(signum: int, frame: FrameType | None) -> None:
    """Handled, hence reset to the default in an exec'd child; does nothing here."""


def restoreChildSignals(signals: Iterable[int] = CHILD_DEFAULT_SIGNALS) -> list[int]:
    """Turn an inherited ``SIG_IGN`` into an ignoring handler; returns the signals changed.

    Must run on the main thread (``signal.signal``), e.g. when the executor service starts.
    """
    changed = []
    for signum in signals:
        if signal.getsignal(signum) == signal.SIG_IGN:
            signal.signal(signum, _ignoreSignal)
            changed.append(signum)
    return changed


# -- /proc ------------------------------------------------------------------------------------


def childrenOf(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's), from ``/proc/<pid>/task/*/children``."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    result: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                result.extend(int(part) for part in f.read().split())
        except (OSError, ValueError):
            continue
    return result


def _statIds(pid: int) -> tuple[int, int] | None:
    """``(pgid, sid)`` from ``/proc/<pid>/stat`` (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp session ...": comm may contain spaces and parentheses.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[2]), int(fields[3])
    except (IndexError, ValueError):
        return None


def processGroupOf(pid: int) -> int | None:
    ids = _statIds(pid)
    return None if ids is None else ids[0]


def sessionOf(pid: int) -> int | None:
    ids = _statIds(pid)
    return None if ids is None else ids[1]


def descendants(pid: int, limit: int = 100_000) -> list[int]:
    """Every live descendant of ``pid`` (breadth first, bounded by ``limit``)."""
    found: list[int] = []
    seen = {pid}
    frontier = [pid]
    while frontier and len(found) < limit:
        nextFrontier = []
        for parent in frontier:
            for child in childrenOf(parent):
                if child not in seen:
                    seen.add(child)
                    found.append(child)
                    nextFrontier.append(child)
        frontier = nextFrontier
    return found


def killTree(pids: Iterable[int], sig: int = signal.SIGKILL, rounds: int = 4) -> int:
    """SIGKILL ``pids``, their descendants and their process groups; returns how many were hit.

    Descendants are collected before anything is killed (a killed parent's children are
    re-parented, so walking afterwards would miss them), and the walk is repeated a few
    times for processes forked meanwhile (SIGKILL lets no process fork after it).
    """
    hit: set[int] = set()
    roots = list(pids)
    for _ in range(rounds):
        tree = [p for p in roots if p not in hit]
        for root in list(tree):
            tree.extend(descendants(root))
        fresh = [p for p in dict.fromkeys(tree) if p not in hit]
        if not fresh:
            break
        for target in fresh:
            try:
                os.kill(target, sig)
            except ProcessLookupError:
                pass
            except OSError as err:
                log.warn("kill({pid}) failed: {err}", pid=target, err=err)
            hit.add(target)
        roots = fresh
    return len(hit)


class Containment:
    """The executor's adopted orphans and who owns them (one per executor process).

    Owners are opaque (a session's process table). An owner registers the process group of
    each process it spawns (every child leads its own session, so pgid = sid = its pid); an
    adopted orphan belongs to the owner of its session id or process group, else (it called
    ``setsid``) to the owner whose process exited last, since it was that process's child (or
    grandchild) that was just re-parented to us. Only orphans whose session differs from ours
    are considered: a child the executor's host process spawned itself (a test's
    ``subprocess``) shares our session and is never touched.
    """

    def __init__(
        self,
        known: Callable[[], Collection[int]] | None = None,
        selfPid: Callable[[], int] = os.getpid,
    ) -> None:
        self._known = known if known is not None else _twistedPids
        self._selfPid = selfPid
        self.enabled = False
        self._groups: dict[int, object] = {}  # pgid of a spawned process -> its owner
        self._owners: dict[int, object | None] = {}  # adopted pid -> owner (None: unknown)
        self._lastExited: object | None = None
        #: Spawns under way on worker threads: their children exist before Twisted knows them
        #: (and lead sessions of their own), so no sweep may run meanwhile.
        self.spawning = 0

    def enable(self) -> bool:
        self.enabled = setChildSubreaper(True)
        return self.enabled

    # -- owners ----------------------------------------------------------------------------

    def spawned(self, owner: object, pgid: int) -> None:
        self._groups[pgid] = owner

    def exited(self, owner: object) -> None:
        """One of ``owner``'s processes was reaped: its orphans are ours now; sweep."""
        self._lastExited = owner
        self.sweep(owner)

    def owned(self, owner: object) -> list[int]:
        self.sweep()
        return [pid for pid, who in self._owners.items() if who is owner]

    def release(self, owner: object) -> None:
        """``owner`` ended (its processes were killed): forget its groups and orphans."""
        for pgid in [g for g, who in self._groups.items() if who is owner]:
            del self._groups[pgid]
        for pid in [p for p, who in self._owners.items() if who is owner]:
            self._owners[pid] = None
        if self._lastExited is owner:
            self._lastExited = None

    # -- adopted orphans -------------------------------------------------------------------

    def adopted(self) -> list[int]:
        """Our children that Twisted did not spawn and that are not of our session."""
        if not self.enabled:
            return []
        known = set(self._known())
        me = self._selfPid()
        mySession = os.getsid(0)
        result = []
        for pid in childrenOf(me):
            if pid in known:
                continue
            if pid not in self._owners and sessionOf(pid) in (mySession, None):
                continue
            result.append(pid)
        return result

    def beginSpawn(self) -> None:
        self.spawning += 1

    def endSpawn(self) -> None:
        self.spawning -= 1

    def sweep(self, exitedOwner: object | None = None) -> list[int]:
        """Attribute new orphans, reap those that exited; returns the pids reaped.

        Skipped while a spawn is under way (a child not yet adopted by Twisted would look like
        an orphan); the next sweep catches up.
        """
        if self.spawning:
            return []
        current = self.adopted()
        for pid in current:
            if pid in self._owners:
                continue
            ids = _statIds(pid)
            owner = None
            if ids is not None:
                owner = self._groups.get(ids[1], self._groups.get(ids[0]))
            if owner is None:
                owner = exitedOwner if exitedOwner is not None else self._lastExited
            self._owners[pid] = owner
        reaped = self.reapAdopted(current)
        alive = set(current) - set(reaped)
        for pid in [p for p in self._owners if p not in alive]:
            del self._owners[pid]
        return reaped

    def reapAdopted(self, pids: Iterable[int]) -> list[int]:
        """Reap the adopted orphans among ``pids`` that exited. Never waits on Twisted's."""
        known = set(self._known())
        reaped = []
        for pid in pids:
            if pid in known:
                continue
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                reaped.append(pid)  # somebody else reaped it: it is gone all the same
                continue
            if done == pid:
                reaped.append(pid)
        return reaped

    def killOwned(self, owner: object, roots: Iterable[int] = ()) -> int:
        """SIGKILL ``owner``'s live processes (``roots``), their trees and its orphans."""
        targets = list(roots) + self.owned(owner)
        hit = killTree(targets) if targets else 0
        self.release(owner)
        return hit

    def killEverything(self) -> int:
        """Executor shutdown: every adopted orphan and its tree, owned or not."""
        self.sweep()
        hit = killTree(list(self._owners))
        self.sweep()
        return hit


def _twistedPids() -> Collection[int]:
    from twisted.internet import process

    return process.reapProcessHandlers.keys()


__all__ = [
    "CHILD_DEFAULT_SIGNALS",
    "Containment",
    "childrenOf",
    "descendants",
    "isChildSubreaper",
    "killTree",
    "processGroupOf",
    "restoreChildSignals",
    "sessionOf",
    "setChildSubreaper",
]
