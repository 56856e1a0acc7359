"""``OffloadPool.deferToPool``: finished calls share one reactor wake-up.

The completion path is driven directly (``_finish`` is what a worker calls after a
``deferToPool`` job) with a reactor that only records ``callFromThread``: no threads, no
waiting, so the count of wake-ups is exact.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import AlreadyCalledError, Deferred
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from twisted_exec.executor.resources.offload import OffloadPool


class _RecordingReactor:
    """``callFromThread`` that keeps the calls for the test to run ``on the reactor``."""

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.calls.append((f, args))

    def runCalls(self) -> None:
        calls, self.calls = self.calls, []
        for f, args in calls:
            f(*args)


def _pool() -> tuple[OffloadPool, _RecordingReactor]:
    pool = OffloadPool()
    fake = _RecordingReactor()
    pool._reactor = fake  # type: ignore[assignment]  # what deferToPool records
    return pool, fake


class CompletionBatchingTests(SynchronousTestCase):
    def test_resultsFinishedTogetherShareOneWakeUp(self) -> None:
        pool, fake = _pool()
        ds: list[Deferred[Any]] = [Deferred() for _ in range(3)]
        got: list[Any] = []
        for d in ds:
            d.addCallback(got.append)
        for i, d in enumerate(ds):
            pool._finish(d, True, i)
        self.assertEqual(len(fake.calls), 1)
        self.assertEqual(got, [])  # nothing fires on the worker
        fake.runCalls()
        self.assertEqual(got, [0, 1, 2])  # every one, in the order they finished

    def test_aResultAfterADeliveryWakesTheReactorAgain(self) -> None:
        pool, fake = _pool()
        first: Deferred[int] = Deferred()
        second: Deferred[int] = Deferred()
        pool._finish(first, True, 1)
        fake.runCalls()
        self.assertEqual(self.successResultOf(first), 1)
        pool._finish(second, True, 2)
        self.assertEqual(len(fake.calls), 1)
        fake.runCalls()
        self.assertEqual(self.successResultOf(second), 2)

    def test_failuresAreErrbacksAndADeliveryThatRaisesDropsNoneOfTheRest(self) -> None:
        pool, fake = _pool()
        failed: Deferred[Any] = Deferred()
        alreadyFired: Deferred[Any] = Deferred()
        alreadyFired.callback("before")  # callback() raises AlreadyCalledError on delivery
        last: Deferred[Any] = Deferred()
        pool._finish(failed, False, Failure(KeyError("k")))
        pool._finish(alreadyFired, True, None)
        pool._finish(last, True, "still")
        fake.runCalls()
        self.failureResultOf(failed, KeyError)
        self.assertEqual(self.successResultOf(last), "still")
        self.assertEqual(len(self.flushLoggedErrors(AlreadyCalledError)), 1)

    def test_theWorkerIsIdleBeforeTheReactorHearsOfTheResult(self) -> None:
        pool, _ = _pool()
        before = pool._idle
        pool._finish(Deferred(), True, None)
        self.assertEqual(pool._idle, before + 1)


class DeferToPoolTests(TestCase):
    timeout = 20

    async def test_resultAndFailureOnTheRealReactor(self) -> None:
        pool = OffloadPool()
        self.addCleanup(pool.stop)
        stat = await pool.deferToPool(reactor, os.stat, "/")  # type: ignore[arg-type]
        self.assertTrue(stat.st_mode)
        with self.assertRaises(FileNotFoundError):
            await pool.deferToPool(reactor, os.stat, "/no/such/path/at/all")  # type: ignore[arg-type]
        for _ in range(20):  # sequential calls keep to one thread
            await pool.deferToPool(reactor, os.getpid)  # type: ignore[arg-type]
        self.assertEqual(pool.threadCount, 1)
