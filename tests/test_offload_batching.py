"""``OffloadPool.deferToPool``: finished calls share one reactor wake-up.

The completion path is driven directly (``_finish`` is what a worker calls after a
``deferToPool`` job) with a reactor that only records ``callFromThread``: no threads, no
waiting, so the count of wake-ups is exact.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import AlreadyCalledError, Deferred
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from twisted_exec.executor.resources.offload import OffloadPool
from twisted_exec.executor.resources.offload_batch import STEAL_AFTER, Batch


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


class _TurnReactor(_RecordingReactor):
    """``callFromThread`` recorded, and ``callLater`` on a ``Clock`` (the end of the turn)."""

    def __init__(self) -> None:
        super().__init__()
        from twisted.internet.task import Clock

        self.clock = Clock()

    def callLater(self, delay: float, f: Callable[..., Any], *args: Any) -> Any:
        return self.clock.callLater(delay, f, *args)

    def seconds(self) -> float:
        return self.clock.seconds()


def _batchingPool() -> tuple[OffloadPool, _TurnReactor, list[tuple[Any, ...]]]:
    """A pool whose jobs are recorded instead of run on threads."""
    pool = OffloadPool()
    fake = _TurnReactor()
    jobs: list[tuple[Any, ...]] = []
    pool.callInThreadWithCallback = lambda onResult, f, *a: jobs.append((onResult, f, a))  # type: ignore[method-assign]
    return pool, fake, jobs


def _runJob(pool: OffloadPool, job: tuple[Any, ...]) -> None:
    """What a worker does with a batch job."""
    _, f, args = job
    outcomes = f(*args)
    pool._running.discard(args[0])
    pool._finishMany(outcomes)


class DeferBatchedTests(SynchronousTestCase):
    def test_theCallsOfOneTurnAreOneJobAndOneWakeUp(self) -> None:
        pool, fake, jobs = _batchingPool()
        ds = [pool.deferBatched(fake, lambda i=i: i * 10) for i in range(5)]
        self.assertEqual(jobs, [])  # nothing handed over before the turn ends
        fake.clock.advance(0)
        self.assertEqual(len(jobs), 1)
        _runJob(pool, jobs[0])
        self.assertEqual(len(fake.calls), 1)
        fake.runCalls()
        self.assertEqual([self.successResultOf(d) for d in ds], [0, 10, 20, 30, 40])

    def test_aFailureFailsOnlyItsOwnCall(self) -> None:
        pool, fake, jobs = _batchingPool()
        before = pool.deferBatched(fake, lambda: "a")
        empty: dict[str, str] = {}
        bad = pool.deferBatched(fake, lambda: empty["missing"])
        after = pool.deferBatched(fake, lambda: "b")
        fake.clock.advance(0)
        _runJob(pool, jobs[0])
        fake.runCalls()
        self.assertEqual(self.successResultOf(before), "a")
        self.failureResultOf(bad, KeyError)
        self.assertEqual(self.successResultOf(after), "b")

    def test_aFullBatchIsHandedOverAtOnce(self) -> None:
        from twisted_exec.executor.resources.offload import MAX_BATCH

        pool, fake, jobs = _batchingPool()
        for _ in range(MAX_BATCH):
            pool.deferBatched(fake, os.getpid)
        self.assertEqual([len(job[2][0]) for job in jobs], [MAX_BATCH])
        pool.deferBatched(fake, os.getpid)
        fake.clock.advance(0)  # the first batch's end of turn finds nothing; the second goes
        self.assertEqual([len(job[2][0]) for job in jobs], [MAX_BATCH, 1])

    def test_stoppedBeforeTheTurnEndedFailsThemAll(self) -> None:
        pool, fake, jobs = _batchingPool()
        ds = [pool.deferBatched(fake, os.getpid) for _ in range(2)]
        pool.stop()
        fake.clock.advance(0)
        self.assertEqual(jobs, [])
        for d in ds:
            self.failureResultOf(d, RuntimeError)
        self.assertRaises(RuntimeError, pool.deferBatched, fake, os.getpid)

    def test_onPoolBatchedFallsBackWithoutCallLaterOrABatchingPool(self) -> None:
        from twisted_exec.executor.resources.fs_blocking import onPoolBatched

        pool, _, jobs = _batchingPool()
        onPoolBatched(_RecordingReactor(), pool, os.getpid)  # no callLater: one job at once
        self.assertEqual(len(jobs), 1)
        self.assertIsInstance(jobs[0][0], Deferred)

        class _PlainPool:
            def __init__(self) -> None:
                self.calls: list[Any] = []

            def callInThreadWithCallback(self, onResult: Any, f: Any, *args: Any) -> None:
                self.calls.append(f)
                onResult(True, f(*args))

        plain = _PlainPool()
        d = onPoolBatched(reactor, plain, os.getpid)
        self.assertEqual(plain.calls, [os.getpid])
        self.assertIsInstance(d, Deferred)


class DeferBatchedThreadsTests(TestCase):
    timeout = 20

    async def test_aBatchOnRealThreads(self) -> None:
        pool = OffloadPool()
        self.addCleanup(pool.stop)
        ds = [pool.deferBatched(reactor, os.stat, "/") for _ in range(10)]
        missing = pool.deferBatched(reactor, os.stat, "/no/such/path/at/all")
        for d in ds:
            self.assertTrue((await d).st_mode)
        with self.assertRaises(FileNotFoundError):
            await missing
        self.assertEqual(pool.threadCount, 1)  # one job: one thread


class BatchTests(SynchronousTestCase):
    """``offload_batch.Batch`` alone: what the reactor may take back, and when."""

    def calls(self, n: int) -> list[Any]:
        return [(Deferred(), os.getpid, ()) for _ in range(n)]

    def test_nothingTakenBeforeTheWorkerBegins(self) -> None:
        batch = Batch(self.calls(3))
        for _ in range(3):
            self.assertEqual(batch.takeBackIfStuck(), [])
        self.assertEqual(len(batch), 3)

    def test_takenBackAfterALookWithoutProgress(self) -> None:
        calls = self.calls(3)
        batch = Batch(calls)
        batch.started = True  # the worker began the first call and is stuck in it
        batch._calls.popleft()
        self.assertEqual(batch.takeBackIfStuck(), [])  # the first look only notes the count
        self.assertEqual(batch.takeBackIfStuck(), calls[1:])
        self.assertEqual(len(batch), 0)

    def test_progressBetweenLooksTakesNothing(self) -> None:
        batch = Batch(self.calls(4))
        batch.started = True
        for _ in range(3):
            self.assertEqual(batch.takeBackIfStuck(), [])
            batch.done += 1

    def test_runSkipsWhatWasTakenBack(self) -> None:
        got: list[str] = []
        batch = Batch([(Deferred(), got.append, ("a",)), (Deferred(), got.append, ("b",))])
        batch._calls.pop()  # taken back by the reactor before the worker came to it
        [(_, ok, _)] = batch.run()
        self.assertEqual((got, ok, batch.done), (["a"], True, 1))


class StuckBatchTests(SynchronousTestCase):
    def test_aStuckCallGivesTheRestOfItsBatchToOtherThreads(self) -> None:
        pool, fake, jobs = _batchingPool()
        entered, release = threading.Event(), threading.Event()

        def stuck() -> str:
            entered.set()
            release.wait(10)
            return "late"

        first = pool.deferBatched(fake, stuck)
        behind = [pool.deferBatched(fake, lambda i=i: i) for i in range(2)]
        fake.clock.advance(0)
        [job] = jobs
        worker = threading.Thread(target=_runJob, args=(pool, job))
        worker.start()
        self.addCleanup(worker.join, 10)
        self.addCleanup(release.set)
        self.assertTrue(entered.wait(10))
        fake.clock.advance(STEAL_AFTER)  # the first look: no progress seen yet
        self.assertEqual(len(jobs), 1)
        fake.clock.advance(STEAL_AFTER)  # still nothing finished: the two go to other threads
        self.assertEqual([j[0] for j in jobs[1:]], behind)
        fake.clock.advance(STEAL_AFTER)  # more looks while it hangs: nothing left to take
        self.assertEqual(len(jobs), 3)
        release.set()
        worker.join(10)
        fake.runCalls()
        self.assertEqual(self.successResultOf(first), "late")
        self.assertNoResult(behind[0])  # its own job (recorded here) runs it

    def test_noLookLeftOnceNothingRuns(self) -> None:
        pool, fake, jobs = _batchingPool()
        d = pool.deferBatched(fake, os.getpid)
        fake.clock.advance(0)
        self.assertEqual(len(fake.clock.getDelayedCalls()), 1)  # the look, while it runs
        _runJob(pool, jobs[0])
        fake.runCalls()
        self.successResultOf(d)
        self.assertEqual(fake.clock.getDelayedCalls(), [])

    def test_stopCancelsTheLook(self) -> None:
        pool, fake, _ = _batchingPool()
        pool.deferBatched(fake, os.getpid)
        fake.clock.advance(0)
        pool.stop()
        self.assertEqual(fake.clock.getDelayedCalls(), [])
