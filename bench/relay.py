"""Relay benchmark: our executor and the reference, side by side, through one rendezvous.

Usage::

    python bench/relay.py [--quick] [--codex-bin PATH] [--only ours|reference] [--no-ceiling]
                          [--rounds N] [--rows PHASES] [--baseline DIR] [--profile FILE]
                          [--markdown FILE] [--note TEXT]

One run starts a registry and a rendezvous (``twisted_exec.testing``) on loopback and three
executors that dial it: ours (``twistd -n codex-executor --remote ...`` from this source tree),
the reference (``codex exec-server --remote ...``, when the binary is found) and the *ceiling*, a
bare autobahn peer that answers every request at once with a reply of the same size
(``bench/echo_peer.py``). The harness is in this process (``HarnessStream``). Every measurement
is taken on each executor in turn, interleaved, and the table shows ours, the reference, the
ceiling (the best an executor built on our stack, Python, Twisted and autobahn, scores against
this harness; the Rust reference can exceed it) and ours/reference. See bench/README.md for what
each row measures.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet import defer, error, protocol, task
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

# This source tree's twisted_exec (the rendezvous, the in-process harness), not an installed one.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from twisted_exec.testing.registry import FakeRegistry
from twisted_exec.testing.rendezvous import ExecutorConnection, Rendezvous

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (
    Row,
    loadConformanceRunner,
    machineDescription,
    renderTable,
    rssKiB,
)
from harnessproc import HarnessProcess
from workloads import (
    closeStreams,
    driveCalls,
    openStreams,
    processOutput,
    sequentialLifecycles,
    sleep,
    spawnRate,
)

conf = loadConformanceRunner()

TOKEN = "bench-token-not-secret"
DETACH_TTL = 10.0  # the reference's and our default: a reset stream's session lives this long


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


# -- the executors under test ---------------------------------------------------------------------


class _Process(protocol.ProcessProtocol):
    """An executor subprocess: keeps the tail of its output, fires ``ended``."""

    def __init__(self) -> None:
        self.ended: Deferred[None] = Deferred()
        self.tail: list[str] = []

    def _keep(self, data: bytes) -> None:
        self.tail.extend(data.decode("utf-8", "replace").splitlines())
        del self.tail[:-40]

    def outReceived(self, data: bytes) -> None:
        self._keep(data)

    def errReceived(self, data: bytes) -> None:
        self._keep(data)

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(None)


class LeanExecutorConnection(ExecutorConnection):
    """The rendezvous's executor link without the growing record of every frame."""

    def frameReceived(self, raw: bytes) -> None:
        super().frameReceived(raw)
        if not self._frameWaiters:
            self.frames.clear()
            self.orphans.clear()


@dataclass
class Target:
    """One executor: how to start it, and its live process and rendezvous connection."""

    name: str
    # (registry URL, signed rendezvous URL, executor id) -> argv
    argv: Callable[[str, str, str], list[str]]
    env: dict[str, str]
    measuresMemory: bool = True
    executorId: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:8]}")
    process: _Process | None = None
    transport: Any = None
    connection: ExecutorConnection | None = None
    restarts: int = 0

    @property
    def pid(self) -> int | None:
        return None if self.transport is None else self.transport.pid

    def alive(self) -> bool:
        return (
            self.process is not None
            and not self.process.ended.called
            and self.connection is not None
            and self.connection.closeInfo is None
        )

    async def start(self, reactor: Any, rendezvous: Rendezvous, registryUrl: str, cwd: str) -> None:
        argv = self.argv(registryUrl, rendezvous.executorUrl(self.executorId), self.executorId)
        self.process = process = _Process()
        self.transport = reactor.spawnProcess(process, argv[0], argv, env=self.env, path=cwd)
        connected = Deferred.fromCoroutine(self._connection(rendezvous))
        first: Deferred[None] = Deferred()  # connected, or the process ended first

        def fire(result: object) -> object:
            if not first.called:
                first.callback(None)
            return result

        connected.addBoth(fire)
        process.ended.addBoth(fire)
        try:
            await first.addTimeout(30, reactor)
        except defer.TimeoutError:
            connected.cancel()
            raise
        if not connected.called:
            connected.cancel()
            tail = " | ".join(process.tail[-3:])
            raise RuntimeError(f"{self.name} exited before it connected: {tail}")
        self.connection = await connected

    async def _connection(self, rendezvous: Rendezvous) -> ExecutorConnection:
        """The rendezvous connection of this executor id (others may connect meanwhile)."""
        count = 1
        while True:
            connection = await rendezvous.waitForConnection(count)
            if connection.executorId == self.executorId and connection.closeInfo is None:
                return connection
            count += 1

    async def stop(self, reactor: Any) -> None:
        if self.process is None or self.process.ended.called:
            return
        for sig in ("TERM", "KILL"):
            try:
                self.transport.signalProcess(sig)
            except error.ProcessExitedAlready:
                return
            waiter: Deferred[None] = Deferred()

            def fire(result: object, waiter: Deferred[None] = waiter) -> object:
                if not waiter.called:
                    waiter.callback(None)
                return result

            self.process.ended.addBoth(fire)
            try:
                await waiter.addTimeout(5, reactor)
                return
            except defer.TimeoutError:
                continue


