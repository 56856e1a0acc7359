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
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from twisted.python.failure import Failure

_Job = tuple[Callable[[bool, Any], None], Callable[..., Any], tuple[Any, ...], dict[str, Any]]
_STOP = None


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

    def stop(self, timeout: float = 2.0) -> None:
        """No new calls; every thread exits after its current call (joined up to ``timeout``)."""
        with self._lock:
            self._stopped = True
            threads = list(self._threads)
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
            try:
                outcome: tuple[bool, Any] = (True, func(*args, **kwargs))
            except BaseException:
                outcome = (False, Failure())
            # Idle again *before* the reactor hears of the result: the call it sends next
            # (sequential requests) finds this thread instead of starting another one.
            with self._lock:
                self._idle += 1
            onResult(*outcome)
            del job, onResult, func, args, kwargs, outcome
