"""fs/watchMissing on real directories with the real inotify, as probed on Codex 0.171.0.

Each case mirrors a probe of the binary (docs/reference-0.171-fs.md, "fs/watchMissing"). Waits
for a notification are bounded (``NOTIFY_WAIT``); "no notification" is shown by a later change
that does notify, so no test sleeps to prove a negative.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from twisted_exec.executor.core.interfaces import IConnectionResource
from twisted_exec.executor.resources.fs_inotify import (
    IN_CREATE,
    IN_IGNORED,
    InotifyHub,
    WatchCapacityError,
    parseEvents,
)
from twisted_exec.executor.resources.fs_watch import (
    MissingWatcher,
    ancestors,
    checkState,
    planWatch,
)
from twisted_exec.executor.resources.offload import OffloadPool

NOTIFY_WAIT = 5.0


def appendTo(path: str) -> None:
    with open(path, "a") as f:
        f.write("x")


class PlanTests(SynchronousTestCase):
    def test_ancestors(self) -> None:
        self.assertEqual(ancestors("/a/b/c"), ["/", "/a", "/a/b"])
        self.assertEqual(ancestors("/x"), ["/"])
        self.assertEqual(ancestors("/"), [])

    def test_limits(self) -> None:
        self.assertIsNone(planWatch([], "/tmp"))
        self.assertIsNotNone(planWatch([f"/m/x{i}" for i in range(64)], None))
        self.assertIsNone(planWatch([f"/m/x{i}" for i in range(65)], None))
        self.assertIsNone(planWatch(["/m/x"] * 65, None))  # duplicates count
        # /m/d{i}/x: the ancestors are /, /m and the 62 /m/d{i}: 64 is the most
        self.assertIsNotNone(planWatch([f"/m/d{i}/x" for i in range(62)], None))
        self.assertIsNone(planWatch([f"/m/d{i}/x" for i in range(63)], None))
        self.assertIsNotNone(planWatch([f"/n{i}/x" for i in range(63)], None))
        self.assertIsNone(planWatch([f"/n{i}/x" for i in range(64)], None))
        # present's ancestors count too, present itself not (58 + 6 + 2 is too many, 55 fits)
        base = "/work/scratch/fs171/m"
        many = [f"{base}/many/d{i}/x" for i in range(58)]
        self.assertIsNotNone(planWatch(many, f"{base}/pp"))
        self.assertIsNone(planWatch(many, f"{base}/pp/qq/rr"))
        self.assertIsNone(planWatch(many[:57], f"{base}/pp/qq/rr"))
        self.assertIsNotNone(planWatch(many[:55], f"{base}/pp/qq/rr"))

    def test_relevantAndWatchedPaths(self) -> None:
        plan = planWatch(["/a/b/../c/x", "/a/c/y"], "/p/q/")
        assert plan is not None
        self.assertEqual(plan.missing, ("/a/c/x", "/a/c/y"))
        self.assertEqual(plan.watchPaths, ["/", "/a", "/a/c", "/p", "/p/q"])
        self.assertEqual(plan.relevant, {"/", "/a", "/a/c", "/a/c/x", "/a/c/y", "/p", "/p/q"})

    def test_parseEvents(self) -> None:
        import struct

        raw = struct.pack("=iIII", 3, IN_CREATE, 0, 16) + b"name\0" + b"\0" * 11
        raw += struct.pack("=iIII", 4, IN_IGNORED, 0, 0)
        events = list(parseEvents(raw))
        self.assertEqual(
            [(e.wd, e.mask, e.name) for e in events],
            [(3, IN_CREATE, "name"), (4, IN_IGNORED, None)],
        )


class CheckStateTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.d = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.d, "present"))
        open(os.path.join(self.d, "present/exist"), "w").close()
        os.symlink("present", os.path.join(self.d, "plink"))
        os.symlink("nowhere", os.path.join(self.d, "dang"))

    def p(self, name: str) -> str:
        return os.path.join(self.d, name)

    def test_cases(self) -> None:
        present = self.p("present")
        cases = [
            ((self.p("present/a"),), present, True),
            ((self.p("nx1/nx2/a"),), None, True),
            (("/nonexistent-top/x/y",), present, True),
            ((self.p("present/exist"),), present, False),  # exists
            ((self.p("dang"),), present, False),  # a dangling symlink exists
            ((self.p("present/exist/x"),), present, False),  # a file on the way
            ((self.p("plink/new"),), present, False),  # a symlink on the way
            ((self.p("dang/x"),), None, False),
            (("/",), present, False),
            ((self.p("present/a"),), self.p("nope"), False),
            ((self.p("present/a"),), self.p("plink"), False),
            ((self.p("present/a"),), self.p("plink/exist"), False),
            ((self.p("present/a"),), self.p("present/exist"), True),  # a file is fine
            ((self.p("present/a"),), "/", True),
        ]
        for missing, presentPath, expected in cases:
            self.assertEqual(checkState(missing, presentPath), expected, (missing, presentPath))


class WatcherTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.pool = OffloadPool()
        self.addCleanup(self.pool.stop)
        self.hub = InotifyHub(reactor)
        self.addCleanup(self.hub.close)
        self.notes: list[tuple[str, dict[str, Any]]] = []
        self.waiting: Deferred[None] | None = None
        self.watcher = self.newWatcher(self.notes)
        self.d = os.path.abspath(self.mktemp())
        for sub in ("present/sub", "other"):
            os.makedirs(os.path.join(self.d, sub))
        open(os.path.join(self.d, "present/exist"), "w").close()

    def newWatcher(self, notes: list[tuple[str, dict[str, Any]]]) -> MissingWatcher:
        def notify(method: str, params: dict[str, Any]) -> None:
            notes.append((method, params))
            if self.waiting is not None:
                waiting, self.waiting = self.waiting, None
                waiting.callback(None)

        watcher = MissingWatcher(reactor, self.pool, self.hub, notify)
        self.addCleanup(watcher.close)
        return watcher

    def p(self, name: str) -> str:
        return os.path.join(self.d, name)

    async def watch(self, watchId: int, missing: list[str], present: str | None = None) -> bool:
        got = await self.watcher.watch(
            watchId, [self.p(m) for m in missing], present and self.p(present)
        )
        return bool(got["watching"])

    async def changeAndWait(self, change: Callable[[], object]) -> list[dict[str, Any]]:
        """Make the change, then wait (bounded) for the next notification; all notes so far."""
        self.waiting = Deferred()
        waiting = self.waiting
        change()
        waiting.addTimeout(NOTIFY_WAIT, reactor)
        await waiting
        return [params for _, params in self.notes]

    async def test_createOneMissingPathNotifiesOnce(self) -> None:
        self.assertTrue(await self.watch(1, ["present/f1", "present/f2"], "present"))
        notes = await self.changeAndWait(lambda: open(self.p("present/f1"), "w").close())
        self.assertEqual(self.notes, [("fs/missingChanged", {"watchId": 1})])
        # spent: f2 no longer notifies; the next watch does
        self.assertTrue(await self.watch(2, ["present/f3"], "present"))
        open(self.p("present/f2"), "w").close()
        notes = await self.changeAndWait(lambda: os.mkdir(self.p("present/f3")))
        self.assertEqual(notes, [{"watchId": 1}, {"watchId": 2}])

    async def test_idsMustGrowAndANewerWatchReplaces(self) -> None:
        self.assertFalse(await self.watch(0, ["present/a"], "present"))
        self.assertTrue(await self.watch(5, ["other/a"], "present"))
        self.assertFalse(await self.watch(5, ["other/b"], "present"))
        self.assertFalse(await self.watch(3, ["other/b"], "present"))  # stale: 5 stays active
        self.assertEqual(self.watcher.activeWatchId, 5)
        # a newer request replaces the active watch even when it answers false
        self.assertFalse(await self.watch(6, ["present/exist"], "present"))
        self.assertIsNone(self.watcher.activeWatchId)
        self.assertFalse(await self.watch(6, ["other/c"], "present"))  # 6 was used
        self.assertTrue(await self.watch(7, ["other/c"], "present"))
        open(self.p("other/a"), "w").close()  # watch 5's path: no longer watched
        notes = await self.changeAndWait(lambda: open(self.p("other/c"), "w").close())
        self.assertEqual(notes, [{"watchId": 7}])

    async def test_whatFires(self) -> None:
        fires: list[tuple[list[str], str | None, Callable[[], object]]] = [
            (["present/deep/er/f5"], "present", lambda: os.mkdir(self.p("present/deep"))),
            (["other/a"], "present", lambda: os.chmod(self.p("present"), 0o755)),
            (["other/a"], "present/sub", lambda: os.chmod(self.p("present"), 0o700)),
            (["other/a"], "present/exist", lambda: appendTo(self.p("present/exist"))),
            (["other/deep/a"], None, lambda: os.chmod(self.d, 0o755)),
            (["other/b"], None, lambda: os.rename(self.p("other"), self.p("other2"))),
            (["other2/x"], "present", lambda: shutil.rmtree(self.p("other2"))),
            (["nx1/nx2/a"], None, lambda: os.makedirs(self.p("nx1/nx2"))),
            (["present/ln"], None, lambda: os.symlink("nowhere", self.p("present/ln"))),
        ]
        for watchId, (missing, present, change) in enumerate(fires, start=1):
            self.assertTrue(await self.watch(watchId, missing, present), missing)
            notes = await self.changeAndWait(change)
            self.assertEqual(notes[-1], {"watchId": watchId}, missing)
        self.assertEqual(len(self.notes), len(fires))

    async def test_unrelatedChangesDoNotFire(self) -> None:
        self.assertTrue(await self.watch(1, ["present/a"], "present"))
        open(self.p("present/zzz"), "w").close()  # a sibling
        with open(self.p("present/exist"), "w") as f:  # a child of present (the directory)
            f.write("x")
        os.unlink(self.p("present/zzz"))
        with open(self.p("present/exist")) as f:
            f.read()
        os.mkdir(self.p("newdir"))  # a sibling of an ancestor
        notes = await self.changeAndWait(lambda: os.mkdir(self.p("present/a")))
        self.assertEqual(notes, [{"watchId": 1}])

    async def test_connectionsAreIndependent(self) -> None:
        otherNotes: list[tuple[str, dict[str, Any]]] = []
        other = self.newWatcher(otherNotes)
        self.assertTrue(await self.watch(1, ["present/a"], "present"))
        got = await other.watch(1, [self.p("present/a")], self.p("present"))
        self.assertEqual(got, {"watching": True})
        other.close()  # one connection ends: the shared kernel watch stays for the other
        await self.changeAndWait(lambda: os.mkdir(self.p("present/a")))
        self.assertEqual(otherNotes, [])
        self.assertEqual(self.notes, [("fs/missingChanged", {"watchId": 1})])

    def test_providesIConnectionResource(self) -> None:
        verifyObject(IConnectionResource, self.watcher)

    async def test_closeReleasesTheKernelWatches(self) -> None:
        self.assertTrue(await self.watch(1, ["present/a"], "present"))
        self.assertGreater(len(self.hub), 0)
        self.watcher.close()
        self.assertEqual(len(self.hub), 0)

    async def test_aFullHubAnswersFalse(self) -> None:
        self.hub.maxWatches = 2
        self.assertFalse(await self.watch(1, ["present/a"], "present"))
        self.assertEqual(len(self.hub), 0)
        self.hub.maxWatches = 1000
        self.assertTrue(await self.watch(2, ["present/a"], "present"))

    async def test_aChangeDuringTheCheckIsNotifiedAfterTheReply(self) -> None:
        # the watches are added before the check runs on the pool: a change in between is held
        replied: list[bool] = []
        d = self.watcher.watch(1, [self.p("present/a")], self.p("present"))
        os.chmod(self.p("present"), 0o755)  # present itself: fires, but the check still passes
        self.waiting = Deferred()
        waiting = self.waiting
        d.addCallback(lambda got: replied.append(got["watching"]))
        await d
        waiting.addTimeout(NOTIFY_WAIT, reactor)
        await waiting
        self.assertEqual(replied, [True])
        self.assertEqual(self.notes, [("fs/missingChanged", {"watchId": 1})])


class HubTests(TestCase):
    timeout = 10

    def test_capacityAndUnavailable(self) -> None:
        hub = InotifyHub(reactor, maxWatches=1)
        self.addCleanup(hub.close)
        token = hub.subscribe("/", lambda path, mask: None)
        self.assertIsNotNone(token)
        self.assertIsNotNone(hub.subscribe("/", lambda path, mask: None))  # same path: shared
        self.assertRaises(WatchCapacityError, hub.subscribe, "/tmp", lambda path, mask: None)
        roomy = InotifyHub(reactor)
        self.addCleanup(roomy.close)
        self.assertIsNone(roomy.subscribe("/no/such/dir", lambda path, mask: None))

        class Broken:
            def init(self) -> int:
                raise OSError(24, "Too many open files")

        broken = InotifyHub(reactor, libc=Broken())
        self.assertRaises(WatchCapacityError, broken.subscribe, "/", lambda path, mask: None)

    async def test_deletedDirectoryKeepsTheHubAlive(self) -> None:
        hub = InotifyHub(reactor)
        self.addCleanup(hub.close)
        d = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(d, "gone"))
        os.makedirs(os.path.join(d, "kept"))
        seen: list[str | None] = []
        hub.subscribe(os.path.join(d, "gone"), lambda path, mask: seen.append(path))
        hub.subscribe(os.path.join(d, "kept"), lambda path, mask: seen.append(path))
        os.rmdir(os.path.join(d, "gone"))
        open(os.path.join(d, "kept/x"), "w").close()
        for _ in range(200):
            if os.path.join(d, "kept/x") in seen:
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        self.assertIn(os.path.join(d, "gone"), seen)
        self.assertIn(os.path.join(d, "kept/x"), seen)
        self.assertEqual(len(hub), 1)
