"""The Noise relay benchmark's harness in its own OS process (``bench/noise_relay.py``).

Why a separate process: a production harness runs elsewhere, and a harness sharing the
benchmark's reactor (and core) with the rendezvous throttles both executors alike, which makes
the ratios look kinder than they are (see ``bench/harness_worker.py``, the clear relay's twin).

Each stream is the harness library's own Noise client
(:func:`twisted_exec.harness.connectEnvironment`: ``/connect`` at the registry, the environment
websocket, the hybrid IK handshake, then :class:`~twisted_exec.harness.ExecSession`): one
connection carries one stream, as 0.171's harness does. The driver talks to it over a pipe, one
JSON object per line each way (:class:`harnessproc.HarnessProcess` with ``worker=`` this file)::

    -> {"seq": 1, "op": "calls", "registry": URL, "env": ID, "streams": 16, "inflight": 4, ...}
    <- {"seq": 1, "ok": {"calls_s": ..., "p50_ms": ..., "p99_ms": ..., "cpu_us": ...}}

Operations: ``calls``, ``output``, ``readfile``, ``sequential``; each opens its own streams and
closes them again. The executor's CPU time is read from ``/proc/PID/stat`` here, on the same
machine. An error becomes ``{"seq": N, "error": TEXT}`` and the worker goes on.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twisted.internet import defer, task
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from twisted_exec.harness import EnvironmentConnection, ExecSession, connectEnvironment

# This source tree's bench package, as for the driver.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import harness_worker
from bench.benchlib import cpuSeconds, percentile
from bench.harness_worker import Worker

#: Command keys every operation gets: where the environment is and whom to measure.
Target = tuple[str, str, str]  # (registry URL, environment id, harness token)


def summarize(latencies: list[float], elapsed: float) -> dict[str, float]:
    """calls/s, p50 and p99 (ms) of one window's latencies (seconds)."""
    latencies.sort()
    return {
        "calls_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def cpuPer(cpu0: float | None, cpu1: float | None, units: float, scale: float) -> float | None:
    """CPU seconds between two readings per unit, times ``scale`` (1e6: µs; 1e3: ms)."""
    if cpu0 is None or cpu1 is None or units <= 0:
        return None
    return (cpu1 - cpu0) / units * scale


def keepBest(old: float | str | None, new: float | str, lowerIsBetter: bool) -> float | str:
    """The better of two rounds' values; a number beats a failure text, a later text an older.

    The machine is shared: a round that another job slowed down says nothing about the
    executor, so each keeps its best round."""
    if isinstance(old, float) and isinstance(new, float):
        return min(old, new) if lowerIsBetter else max(old, new)
    if isinstance(old, float):
        return old
    return new


async def openStreams(
    reactor: Any, target: Target, count: int
) -> tuple[list[EnvironmentConnection], list[ExecSession]]:
    """``count`` initialized Noise sessions (each its own connection), 16 handshakes at a time."""
    registry, environmentId, token = target
    sessions: list[ExecSession] = []
    connections: list[EnvironmentConnection] = []

    async def one() -> None:
        connection = await connectEnvironment(reactor, registry, environmentId, token)
        connections.append(connection)
        sessions.append(await connection.openSession("bench"))

    try:
        for i in range(0, count, 16):
            batch = [Deferred.fromCoroutine(one()) for _ in range(min(16, count - i))]
            await defer.gatherResults(batch, consumeErrors=True).addTimeout(60, reactor)
    except BaseException:
        closeStreams(connections, sessions)
        raise
    return connections, sessions


def closeStreams(connections: Sequence[Any], sessions: Sequence[ExecSession]) -> None:
    """Reset every session (the executor frees it at once), then drop the websockets."""
    for session in sessions:
        session.close("bench done")
    for connection in connections:
        connection.abort()


async def driveCalls(
    reactor: Any,
    sessions: Sequence[ExecSession],
    inflight: int,
    path: str,
    warmup: float,
    window: float,
    pid: int | None,
) -> dict[str, float]:
    """``fs/getMetadata`` of ``path``, ``inflight`` outstanding per session, for one window."""
    state = {"measuring": False, "stopping": False, "outstanding": 0}
    errors: list[Failure] = []
    latencies: list[float] = []
    drained: Deferred[None] = Deferred()
    clock = time.perf_counter

    def send(session: ExecSession) -> None:
        d = session.getMetadata(path)
        d.addCallbacks(answered, failed, callbackArgs=(session, clock()), errbackArgs=(session,))

    def answered(_: object, session: ExecSession, sent: float) -> None:
        if state["measuring"]:
            latencies.append(clock() - sent)
        next(session)

    def failed(failure: Failure, session: ExecSession) -> None:
        errors.append(failure)
        state["stopping"] = True
        next(session)

    def next(session: ExecSession) -> None:
        if state["stopping"]:
            state["outstanding"] -= 1
            if state["outstanding"] == 0 and not drained.called:
                drained.callback(None)
            return
        send(session)

    for session in sessions:
        for _ in range(inflight):
            state["outstanding"] += 1
            send(session)
    await task.deferLater(reactor, warmup, lambda: None)
    state["measuring"] = True
    start, cpu0 = clock(), cpuSeconds(pid)
    await task.deferLater(reactor, window, lambda: None)
    state["measuring"] = False
    elapsed, cpu1 = clock() - start, cpuSeconds(pid)
    state["stopping"] = True
    await drained.addTimeout(30, reactor)
    if errors:
        errors[0].raiseException()
    if not latencies:
        raise RuntimeError("no call answered in the window")
    result = summarize(latencies, elapsed)
    cpu = cpuPer(cpu0, cpu1, len(latencies), 1e6)
    if cpu is not None:
        result["cpu_us"] = cpu
    return result


async def processOutput(
    reactor: Any, session: ExecSession, cwd: str, size: int, pid: int | None
) -> dict[str, float]:
    """MB/s (10^6 bytes) of ``head -c SIZE /dev/zero``, ``process/start`` to the exit, and the
    executor's CPU ms per MB."""
    got = [0]

    def count(stream: str, data: bytes) -> None:
        got[0] += len(data)

    start, cpu0 = time.perf_counter(), cpuSeconds(pid)
    process = await session.spawn(
        ["head", "-c", str(size), "/dev/zero"], cwd, onOutput=count, keepOutput=False
    )
    await process.finished.addTimeout(120, reactor)
    elapsed, cpu1 = time.perf_counter() - start, cpuSeconds(pid)
    if got[0] != size:
        raise RuntimeError(f"expected {size} bytes of output, got {got[0]}")
    result = {"mb_s": size / elapsed / 1e6}
    cpu = cpuPer(cpu0, cpu1, size / 1e6, 1e3)
    if cpu is not None:
        result["cpu_ms_mb"] = cpu
    return result


async def readFiles(
    reactor: Any, session: ExecSession, path: str, size: int, count: int, pid: int | None
) -> dict[str, float]:
    """``fs/readFile`` of a ``size``-byte file, ``count`` times one after another: MB/s, CPU
    ms per MB."""
    start, cpu0 = time.perf_counter(), cpuSeconds(pid)
    for _ in range(count):
        data = await session.readFile(path).addTimeout(60, reactor)
        if len(data) != size:
            raise RuntimeError(f"fs/readFile returned {len(data)} bytes, expected {size}")
    elapsed, cpu1 = time.perf_counter() - start, cpuSeconds(pid)
    total = size * count / 1e6
    result = {"mb_s": total / elapsed}
    cpu = cpuPer(cpu0, cpu1, total, 1e3)
    if cpu is not None:
        result["cpu_ms_mb"] = cpu
    return result


async def sequentialLifecycles(
    reactor: Any, session: ExecSession, cwd: str, count: int
) -> dict[str, float]:
    """``process/start`` of ``true`` then wait for its exit, one at a time: p50 ms and per s."""
    latencies: list[float] = []
    start = time.perf_counter()
    for _ in range(count):
        sent = time.perf_counter()
        process = await session.spawn(["true"], cwd, keepOutput=False).addTimeout(30, reactor)
        await process.finished.addTimeout(30, reactor)
        latencies.append(time.perf_counter() - sent)
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {"p50_ms": percentile(latencies, 0.5) * 1000, "per_s": count / elapsed}


class NoiseWorker(Worker):
    """``harness_worker``'s command loop with this file's operations (each on fresh streams)."""

    async def handle(self, c: dict[str, Any]) -> dict[str, Any]:
        target: Target = (c["registry"], c["env"], c["token"])
        pid = c.get("pid")
        connections, sessions = await openStreams(self.reactor, target, c.get("streams", 1))
        try:
            op, first = c["op"], sessions[0]
            result: dict[str, float]
            if op == "calls":
                result = await driveCalls(
                    self.reactor, sessions, c["inflight"], c["path"], c["warmup"], c["window"], pid
                )
            elif op == "output":
                result = await processOutput(self.reactor, first, c["cwd"], c["size"], pid)
            elif op == "readfile":
                result = await readFiles(self.reactor, first, c["path"], c["size"], c["count"], pid)
            elif op == "sequential":
                result = await sequentialLifecycles(self.reactor, first, c["cwd"], c["count"])
            else:
                raise ValueError(f"unknown op {op!r}")
            return dict(result)
        finally:
            closeStreams(connections, sessions)


def main() -> None:
    harness_worker.main(NoiseWorker)


if __name__ == "__main__":
    main()
