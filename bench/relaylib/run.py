"""One relay benchmark run: the rendezvous and registry, the targets, the rows collected so far.

:class:`Run` is the bookkeeping and the plumbing the measurements (:mod:`bench.relaylib.phases`)
stand on: best-of-rounds recording, restarting a target that died, and the one switch of where
the harness runs, in this process on the rendezvous's own connection (for profiling) or in a
:class:`~bench.harnessproc.HarnessProcess` on a real ``/harness`` websocket.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer

from bench.benchlib import Row
from bench.harnessproc import HarnessProcess
from bench.relaylib.targets import TOKEN, LeanExecutorConnection, Target, failureText
from bench.workloads import (
    closeStreams,
    driveCalls,
    openStreams,
    processOutput,
    sequentialLifecycles,
    spawnRate,
)
from twisted_exec.testing.registry import FakeRegistry
from twisted_exec.testing.rendezvous import Rendezvous


@dataclass(frozen=True)
class Settings:
    """How much of everything one run does."""

    rounds: int  # interleaved rounds of the short measurements (best of them is kept)
    warmup: float  # seconds of traffic before a throughput window opens
    window: float  # seconds of one throughput window
    streamCounts: tuple[int, ...]
    inflight: int  # calls in flight per stream in the many-stream rows
    idleStreams: int  # streams held open for the memory row
    outputBytes: int
    outputRounds: int
    spawns: int

    @classmethod
    def full(cls) -> Settings:
        return cls(2, 0.3, 1.5, (1, 16, 128, 1000), 4, 1000, 100 * 1000 * 1000, 2, 400)

    @classmethod
    def quick(cls) -> Settings:
        return cls(1, 0.2, 0.7, (1, 16, 128, 1000), 4, 1000, 20 * 1000 * 1000, 1, 150)


@dataclass
class Run:
    """One benchmark run: the rendezvous, the targets, the rows collected so far."""

    reactor: Any
    targets: list[Target]
    s: Settings
    cwd: str
    worker: HarnessProcess | None = None
    rendezvous: Rendezvous = field(init=False)
    registry: FakeRegistry | None = field(default=None, init=False)
    registryUrl: str = field(default="", init=False)
    rows: dict[str, Row] = field(default_factory=dict, init=False)
    order: list[str] = field(default_factory=list, init=False)
    notes: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.rendezvous = Rendezvous(self.reactor)
        # Drop what the rendezvous records of every executor frame as it goes (frames that a
        # harness websocket carries are never cleared by the workloads).
        self.rendezvous.server.linkForExecutor = LeanExecutorConnection

    def row(self, key: str, label: str, unit: str, lowerIsBetter: bool) -> Row:
        if key not in self.rows:
            self.rows[key] = Row(label, unit, lowerIsBetter, {})
            self.order.append(key)
        return self.rows[key]

    def record(self, key: str, target: Target, value: float | str) -> None:
        """Keep the best value of the rounds (a failure only when no round succeeded)."""
        row = self.rows[key]
        old = row.values.get(target.name)
        if isinstance(value, str):
            if old is None:
                row.values[target.name] = value
            return
        if not isinstance(old, float) or (value < old if row.lowerIsBetter else value > old):
            row.values[target.name] = value

    def log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    async def setUp(self) -> None:
        self.rendezvous.listen()
        self.registry = FakeRegistry(TOKEN, self.rendezvous.executorUrl)
        self.registryUrl = self.registry.listen(self.reactor)
        for t in list(self.targets):
            try:
                await t.start(self.reactor, self.rendezvous, self.registryUrl, self.cwd)
            except Exception as err:
                # An executor that cannot start is left out; the others are still measured.
                self.notes.append(f"{t.name} left out: {failureText(err)}")
                self.log(self.notes[-1])
                await t.stop(self.reactor)
                self.targets.remove(t)
                continue
            await self.attach(t)
            self.log(f"{t.name} connected (pid {t.pid})")

    async def tearDown(self) -> None:
        for t in self.targets:
            await t.stop(self.reactor)
        self.rendezvous.closeAll()
        await self.rendezvous.stopListening()
        if self.registry is not None:
            await self.registry.stopListening()

    async def ensureRunning(self, t: Target) -> None:
        """A target that crashed or dropped its websocket is started again for the next row."""
        if t.alive():
            return
        tail = " | ".join(t.process.tail[-3:]) if t.process is not None else ""
        self.notes.append(f"{t.name} was restarted after it ended or disconnected ({tail})")
        self.log(self.notes[-1])
        await t.stop(self.reactor)
        t.restarts += 1
        t.executorId = f"bench-{uuid.uuid4().hex[:8]}"
        await t.start(self.reactor, self.rendezvous, self.registryUrl, self.cwd)
        await self.attach(t)

    # -- where the harness runs: here, or in its own process (bench/harness_worker.py) ---------

    async def attach(self, t: Target) -> None:
        """In harness-process mode: the worker dials ``/harness/{id}`` of a (re)started target."""
        if self.worker is not None:
            url = self.rendezvous.harnessUrl(t.executorId)
            await self.worker.call("connect", target=t.executorId, url=url)

    async def openHeld(self, t: Target, count: int) -> Any:
        """``count`` initialized streams held until :meth:`closeHeld`."""
        if self.worker is None:
            assert t.connection is not None
            return await openStreams(self.reactor, t.connection, count)
        handle = f"{t.executorId}-held"
        await self.worker.call("open", target=t.executorId, count=count, handle=handle)
        return handle

    async def closeHeld(self, t: Target, held: Any) -> None:
        if self.worker is None:
            assert t.connection is not None
            closeStreams(t.connection, held)
        else:
            await self.worker.call("close", handle=held)

    async def calls(
        self,
        t: Target,
        inflight: int,
        *,
        streams: int = 1,
        held: Any = None,
        method: str = "fs/getMetadata",
    ) -> dict[str, float]:
        """:func:`bench.workloads.driveCalls` on ``held`` streams or on ``streams`` fresh ones."""
        # driveCalls's keyword arguments, the same in both modes (the worker passes them on).
        job: dict[str, Any] = {"inflight": inflight, "path": self.cwd, "pid": t.pid}
        job.update(warmup=self.s.warmup, window=self.s.window, method=method)
        if self.worker is not None:
            where: dict[str, Any] = {"handle": held} if held is not None else {"streams": streams}
            where["watch"] = {"rendezvous": os.getpid()}  # the rendezvous runs in this process
            return await self.worker.call("calls", target=t.executorId, **job, **where)
        assert t.connection is not None
        fresh = held is None
        used = await openStreams(self.reactor, t.connection, streams) if fresh else held
        try:
            return await driveCalls(self.reactor, used, **job)
        finally:
            if fresh:
                closeStreams(t.connection, used)

    async def measureOutput(self, t: Target, size: int, tty: bool) -> dict[str, float]:
        if self.worker is not None:
            return await self.worker.call(
                "output", target=t.executorId, cwd=self.cwd, size=size, tty=tty, pid=t.pid
            )
        assert t.connection is not None
        return await defer.Deferred.fromCoroutine(
            processOutput(self.reactor, t.connection, self.cwd, size, tty, t.pid)
        ).addTimeout(120, self.reactor)

    async def measureSequential(self, t: Target, count: int) -> dict[str, float]:
        if self.worker is not None:
            return await self.worker.call(
                "sequential", target=t.executorId, cwd=self.cwd, count=count
            )
        assert t.connection is not None
        return await sequentialLifecycles(self.reactor, t.connection, self.cwd, count)

    async def measureSpawns(self, t: Target, count: int) -> dict[str, float]:
        if self.worker is not None:
            return await self.worker.call(
                "spawn", target=t.executorId, cwd=self.cwd, count=count, pid=t.pid
            )
        assert t.connection is not None
        return await spawnRate(self.reactor, t.connection, self.cwd, count, t.pid)

    async def each(
        self,
        what: str,
        measure: Callable[[Target], Awaitable[dict[str, float]]],
        keys: dict[str, str],
        targets: Sequence[Target] | None = None,
        rounds: int | None = None,
    ) -> None:
        """Run ``measure`` on every target, interleaved, for ``rounds`` rounds.

        ``keys`` maps a result name to a row key; a failure is recorded in every row of the
        measurement for that target, and the run goes on.
        """
        targets = list(self.targets if targets is None else targets)
        for r in range(rounds if rounds is not None else self.s.rounds):
            for t in targets[r % len(targets) :] + targets[: r % len(targets)]:
                t0 = time.perf_counter()
                try:
                    await self.ensureRunning(t)
                    result = await measure(t)
                except Exception as err:
                    text = failureText(err)
                    self.log(f"  {what} [{t.name}] round {r + 1}: {text}")
                    for key in keys.values():
                        self.record(key, t, text)
                    continue
                shown = ", ".join(f"{k}={v:.3g}" for k, v in result.items())
                self.log(f"  {what} [{t.name}] {time.perf_counter() - t0:.1f}s: {shown}")
                for name, key in keys.items():
                    self.record(key, t, result[name])