# -- the run ---------------------------------------------------------------------------------------


def failureText(err: BaseException) -> str:
    if isinstance(err, defer.FirstError) and err.subFailure.value is not None:
        err = err.subFailure.value  # the first failing call says what went wrong
    if isinstance(err, defer.TimeoutError | defer.CancelledError):
        return "timeout"
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return f"error: {text[:60]}"


class Run:
    """One benchmark run: the rendezvous, the targets, the rows collected so far."""

    def __init__(
        self,
        reactor: Any,
        targets: list[Target],
        s: Settings,
        cwd: str,
        worker: HarnessProcess | None = None,
    ) -> None:
        self.reactor = reactor
        self.worker = worker
        self.targets = targets
        self.s = s
        self.cwd = cwd
        self.rendezvous = Rendezvous(reactor)
        # Drop what the rendezvous records of every executor frame as it goes (frames that a
        # harness websocket carries are never cleared by the workloads).
        self.rendezvous.server.linkForExecutor = LeanExecutorConnection
        self.registry: FakeRegistry | None = None
        self.registryUrl = ""
        self.rows: dict[str, Row] = {}
        self.order: list[str] = []
        self.notes: list[str] = []

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
        """:func:`workloads.driveCalls` on ``held`` streams or on ``streams`` fresh ones."""
        s = self.s
        if self.worker is not None:
            where: dict[str, Any] = {"handle": held} if held is not None else {"streams": streams}
            return await self.worker.call(
                "calls",
                target=t.executorId,
                inflight=inflight,
                path=self.cwd,
                warmup=s.warmup,
                window=s.window,
                pid=t.pid,
                method=method,
                **where,
            )
        assert t.connection is not None
        fresh = held is None
        used = await openStreams(self.reactor, t.connection, streams) if fresh else held
        try:
            return await driveCalls(
                self.reactor, used, inflight, self.cwd, s.warmup, s.window, t.pid, method=method
            )
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

    # -- the measurements, in the order they run -----------------------------------------------

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
            f"streams_{n}_{m}" for n in self.s.streamCounts for m in ("calls", "p99", "cpu")
        ]
        rest = ["output_pipe", "output_pipe_cpu", "output_pty", "output_pty_cpu"]
        rest += ["spawn_starts", "spawn_lifecycles", "spawn_cpu", "seq_p50", "seq_rate"]
        memory = ["rss_idle", "rss_streams", "rss_per_stream", "open_streams", "rss_after"]
        keys = [k for k in first + streamKeys + rest + memory if k in self.rows]
        keys += [k for k in self.order if k not in keys]
        return renderTable([self.rows[k] for k in keys], [t.name for t in self.targets])


async def profileOurs(reactor: Any, run: Run, path: str) -> None:
    """Attach ``py-spy record`` to our executor for the rest of the run (ends with ours)."""
    [ours] = [t for t in run.targets if t.name == "ours"]
    argv = ["py-spy", "record", "--format", "raw", "--rate", "250", "-p", str(ours.pid)]
    argv += ["-o", path]
    spy = _Process()
    reactor.spawnProcess(spy, shutil.which("py-spy") or "py-spy", argv, env=dict(os.environ))
    await sleep(reactor, 1.0)


def oursArgv(python: str) -> Callable[[str, str, str], list[str]]:
    """``twistd -n codex-executor --remote`` (run from a source tree, see ``pluginShim``)."""

    def argv(registry: str, _url: str, ident: str) -> list[str]:
        twistd = [python, "-c", conf.TWISTD_MAIN, "-n", "--pidfile="]
        return [*twistd, "codex-executor", "--remote", registry, "--executor-id", ident]

    return argv


def buildTargets(args: argparse.Namespace, runRoot: Path, codexHome: Path) -> list[Target]:
    shim = str(conf.pluginShim(runRoot))
    env = conf.serverEnv(shim)
    env["CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN"] = TOKEN
    env["CODEX_HOME"] = str(codexHome)
    python = args.python
    targets: list[Target] = []
    if args.only != "reference":
        targets.append(Target("ours", oursArgv(python), env))
        if args.baseline:
            # Another source tree of twisted_exec (`git archive` of an older commit), measured
            # interleaved with ours in the same run: before/after without the machine's drift.
            before = dict(env)
            before["PYTHONPATH"] = os.pathsep.join([str(Path(args.baseline).resolve()), shim])
            targets.append(Target("before", oursArgv(python), before))
    if args.only != "ours":
        ref = conf.findReference(args.codex_bin)
        if ref is None:
            print("reference binary not found: measuring without it", file=sys.stderr)
        else:
            binary = str(ref)

            def referenceArgv(registry: str, _url: str, ident: str) -> list[str]:
                return [binary, "exec-server", "--remote", registry, "--executor-id", ident]

            targets.append(Target("reference", referenceArgv, env))
    if not args.no_ceiling:
        echo = str(Path(__file__).resolve().parent / "echo_peer.py")
        targets.append(
            Target(
                "ceiling",
                lambda _registry, url, _ident: [python, echo, url],
                env,
                measuresMemory=False,
            )
        )
    return targets


