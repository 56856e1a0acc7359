"""The executor's shutdown waits for its killed children to end (bounded).

Without the wait a service's ``stopService`` returned while the SIGKILLed children were still
zombies with their pipes open: tests left process readers in the reactor, and ``twistd`` could
exit before its children were gone.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.trial.unittest import TestCase

from twisted_exec.compat.params import ExecParams
from twisted_exec.executor.executor import Executor, whenAllFired
from twisted_exec.executor.resources.process_entry import _Entry
from twisted_exec.executor.resources.processes import ProcessTable
from twisted_exec.executor.service import ExecutorService

ENVIRON = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


class WhenAllFiredTests(TestCase):
    """The bounded wait itself, on a :class:`Clock`."""

    def test_firesWithZeroOnceEveryWaitFired(self) -> None:
        clock = Clock()
        a: Deferred[None] = Deferred()
        b: Deferred[None] = Deferred()
        done = whenAllFired(clock, [a, b], 5.0)
        a.callback(None)
        self.assertNoResult(done)
        b.callback(None)
        self.assertEqual(self.successResultOf(done), 0)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_givesUpAtTheBoundWithHowManyWereLeft(self) -> None:
        clock = Clock()
        a: Deferred[None] = Deferred()
        done = whenAllFired(clock, [a, Deferred()], 5.0)
        a.callback(None)
        clock.advance(4.9)
        self.assertNoResult(done)
        clock.advance(0.1)
        self.assertEqual(self.successResultOf(done), 1)

    def test_nothingToWaitForFiresAtOnce(self) -> None:
        clock = Clock()
        self.assertEqual(self.successResultOf(whenAllFired(clock, [], 5.0)), 0)
        self.assertEqual(clock.getDelayedCalls(), [])


class ExecutorShutdownWaitsTests(TestCase):
    """:meth:`Executor.shutdown` on a fake reactor, with a process entry that has not ended."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.executor = Executor(self.reactor, shutdownGrace=5.0)
        session = self.executor.registry.create(lambda method, params: None)
        table: Any = session.resources.processes
        # an entry as a spawn leaves it, without a real child (no pgid: the kill is a no-op)
        self.entry = _Entry(table, "p", tty=False, pipeStdin=False)
        table._entries["p"] = self.entry
        table._running += 1

    def test_waitsForTheKilledProcessToEnd(self) -> None:
        done = self.executor.shutdown()
        self.assertNoResult(done)
        self.entry.ended()  # processEnded: reaped and every pipe closed
        self.successResultOf(done)

    def test_givesUpAfterTheGraceAndSaysHowManyWereLeft(self) -> None:
        with capturedLogs() as events:
            done = self.executor.shutdown()
            self.reactor.advance(4.9)
            self.assertNoResult(done)
            self.reactor.advance(0.1)
            self.successResultOf(done)
        messages = [e["log_format"] for e in events if e.get("left") == 1]
        self.assertEqual(len(messages), 1, messages)
        self.assertIn("had not ended", messages[0])

    def test_anEndedProcessIsNotWaitedFor(self) -> None:
        self.entry.ended()
        self.successResultOf(self.executor.shutdown())
        self.assertEqual(self.reactor.getDelayedCalls(), [])


class StopServiceReapsTests(TestCase):
    """A real child: ``stopService``'s Deferred fires only once the child is reaped."""

    timeout = 30

    async def test_stopServiceFiresAfterTheChildIsReaped(self) -> None:
        top = ExecutorService(reactor)
        top.startService()
        self.addCleanup(lambda: top.stopService() if top.running else None)
        session = top.executor.registry.create(lambda method, params: None)
        table: Any = session.resources.processes
        # the spawn puts the child in a process group of its own; it ignores SIGTERM
        argv = ["/bin/sh", "-c", "trap '' TERM; exec sleep 100"]
        params = ExecParams(
            processId="p", argv=argv, cwd="/", env={"PATH": ENVIRON["PATH"]}, tty=False
        )
        await table.start(params)
        pid = table._entries["p"].pgid
        self.assertIsNotNone(pid)
        os.kill(pid, 0)  # running
        await top.stopService()
        # reaped: not even a zombie is left (kill(pid, 0) succeeds on a zombie)
        with self.assertRaises(ProcessLookupError):
            os.kill(pid, 0)
        self.assertEqual(table.whenAllEnded(), [])


class NeverStartedTests(TestCase):
    """A spawn that failed (or was abandoned by a closing session) is not waited for."""

    def test_aFailedSpawnEndsTheWait(self) -> None:
        table = ProcessTable(MemoryReactorClock(), lambda method, params: None)
        entry = _Entry(table, "p", tty=False, pipeStdin=False)
        table._entries["p"] = entry
        table._running += 1
        [wait] = table.whenAllEnded()
        self.assertNoResult(wait)
        table._forgetFailed("p")
        self.successResultOf(wait)
        self.assertEqual(table.whenAllEnded(), [])
