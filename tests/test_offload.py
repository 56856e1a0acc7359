"""The lean fs thread pool: results and failures back on the reactor, threads on demand."""

from __future__ import annotations

import os
import threading
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.threads import deferToThreadPool
from twisted.trial.unittest import SynchronousTestCase, TestCase

from twisted_exec.executor.resources.offload import OffloadPool


class OffloadPoolTests(TestCase):
    timeout = 20

    def pool(self, **kwargs: Any) -> OffloadPool:
        pool = OffloadPool(**kwargs)
        self.addCleanup(pool.stop)
        return pool

    async def test_resultAndFailureReachTheReactor(self) -> None:
        pool = self.pool()
        run: Any = deferToThreadPool
        stat = await run(reactor, pool, os.stat, "/")
        self.assertTrue(stat.st_mode)
        with self.assertRaises(FileNotFoundError):
            await run(reactor, pool, os.stat, "/no/such/path/at/all")
        caller = await run(reactor, pool, threading.current_thread)
        self.assertIsNot(caller, threading.current_thread())

    async def test_threadsOnDemandUpToTheLimit(self) -> None:
        pool = self.pool(maxThreads=3)
        release = threading.Event()
        started = threading.Semaphore(0)

        def block() -> str:
            started.release()
            release.wait(10)
            return threading.current_thread().name

        run: Any = deferToThreadPool
        calls = [run(reactor, pool, block) for _ in range(5)]
        for _ in range(3):
            self.assertTrue(started.acquire(timeout=5))
        self.assertEqual(pool.threadCount, 3)  # the other two wait for a free thread
        release.set()
        done: Deferred[list[str]] = gatherResults(calls)
        self.assertEqual(len(await done), 5)
        self.assertEqual(pool.threadCount, 3)

    async def test_oneThreadForSequentialCalls(self) -> None:
        pool = self.pool()
        run: Any = deferToThreadPool
        for _ in range(20):
            await run(reactor, pool, os.getpid)
        self.assertEqual(pool.threadCount, 1)


class IdleAndStopTests(SynchronousTestCase):
    def test_idleThreadsExit(self) -> None:
        pool = OffloadPool(idleTimeout=0.05)
        done = threading.Event()
        pool.callInThreadWithCallback(lambda ok, value: done.set(), os.getpid)
        self.assertTrue(done.wait(5))
        for thread in list(pool._threads):
            thread.join(5)
        self.assertEqual(pool.threadCount, 0)
        again = threading.Event()
        pool.callInThreadWithCallback(lambda ok, value: again.set(), os.getpid)
        self.assertTrue(again.wait(5))
        pool.stop()

    def test_stopJoinsAndRefusesNewCalls(self) -> None:
        pool = OffloadPool()
        done = threading.Event()
        pool.callInThreadWithCallback(lambda ok, value: done.set(), os.getpid)
        self.assertTrue(done.wait(5))
        threads = list(pool._threads)
        pool.stop()
        self.assertFalse(any(t.is_alive() for t in threads))
        self.assertRaises(
            RuntimeError, pool.callInThreadWithCallback, lambda ok, value: None, os.getpid
        )
