"""CPU of the ``fs/*`` thread hand-off alone, in one process, on a real reactor.

Usage::

    python bench/offload_handoff.py [--calls 5000] [--rounds 5] [--depth 1,16]

Runs ``filesystem.getMetadata`` (one ``stat``/``lstat`` pair) ``--calls`` times through each
road and reports process CPU (all threads) and wall time per call, roads alternated round by
round, the median round kept:

- ``inline``: the call on the reactor thread (what decision 29 forbids; the floor);
- ``deferToThreadPool``: Twisted's helper on :class:`OffloadPool` (main before perfpool);
- ``deferToPool``: :meth:`OffloadPool.deferToPool`, finished calls batched per wake-up.

``--depth`` is how many calls are in flight (1: sequential, each started when the previous
result arrives, as one client's sequential RPCs are). Benchmarks are not tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

if __name__ == "__main__" and "PYTHONPATH" not in os.environ:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this source tree

from twisted.internet import defer, task
from twisted.internet import reactor as _globalReactor  # noqa: N812
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool

from twisted_exec.executor.resources import filesystem
from twisted_exec.executor.resources.fs_blocking import mapped
from twisted_exec.executor.resources.offload import OffloadPool

reactor: Any = cast(Any, _globalReactor)  # a benchmark script may use the global one
_PATH = str(Path(__file__).resolve().parent)
GET_METADATA = mapped(filesystem.getMetadata)


def roads(pool: OffloadPool) -> dict[str, Callable[[], Deferred[Any]]]:
    return {
        "inline": lambda: defer.succeed(GET_METADATA(_PATH)),
        "deferToThreadPool": lambda: deferToThreadPool(
            reactor,
            cast(Any, pool),
            GET_METADATA,
            _PATH,
        ),
        "deferToPool": lambda: pool.deferToPool(reactor, GET_METADATA, _PATH),
    }


async def measure(call: Callable[[], Deferred[Any]], calls: int, depth: int) -> tuple[float, float]:
    started = 0

    async def chain() -> None:
        nonlocal started
        while started < calls:
            started += 1
            await call()

    cpu, wall = time.process_time(), time.perf_counter()
    await defer.gatherResults([defer.ensureDeferred(chain()) for _ in range(depth)])
    return (time.process_time() - cpu) / calls * 1e6, (time.perf_counter() - wall) / calls * 1e6


async def main(args: argparse.Namespace) -> None:
    pool = OffloadPool(maxThreads=4)
    table = roads(pool)
    for depth in args.depth:
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in table}
        for call in table.values():  # warm up (threads started)
            await measure(call, 500, depth)
        for r in range(args.rounds):
            names = list(table)
            names = names[r % len(names) :] + names[: r % len(names)]
            for name in names:
                samples[name].append(await measure(table[name], args.calls, depth))
        for name, got in samples.items():
            cpu = statistics.median(c for c, _ in got)
            wall = statistics.median(w for _, w in got)
            print(f"depth {depth:3d}  {name:18s} CPU {cpu:6.1f} µs/call  wall {wall:6.1f} µs/call")
    pool.stop()
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--calls", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--depth", default="1,16", type=lambda s: [int(x) for x in s.split(",")])
    args = p.parse_args()
    task.react(lambda _: defer.ensureDeferred(main(args)))
