"""A lean thread pool for the blocking filesystem calls (``deferToThreadPool`` compatible).

Every ``fs/*`` request runs its system calls off the reactor thread. Twisted's ``ThreadPool``
routes each call through its ``Team`` coordinator and a ``queue.Queue`` per worker (several
Python-level locks and a condition variable per call); in the relay benchmark that hand-off
was the largest single cost of a cheap ``fs/getMetadata`` (bench/README.md). This pool keeps
the same contract, ``callInThreadWithCallback(onResult, f, *args, **kwargs)``, on a C
``queue.SimpleQueue``:

- threads start on demand, when a call arrives and no thread is idle, up to ``maxThreads``
  (10, Twisted's default), so one slow call (a large ``fs/readFile``) does not hold up the
  others;
- a thread that has been idle for ``idleTimeout`` seconds exits;
- :meth:`stop` (service shutdown) lets the threads finish their current call and exit.

``onResult(True, value)`` or ``onResult(False, Failure)`` is called on the worker thread, as
Twisted's pool does; ``deferToThreadPool`` hands it to the reactor with ``callFromThread``.

:meth:`deferToPool` is the cheaper road for our own callers: the worker puts the outcome on
one list of finished calls, and only the first result since the reactor last emptied it
schedules a ``callFromThread`` (one waker write, one reactor wake-up) for all of them; the
Deferred is fired from there, without ``deferToThreadPool``'s closure per call. Calls that
finish while the reactor is busy (pipelined requests) share a wake-up.

:meth:`deferBatched` is for the quick calls (a metadata lookup: path resolution, no data): the
calls made in one reactor turn are handed to one worker as one job at the end of the turn
(``callLater(0)``), run one after another there, and come back with one wake-up. Under load that
is one thread wake-up and a couple of GIL hand-overs per turn instead of a few per call: ~10 %
of the executor's CPU per call at 16 and 128 relay streams (docs/decisions.md 199). A call waits
for those before it in its batch, so nothing that moves data is batched, and a batch whose worker
finishes nothing for ``STEAL_AFTER`` seconds gives its waiting calls back to be run one job each
(``offload_batch.py``): a lookup stuck on a hung filesystem holds up nobody else's.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from twisted_exec.executor.resources.offload_batch import STEAL_AFTER, Batch, Call, Finished
from twisted_exec.net.ratelimit import RateLimitedLog

#: ``onResult`` is a callable run on the worker, or a Deferred fired on the reactor thread.
_Job = tuple[
    "Callable[[bool, Any], None] | Deferred[Any]",
    Callable[..., Any],
    tuple[Any, ...],
    dict[str, Any],
]
_STOP = None
#: The ``onResult`` of a job that is a :class:`Batch` of ``deferBatched`` calls.
_BATCH: Any = object()
#: Calls in one batch at most (a full batch is handed over at once, the next one starts).
MAX_BATCH = 64
_log = Logger()


class OffloadPool:
    """``callInThreadWithCallback`` on up to ``maxThreads`` daemon threads."""

    def __init__(self, maxThreads: int = 10, idleTimeout: float = 30.0) -> None:
        self.maxThreads = maxThreads
        self.idleTimeout = idleTimeout
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._waiting = 0  # jobs queued and not yet taken by a thread
        self._stopped = False
        # deferToPool's finished calls, waiting for the reactor; ``_wakeScheduled`` is True
        # while a callFromThread(_deliverFinished) is on its way (both under ``_lock``).
        self._finished: list[Finished] = []
        self._wakeScheduled = False
        self._reactor: IReactorFromThreads | None = None
        self._batch: list[Call] = []  # deferBatched calls of this reactor turn (reactor thread)
        self._running: set[Batch] = set()  # handed over and not finished (offload_batch.py)
        self._stealTimer: Any = None  # the next look at the running batches, while any runs
        self._stuckLog: RateLimitedLog | None = None  # a hung filesystem would say so each look

    @property
    def threadCount(self) -> int:
        return len(self._threads)

    def callInThreadWithCallback(
        self,
        onResult: Callable[[bool, Any], None],
        func: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> None:
        if self._stopped:
            raise RuntimeError("the offload pool is stopped")
        with self._lock:
            self._waiting += 1
            if self._waiting > self._idle and len(self._threads) < self.maxThreads:
                self._startThread()
        self._queue.put((onResult, func, args, kwargs))

    def deferToPool(
        self, reactor: IReactorFromThreads, func: Callable[..., Any], *args: Any
    ) -> Deferred[Any]:
        """``func(*args)`` on a worker; the Deferred fires on the reactor thread.

        Results finished since the reactor last delivered share one ``callFromThread``.
        """
        self._reactor = reactor
        d: Deferred[Any] = Deferred()
        self.callInThreadWithCallback(d, func, *args)  # type: ignore[arg-type]
        return d

    def deferBatched(self, reactor: Any, func: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """:meth:`deferToPool` for a quick call, run in one job with the others of this turn.

        ``reactor`` provides ``callLater`` (the batch is handed over at the end of the turn)
        as well as ``callFromThread``.
        """
        if self._stopped:
            raise RuntimeError("the offload pool is stopped")
        self._reactor = reactor
        d: Deferred[Any] = Deferred()
        self._batch.append((d, func, args))
        if len(self._batch) >= MAX_BATCH:
            self._flushBatch()
        elif len(self._batch) == 1:
            reactor.callLater(0, self._flushBatch)
        return d

    def _flushBatch(self) -> None:
        """On the reactor thread: hand this turn's batched calls to a worker as one job."""
        calls, self._batch = self._batch, []
        if not calls:
            return  # a full batch went already; its callLater finds nothing
        if self._stopped:  # the service stopped in between: fail them, do not lose them
            _failStopped(calls)
            return
        batch = Batch(calls)
        self._running.add(batch)
        self.callInThreadWithCallback(_BATCH, Batch.run, batch)
        if self._stealTimer is None:
            self._stealTimer = self._reactor.callLater(  # type: ignore[union-attr]
                STEAL_AFTER, self._lookAtRunningBatches
            )

    def _lookAtRunningBatches(self) -> None:
        """On the reactor: the waiting calls of a stuck batch become jobs of their own."""
        self._stealTimer = None
        for batch in list(self._running):  # a worker may discard one meanwhile
            taken = batch.takeBackIfStuck()
            if not taken:
                continue
            if self._stuckLog is None:
                self._stuckLog = RateLimitedLog(self._reactor, _log)  # type: ignore[arg-type]
            self._stuckLog.emit(
                LogLevel.info,
                "a filesystem call has made no progress for {seconds:g} s: {count} quick "
                "calls behind it go to other threads",
                seconds=STEAL_AFTER,
                count=len(taken),
            )
            if self._stopped:
                _failStopped(taken)
                continue
            for d, func, args in taken:
                self.callInThreadWithCallback(d, func, *args)  # type: ignore[arg-type]
        if self._running and not self._stopped:
            self._stealTimer = self._reactor.callLater(  # type: ignore[union-attr]
                STEAL_AFTER, self._lookAtRunningBatches
            )

    def _cancelLooks(self) -> None:
        if self._stealTimer is not None:
            if self._stealTimer.active():
                self._stealTimer.cancel()
            self._stealTimer = None

    def _finish(self, d: Deferred[Any], ok: bool, value: Any) -> None:
        """On the worker, after a deferToPool call: idle again, and queue the outcome.

        Only the first outcome since the last delivery asks the reactor for a wake-up; the
        rest ride along. The worker is counted idle in the same lock, before the reactor can
        hear of the result (so the next sequential call finds this thread).
        """
        self._finishMany([(d, ok, value)])

    def _finishMany(self, outcomes: list[Finished]) -> None:
        with self._lock:
            self._idle += 1
            self._finished.extend(outcomes)
            wake = not self._wakeScheduled
            self._wakeScheduled = True
        if wake:
            assert self._reactor is not None
            self._reactor.callFromThread(self._deliverFinished)

    def _deliverFinished(self) -> None:
        """On the reactor thread: fire every Deferred whose call finished (one wake-up)."""
        with self._lock:
            finished, self._finished = self._finished, []
            self._wakeScheduled = False
        for d, ok, value in finished:
            try:
                if ok:
                    d.callback(value)
                else:
                    d.errback(value)
            except BaseException:  # e.g. AlreadyCalledError: must not drop the rest
                _log.failure("delivering an offload result")
        if not self._running:  # no batch left to look at: no timer left in the reactor
            self._cancelLooks()

    def stop(self, timeout: float = 2.0) -> None:
        """No new calls; every thread exits after its current call (joined up to ``timeout``)."""
        with self._lock:
            self._stopped = True
            threads = list(self._threads)
        self._cancelLooks()
        for _ in threads:
            self._queue.put(_STOP)
        for thread in threads:
            thread.join(timeout / max(len(threads), 1))

    def _startThread(self) -> None:
        thread = threading.Thread(target=self._work, name="twisted-exec-offload", daemon=True)
        self._threads.add(thread)
        thread.start()

    def _work(self) -> None:
        me = threading.current_thread()
        with self._lock:
            self._idle += 1
        while True:
            try:
                job = self._queue.get(timeout=self.idleTimeout)
            except queue.Empty:
                with self._lock:
                    if self._waiting == 0:  # nothing queued for us: leave
                        self._idle -= 1
                        self._threads.discard(me)
                        return
                continue
            with self._lock:
                self._idle -= 1
                if job is _STOP:
                    self._threads.discard(me)
                    return
                self._waiting -= 1
            onResult, func, args, kwargs = job
            if onResult is _BATCH:
                batch = args[0]
                outcomes = func(*args)  # Batch.run
                self._running.discard(batch)  # before the reactor hears: it may cancel its looks
                self._finishMany(outcomes)  # idle again inside, as _finish
                del job, onResult, func, args, kwargs, batch, outcomes
                continue
            try:
                outcome: tuple[bool, Any] = (True, func(*args, **kwargs))
            except BaseException:
                outcome = (False, Failure())
            # Idle again *before* the reactor hears of the result: the call it sends next
            # (sequential requests) finds this thread instead of starting another one.
            if isinstance(onResult, Deferred):
                self._finish(onResult, *outcome)
            else:
                with self._lock:
                    self._idle += 1
                onResult(*outcome)
            del job, onResult, func, args, kwargs, outcome


def _failStopped(calls: list[Call]) -> None:
    for d, _, _ in calls:
        d.errback(Failure(RuntimeError("the offload pool is stopped")))
