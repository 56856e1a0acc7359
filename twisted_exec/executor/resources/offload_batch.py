"""One batch of quick pool calls (``OffloadPool.deferBatched``), and taking back its queue.

A batch is the metadata lookups of one reactor turn, run in order by one worker. A lookup can
still hang (a network filesystem that stopped answering), and every call behind it in its batch
would wait with it, other sessions' included. So the reactor looks at the running batches every
``STEAL_AFTER`` seconds, and takes back the calls not started yet from a batch whose worker
finished nothing since the last look; the pool runs them one job each, as it runs any other
call. The worker and the reactor only meet in a ``deque`` (whose ``popleft`` is atomic: each
call goes to exactly one side) and two attributes the worker writes and the reactor reads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

#: A call: the Deferred its outcome fires, the function and its arguments.
Call = tuple["Deferred[Any]", Callable[..., Any], tuple[Any, ...]]
#: An outcome: the Deferred, whether the call returned, and its value or Failure.
Finished = tuple["Deferred[Any]", bool, Any]

#: Seconds between looks at the running batches: a batch whose worker finishes nothing for one
#: to two of them gives its waiting calls back.
STEAL_AFTER = 0.05


class Batch:
    """The calls of one turn: run in order on a worker, the rest taken back if it is stuck."""

    __slots__ = ("_calls", "_seen", "done", "started")

    def __init__(self, calls: Iterable[Call]) -> None:
        self._calls: deque[Call] = deque(calls)
        self.started = False  # the worker has begun (written by it, read by the reactor)
        self.done = 0  # calls the worker has finished
        self._seen = -1  # ``done`` at the reactor's last look, once started

    def __len__(self) -> int:
        return len(self._calls)

    def run(self) -> list[Finished]:
        """On the worker: each call not taken back, in order, its outcome kept."""
        self.started = True
        outcomes: list[Finished] = []
        while True:
            try:
                d, func, args = self._calls.popleft()
            except IndexError:
                return outcomes
            try:
                outcomes.append((d, True, func(*args)))
            except BaseException:
                outcomes.append((d, False, Failure()))
            self.done += 1

    def takeBackIfStuck(self) -> list[Call]:
        """On the reactor, once per look: the calls not started yet, if the worker began and
        finished nothing since the previous look; otherwise nothing."""
        if not self.started or self.done != self._seen:
            if self.started:
                self._seen = self.done
            return []
        taken: list[Call] = []
        while True:
            try:
                taken.append(self._calls.popleft())
            except IndexError:
                return taken


__all__ = ["STEAL_AFTER", "Batch", "Call", "Finished"]
