"""Spawning off the reactor thread (issue 15): PATH lookup, fork and exec wait on a worker.

Round 1 looked the program up on PATH (a ``stat`` per entry) and waited for ``Popen``'s exec
on the reactor thread: a slow filesystem stalled every session. The executor's process tables
now spawn on ``Executor.spawnPool``; the behaviour tests of the ``test_process_*`` modules run
again here with such a table (notifications, start errors, writes, PTYs, terminate).
"""

from __future__ import annotations

import subprocess
import threading
from typing import Any, cast

from twisted.internet import reactor
from twisted.python.threadpool import ThreadPool
from twisted.trial import unittest

import tests.support.processes as tp
import tests.test_process_io as processio
import tests.test_process_notifications as notifications
import tests.test_process_start as start
import tests.test_process_termination as termination
from twisted_exec.executor.executor import Executor
from twisted_exec.executor.resources import process_programs
from twisted_exec.executor.resources.offload import OffloadPool
from twisted_exec.executor.resources.processes import ProcessTable


class ThreadTests(unittest.TestCase):
    timeout = 20

    async def test_executorSpawnsOffTheReactorThread(self) -> None:
        seen: dict[str, set[str]] = {"lookup": set(), "popen": set()}
        realLookup = process_programs._isExecutableFile
        realPopen = subprocess.Popen

        def lookup(path: str) -> bool:
            seen["lookup"].add(threading.current_thread().name)
            return realLookup(path)

        class RecordingPopen(realPopen):  # type: ignore[misc,valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                seen["popen"].add(threading.current_thread().name)
                super().__init__(*args, **kwargs)

        self.patch(process_programs, "_isExecutableFile", lookup)
        self.patch(subprocess, "Popen", RecordingPopen)
        executor = Executor(reactor)
        self.addCleanup(executor.shutdown)
        notes = tp.Collector()
        session = executor.registry.create(notes)
        self.addCleanup(executor.registry.close, session)
        table = cast(Any, session.resources).processes
        for processId, tty in (("pipes", False), ("pty", True)):
            await table.start(tp.execParams(processId, ["true"], tty=tty))
            await notes.closed(processId)
        main = threading.main_thread().name
        self.assertTrue(seen["lookup"] and seen["popen"], seen)
        self.assertNotIn(main, seen["lookup"] | seen["popen"])

    async def test_sessionClosedWhileSpawning(self) -> None:
        """A child whose session ended while it was being started is killed, never adopted."""
        pool = OffloadPool(maxThreads=1)
        self.addCleanup(pool.stop)
        notes = tp.Collector()
        table = ProcessTable(reactor, notes, environ=tp.ENVIRON, spawnPool=pool)
        starting = table.start(tp.execParams("p", ["sleep", "30"]))
        table.killAll()
        try:
            await starting
        except Exception as err:
            self.assertIn("session closed while the process was starting", str(err))
        else:
            self.fail("started after its session ended")
        self.assertEqual(table.runningCount, 0)


class _OffThread:
    """Mixin: ``self.table`` spawns on a worker thread."""

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        self.pool = OffloadPool(maxThreads=2)
        case = cast(Any, self)
        case.addCleanup(self.pool.stop)
        case.table = ProcessTable(
            reactor, case.notes, environ=tp.ENVIRON, spawnPool=cast(ThreadPool, self.pool)
        )
        case.tables = [case.table]


class NotificationOffThreadTests(_OffThread, notifications.NotificationTests):
    pass


class StartOffThreadTests(_OffThread, start.StartTests):
    pass


class WriteOffThreadTests(_OffThread, processio.WriteTests):
    pass


class TerminateOffThreadTests(_OffThread, termination.TerminateTests):
    pass


class TtyOffThreadTests(_OffThread, start.TtyTests):
    pass
