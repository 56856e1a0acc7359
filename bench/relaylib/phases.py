"""The relay benchmark's measurements, in the order they run, and the table they fill.

Each phase declares its rows, then measures every target interleaved (:meth:`Run.each`), so the
machine's drift during a run falls on all of them alike. bench/README.md says what each row
measures and why.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bench.benchlib import renderTable, rssKiB
from bench.relaylib.run import Run
from bench.relaylib.targets import DETACH_TTL, Target, failureText
from bench.workloads import sleep


class RelayBench(Run):
    """A :class:`Run` with the benchmark's phases: memory, RPC latency, streams, spawn, output."""

    async def memoryAndManyStreams(self) -> None:
        """Fresh executors: idle RSS, then RSS with 1,000 idle streams, then traffic on them."""
        n = self.s.idleStreams
        self.row("rss_idle", "executor RSS, idle (connected, no stream)", "MiB", True)
        self.row("rss_streams", f"executor RSS with {n:,} idle streams", "MiB", True)
        self.row("rss_per_stream", "RSS per idle stream", "KiB", True)
        self.row("open_streams", f"open+initialize {n:,} streams (100 at a time)", "s", True)
        await sleep(self.reactor, 1.0)
        held: dict[str, Any] = {}
        for t in self.targets:
            await self.ensureRunning(t)
            assert t.connection is not None and t.pid is not None
            idle = rssKiB(t.pid) if t.measuresMemory else None
            try:
                t0 = time.perf_counter()
                held[t.name] = await self.openHeld(t, n)
                self.record("open_streams", t, time.perf_counter() - t0)
            except Exception as err:
                text = failureText(err)
                self.log(f"  open {n} streams [{t.name}]: {text}")
                for key in ("rss_streams", "rss_per_stream", "open_streams"):
                    self.record(key, t, text)
                continue
            await sleep(self.reactor, 0.5)
            loaded = rssKiB(t.pid) if t.measuresMemory else None
            if idle is not None and loaded is not None:
                self.record("rss_idle", t, idle / 1024)
                self.record("rss_streams", t, loaded / 1024)
                self.record("rss_per_stream", t, (loaded - idle) / n)
                self.log(f"  memory [{t.name}]: idle {idle} KiB, {n} streams {loaded} KiB")
        if n in self.s.streamCounts:
            self.manyStreamRows(n)

            async def onHeld(t: Target) -> dict[str, float]:
                if t.name not in held:
                    raise RuntimeError("streams did not open")
                return await self.calls(t, self.s.inflight, held=held[t.name])

            await self.each(
                f"{n} streams",
                onHeld,
                {
                    "calls_s": f"streams_{n}_calls",
                    "p99_ms": f"streams_{n}_p99",
                    "cpu_us": f"streams_{n}_cpu",
                    "rendezvous_cpu_us": f"streams_{n}_rendezvous",
                    "harness_cpu_us": f"streams_{n}_harness",
                },
            )
        for t in self.targets:
            if t.name in held and t.alive():
                await self.closeHeld(t, held[t.name])
        # The reset sessions live for the detach TTL: wait them out (their expiry would
        # otherwise land in the middle of the next rows), then look at the RSS again.
        self.row(
            "rss_after", f"executor RSS {DETACH_TTL + 1:.0f} s after resetting them", "MiB", True
        )
        await sleep(self.reactor, DETACH_TTL + 1)
        for t in self.targets:
            if t.measuresMemory and t.alive() and t.pid is not None:
                after = rssKiB(t.pid)
                if after is not None:
                    self.record("rss_after", t, after / 1024)

    def manyStreamRows(self, n: int) -> None:
        k = self.s.inflight
        self.row(f"streams_{n}_calls", f"{n:,} streams x {k} in flight: calls/s", "1/s", False)
        self.row(f"streams_{n}_p99", f"{n:,} streams x {k} in flight: p99", "ms", True)
        self.row(f"streams_{n}_cpu", f"{n:,} streams x {k}: executor CPU per call", "µs", True)
        if self.worker is not None:
            # Where the rest of the two cores goes (the same code for both executors).
            for who in ("rendezvous", "harness"):
                label = f"{n:,} streams x {k}: {who} CPU per call"
                self.row(f"streams_{n}_{who}", label, "µs", True)

    async def rpcLatency(self) -> None:
        self.row("rpc_p50", "RPC round trip p50 (fs/getMetadata, 1 in flight)", "ms", True)
        self.row("rpc_p99", "RPC round trip p99", "ms", True)
        self.row("rpc_calls", "RPC calls/s, 1 stream, 1 in flight", "1/s", False)

        async def one(t: Target) -> dict[str, float]:
            return await self.calls(t, 1)

        self.row("rpc_cpu", "executor CPU per call, 1 in flight", "µs", True)
        keys = {
            "p50_ms": "rpc_p50",
            "p99_ms": "rpc_p99",
            "calls_s": "rpc_calls",
            "cpu_us": "rpc_cpu",
        }
        await self.each("rpc latency", one, keys)
        self.row("rpc_nofs_p50", "RPC round trip p50 (process/terminate, unknown id)", "ms", True)

        async def noFs(t: Target) -> dict[str, float]:
            return await self.calls(t, 1, method="process/terminate")

        await self.each("rpc latency, no fs", noFs, {"p50_ms": "rpc_nofs_p50"})

    async def manyStreams(self) -> None:
        for n in self.s.streamCounts:
            if n == self.s.idleStreams:
                continue  # measured on the held streams, see memoryAndManyStreams
            self.manyStreamRows(n)

            async def many(t: Target, n: int = n) -> dict[str, float]:
                return await self.calls(t, self.s.inflight, streams=n)

            await self.each(
                f"{n} streams",
                many,
                {
                    "calls_s": f"streams_{n}_calls",
                    "p99_ms": f"streams_{n}_p99",
                    "cpu_us": f"streams_{n}_cpu",
                    "rendezvous_cpu_us": f"streams_{n}_rendezvous",
                    "harness_cpu_us": f"streams_{n}_harness",
                },
            )

    async def spawns(self) -> None:
        count = self.s.spawns
        self.row("spawn_starts", f"process/start of `true` with a cwd ({count})", "1/s", False)
        self.row("spawn_lifecycles", "… until every process/closed", "1/s", False)

        async def spawn(t: Target) -> dict[str, float]:
            return await self.measureSpawns(t, count)

        self.row("spawn_cpu", "executor CPU per process (start to closed)", "µs", True)
        keys = {"starts_s": "spawn_starts", "lifecycles_s": "spawn_lifecycles"}
        keys["cpu_us"] = "spawn_cpu"
        await self.each("spawn", spawn, keys)
        self.row(
            "seq_p50", "process/start of `true` -> process/closed, one at a time: p50", "ms", True
        )
        self.row("seq_rate", "… lifecycles/s, one at a time", "1/s", False)

        async def sequential(t: Target) -> dict[str, float]:
            return await self.measureSequential(t, 50)

        await self.each("sequential", sequential, {"p50_ms": "seq_p50", "per_s": "seq_rate"})

    async def output(self) -> None:
        size = self.s.outputBytes
        for tty in (False, True):
            key = "output_pty" if tty else "output_pipe"
            kind = "PTY" if tty else "pipe"
            self.row(key, f"process output, {size / 1e6:.0f} MB to stdout ({kind})", "MB/s", False)

            async def out(t: Target, tty: bool = tty) -> dict[str, float]:
                return await self.measureOutput(t, size, tty)

            self.row(f"{key}_cpu", f"executor CPU per MB of output ({kind})", "ms", True)
            keys = {"mb_s": key, "cpu_ms_mb": f"{key}_cpu"}
            await self.each(f"output {kind}", out, keys, rounds=self.s.outputRounds)

    async def all(self, only: Sequence[str] = ()) -> None:
        phases: dict[str, Callable[[], Awaitable[None]]] = {
            "memory": self.memoryAndManyStreams,
            "rpc": self.rpcLatency,
            "streams": self.manyStreams,
            "spawn": self.spawns,
            "output": self.output,
        }
        for name, phase in phases.items():
            if not only or name in only:
                await phase()

    def table(self) -> list[str]:
        first = ["rpc_p50", "rpc_p99", "rpc_calls", "rpc_cpu", "rpc_nofs_p50"]
        streamKeys = [
            f"streams_{n}_{m}"
            for n in self.s.streamCounts
            for m in ("calls", "p99", "cpu", "rendezvous", "harness")
        ]
        rest = ["output_pipe", "output_pipe_cpu", "output_pty", "output_pty_cpu"]
        rest += ["spawn_starts", "spawn_lifecycles", "spawn_cpu", "seq_p50", "seq_rate"]
        memory = ["rss_idle", "rss_streams", "rss_per_stream", "open_streams", "rss_after"]
        keys = [k for k in first + streamKeys + rest + memory if k in self.rows]
        keys += [k for k in self.order if k not in keys]
        return renderTable([self.rows[k] for k in keys], [t.name for t in self.targets])