def parseArgs(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one round, short windows, 20 MB output")
    p.add_argument("--codex-bin", help="the reference codex binary (default: $CODEX_BIN, vendor/)")
    p.add_argument("--python", default=sys.executable, help="python that runs ours and the peer")
    p.add_argument("--rounds", type=int, help="interleaved rounds of every row (best kept)")
    p.add_argument("--only", choices=["ours", "reference"], help="measure one executor")
    p.add_argument(
        "--baseline",
        metavar="DIR",
        help="also measure our executor from this source tree, as 'before' (before/after)",
    )
    p.add_argument("--no-ceiling", action="store_true", help="skip the bare autobahn peer")
    p.add_argument(
        "--harness-process",
        action="store_true",
        help="run the harness in its own process on a real /harness websocket "
        "(bench/harness_worker.py); without it the harness shares this process (for profiling)",
    )
    p.add_argument("--markdown", help="also write the results (with the conditions) to this file")
    p.add_argument("--note", default="", help="a line about the conditions, for --markdown")
    p.add_argument(
        "--rows",
        help="comma-separated subset of the phases memory,rpc,streams,spawn,output (default: all)",
    )
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="record our executor with py-spy (collapsed stacks into FILE) while the run goes on",
    )
    return p.parse_args(argv)


async def amain(reactor: Any, args: argparse.Namespace) -> None:
    s = Settings.quick() if args.quick else Settings.full()
    if args.rounds:
        s = dataclasses.replace(s, rounds=args.rounds, outputRounds=args.rounds)
    runRoot = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    # The reference refuses to put its helper binaries under a temporary directory.
    cacheDir = Path.home() / ".cache" / "twisted-exec-bench"
    cacheDir.mkdir(parents=True, exist_ok=True)
    codexHome = Path(tempfile.mkdtemp(prefix="codex-home-", dir=cacheDir))
    started = time.time()
    conditions = machineDescription()
    targets = buildTargets(args, runRoot, codexHome)
    worker = HarnessProcess(reactor, args.python) if args.harness_process else None
    run = Run(reactor, targets, s, str(runRoot), worker)
    try:
        if worker is not None:
            worker.start()
        await run.setUp()
        if args.profile:
            await profileOurs(reactor, run, args.profile)
        await run.all(args.rows.split(",") if args.rows else ())
    finally:
        await run.tearDown()
        if worker is not None:
            await worker.stop()
        shutil.rmtree(runRoot, ignore_errors=True)
        shutil.rmtree(codexHome, ignore_errors=True)
    elapsed = time.time() - started
    load = os.getloadavg()
    conditions.append(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    where = "in its own process" if args.harness_process else "in the benchmark's process"
    conditions.append(
        f"mode: {'--quick' if args.quick else 'full'}, {s.rounds} interleaved round(s) per "
        f"row (best kept), {elapsed:.0f} s in all; harness {where}"
    )
    lines = run.table()
    print("\n".join(lines))
    for note in run.notes:
        print(f"note: {note}")
    if args.markdown:
        writeMarkdown(Path(args.markdown), lines, conditions, run.notes, args.note, started)


def writeMarkdown(
    path: Path,
    table: list[str],
    conditions: list[str],
    notes: list[str],
    note: str,
    started: float,
) -> None:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    shown, skip = [], False
    for a in sys.argv[1:]:
        if skip or a in ("--markdown", "--note"):
            skip = not skip
            continue
        shown.append(a)
    command = "".join(f" {a}" if a.startswith("-") or " " not in a else f" '{a}'" for a in shown)
    text = [
        f"# Relay benchmark, {when}",
        "",
        f"Command: `python bench/relay.py{command}` (bench/README.md says what each row measures).",
        "",
        *[f"- {c}" for c in conditions],
        *([f"- {note}"] if note else []),
        "",
        *table,
        "",
        *[f"- note: {n}" for n in notes],
    ]
    path.write_text("\n".join(text).rstrip("\n") + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    args = parseArgs(sys.argv[1:] if argv is None else argv)
    task.react(lambda reactor: defer.ensureDeferred(amain(reactor, args)))


if __name__ == "__main__":
    main()
