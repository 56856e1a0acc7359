"""Ours vs the 0.171 reference through the Noise relay, the harness in its own OS process.

    python bench/noise_relay.py [--quick] [--rounds N] [--baseline DIR] [--markdown FILE]

The Noise twin of ``bench/relay.py --harness-process``: this process runs the real rendezvous
with its environment registry (:class:`twisted_exec.testing.environments.EnvironmentRendezvous`,
what ``tests/test_codex_noise_e2e.py`` serves the 0.171 CLI with) and starts each executor in
remote mode against it, ``--environment-id``:

- ours: ``twistd -n codex-executor --remote URL --environment-id ID`` from this tree;
- before (``--baseline DIR``): the same from another tree (``git archive COMMIT twisted_exec``);
- reference: ``codex exec-server --remote URL --environment-id ID`` (Codex 0.171.0,
  ``vendor/codex-0.171.0/codex`` or ``--codex-bin``), ``CODEX_HOME`` an empty directory under
  ``~/.cache/twisted-exec-bench`` (the binary refuses one under a temporary directory).

The harness is ``bench/noise_worker.py`` in a second interpreter, driven over a pipe: each
stream is the harness library's Noise client (``/connect`` + websocket + hybrid IK handshake +
``initialize``), one connection per stream as in 0.171. Every row runs on each executor in turn,
the order rotating every round, and keeps each executor's best round. The executor's CPU
(``/proc/PID/stat``, all threads) per call or per MB is the figure that depends least on the
machine's load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet import defer, task
from twisted.internet.defer import Deferred

# This source tree's twisted_exec and bench package, not an installed twisted_exec.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.benchlib import Row, machineDescription, renderTable
from bench.harnessproc import HarnessProcess
from bench.noise_worker import keepBest
from bench.relaylib.targets import ExecutorProcess, failureText, stopProcess
from scripts.conformancelib import launch
from twisted_exec.testing.environments import EnvironmentRendezvous, reaching

WORKER = Path(__file__).resolve().parent / "noise_worker.py"
EXECUTOR_TOKEN = "bench-noise-executor-token"
HARNESS_TOKEN = "bench-noise-harness-token"
CACHE = Path.home() / ".cache" / "twisted-exec-bench"


@dataclass
class Settings:
    rounds: int = 3
    warmup: float = 0.3
    window: float = 1.5
    outputBytes: int = 50_000_000
    fileBytes: int = 4 * 1024 * 1024
    fileReads: int = 10
    sequential: int = 40


QUICK = Settings(rounds=1, window=1.0, outputBytes=20_000_000, fileReads=5, sequential=20)


@dataclass
class Target:
    """One executor: its argv (given the registry URL and environment id) and environment."""

    name: str
    argv: Callable[[str, str], list[str]]
    env: dict[str, str]
    environmentId: str = ""
    process: ExecutorProcess | None = None
    transport: Any = None

    @property
    def pid(self) -> int | None:
        return None if self.transport is None else self.transport.pid

    def alive(self) -> bool:
        return self.process is not None and not self.process.ended.called

    async def start(self, reactor: Any, rendezvous: EnvironmentRendezvous, cwd: str) -> None:
        self.environmentId = f"bench-{self.name}-{uuid.uuid4().hex[:6]}"
        argv = self.argv(rendezvous.baseUrl, self.environmentId)
        self.process = ExecutorProcess()
        self.transport = reactor.spawnProcess(self.process, argv[0], argv, env=self.env, path=cwd)
        connected = rendezvous.waitForExecutor(self.environmentId)
        await defer.DeferredList(
            [connected, self.process.ended], fireOnOneCallback=True, consumeErrors=True
        ).addTimeout(30, reactor)
        if not connected.called:
            connected.cancel()
            tail = " | ".join(self.process.tail[-3:])
            raise RuntimeError(f"{self.name} exited before it connected: {tail}")

    async def stop(self, reactor: Any) -> None:
        if self.process is not None:
            await stopProcess(reactor, self.process, self.transport)


def buildTargets(args: argparse.Namespace, runRoot: Path) -> list[Target]:
    shim = str(launch.pluginShim(runRoot))
    env = launch.serverEnv(shim)
    home = Path(tempfile.mkdtemp(prefix="noise-home-", dir=CACHE))
    env.update(
        CODEX_HOME=str(home),
        CODEX_API_KEY=EXECUTOR_TOKEN,  # the 0.171 executor's registry bearer
        CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN=EXECUTOR_TOKEN,  # ours
    )

    def ours(registry: str, ident: str) -> list[str]:
        twistd = [args.python, "-c", launch.TWISTD_MAIN, "-n", "--pidfile="]
        if args.profile:
            # twistd's own cProfile of the reactor thread, written when the executor stops.
            twistd += [f"--profile={args.profile}", "--profiler=cprofile", "--savestats"]
        return [*twistd, "codex-executor", "--remote", registry, "--environment-id", ident]

    targets = []
    if args.only != "reference":
        targets.append(Target("ours", ours, env))
        if args.baseline:
            before = {**env, "PYTHONPATH": os.pathsep.join([str(Path(args.baseline)), shim])}
            targets.append(Target("before", ours, before))
    if args.only != "ours":
        binary = launch.findReference(args.codex_bin, v171=True)
        if binary is None:
            print("Codex 0.171 not found (scripts/fetch_codex.sh): ours only", file=sys.stderr)
        else:

            def reference(registry: str, ident: str) -> list[str]:
                return [str(binary), "exec-server", "--remote", registry, "--environment-id", ident]

            targets.append(Target("reference", reference, env))
    return targets


ROWS: list[tuple[str, str, str, bool]] = [
    # (key, label, unit, lower is better)
    ("rpc_p50", "RPC round trip p50, fs/getMetadata, 1 in flight", "ms", True),
    ("rpc_p99", "RPC round trip p99", "ms", True),
    ("rpc_cpu", "executor CPU per call, 1 in flight", "µs", True),
    ("s16_calls", "16 streams x 4 in flight", "calls/s", False),
    ("s16_p99", "16 streams x 4 in flight, p99", "ms", True),
    ("s16_cpu", "executor CPU per call, 16 streams x 4", "µs", True),
    ("out_mb", "process output, pipe", "MB/s", False),
    ("out_cpu", "executor CPU per MB of pipe output", "ms", True),
    ("read_mb", "fs/readFile of a 4 MiB file, sequential", "MB/s", False),
    ("read_cpu", "executor CPU per MB read", "ms", True),
    ("seq_p50", "sequential process/start of true → exit, p50", "ms", True),
]


class Run:
    def __init__(self, reactor: Any, args: argparse.Namespace, targets: list[Target]) -> None:
        self.reactor = reactor
        self.s = QUICK if args.quick else Settings()
        if args.rounds:
            self.s.rounds = args.rounds
        self.targets = targets
        self.rendezvous = EnvironmentRendezvous(
            reactor, [EXECUTOR_TOKEN, reaching(HARNESS_TOKEN)], reach=None
        )
        self.worker = HarnessProcess(reactor, args.python, worker=WORKER)
        self.cwd = tempfile.mkdtemp(prefix="noise-relay-cwd-", dir=CACHE)
        self.file = Path(self.cwd, "block.bin")
        self.values: dict[str, dict[str, float | str]] = {key: {} for key, *_ in ROWS}
        self.notes: list[str] = []
        self.rows = set(args.rows.split(",")) if args.rows else set()

    def log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def record(self, key: str, target: Target, value: float | str, lowerIsBetter: bool) -> None:
        """Keep the best round: the machine is shared, a slowed round says nothing."""
        old = self.values[key].get(target.name)
        self.values[key][target.name] = keepBest(old, value, lowerIsBetter)

    async def setUp(self) -> None:
        self.rendezvous.listen()
        self.file.write_bytes(os.urandom(self.s.fileBytes))
        self.worker.start()
        for t in list(self.targets):
            try:
                await t.start(self.reactor, self.rendezvous, self.cwd)
                self.log(f"{t.name} connected (pid {t.pid})")
            except Exception as err:
                self.notes.append(f"{t.name} left out: {err}")
                await t.stop(self.reactor)
                self.targets.remove(t)

    async def tearDown(self) -> None:
        await self.worker.stop()
        for t in self.targets:
            await t.stop(self.reactor)
        await self.rendezvous.stop()

    def command(self, t: Target, op: str, **params: Any) -> Deferred[dict[str, Any]]:
        return self.worker.call(
            op,
            registry=self.rendezvous.baseUrl,
            env=t.environmentId,
            token=HARNESS_TOKEN,
            pid=t.pid,
            **params,
        )

    async def each(
        self,
        what: str,
        measure: Callable[[Target], Awaitable[dict[str, Any]]],
        keys: dict[str, str],
    ) -> None:
        """``measure`` on every target, the order rotating each round; failures recorded."""
        if self.rows and what not in self.rows:
            return
        lower = {key: low for key, _, _, low in ROWS}
        for r in range(self.s.rounds):
            n = r % len(self.targets)
            for t in self.targets[n:] + self.targets[:n]:
                if not t.alive():
                    tail = " | ".join(t.process.tail[-3:] if t.process else [])
                    self.notes.append(f"{t.name} was restarted before {what} ({tail})")
                    await t.start(self.reactor, self.rendezvous, self.cwd)
                try:
                    result = await measure(t)
                except Exception as err:
                    text = failureText(err)
                    self.log(f"  {what} [{t.name}] round {r + 1}: {text}")
                    for key in keys.values():
                        self.record(key, t, text, lower[key])
                    continue
                shown = ", ".join(f"{k}={v:.3g}" for k, v in result.items())
                self.log(f"  {what} [{t.name}]: {shown}")
                for name, key in keys.items():
                    if name in result:
                        self.record(key, t, float(result[name]), lower[key])

    async def all(self) -> None:
        s = self.s

        def calls(streams: int, inflight: int) -> Callable[[Target], Awaitable[dict[str, Any]]]:
            def measure(t: Target) -> Deferred[dict[str, Any]]:
                return self.command(
                    t,
                    "calls",
                    streams=streams,
                    inflight=inflight,
                    path=self.cwd,
                    warmup=s.warmup,
                    window=s.window,
                )

            return measure

        await self.each(
            "rpc", calls(1, 1), {"p50_ms": "rpc_p50", "p99_ms": "rpc_p99", "cpu_us": "rpc_cpu"}
        )
        await self.each(
            "16x4",
            calls(16, 4),
            {"calls_s": "s16_calls", "p99_ms": "s16_p99", "cpu_us": "s16_cpu"},
        )
        await self.each(
            "output",
            lambda t: self.command(t, "output", cwd=self.cwd, size=s.outputBytes),
            {"mb_s": "out_mb", "cpu_ms_mb": "out_cpu"},
        )
        await self.each(
            "readFile",
            lambda t: self.command(
                t, "readfile", path=str(self.file), size=s.fileBytes, count=s.fileReads
            ),
            {"mb_s": "read_mb", "cpu_ms_mb": "read_cpu"},
        )
        await self.each(
            "sequential",
            lambda t: self.command(t, "sequential", cwd=self.cwd, count=s.sequential),
            {"p50_ms": "seq_p50"},
        )

    def table(self) -> list[str]:
        rows = [
            Row(label, unit, low, self.values[key])
            for key, label, unit, low in ROWS
            if self.values[key]  # a row --rows left out
        ]
        return renderTable(rows, [t.name for t in self.targets])


async def amain(reactor: Any, args: argparse.Namespace) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.time()
    conditions = machineDescription()
    runRoot = Path(tempfile.mkdtemp(prefix="noise-relay-"))
    run = Run(reactor, args, buildTargets(args, runRoot))
    await run.setUp()
    try:
        await run.all()
    finally:
        await run.tearDown()
    load = os.getloadavg()
    conditions.append(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    lines = run.table()
    print("\n".join(lines))
    for note in run.notes:
        print(f"note: {note}")
    if args.markdown:
        writeMarkdown(Path(args.markdown), lines, conditions, run, args, started)


def shownArguments(argv: Sequence[str]) -> list[str]:
    """The command line for the results file, without ``--markdown``/``--note`` and their
    values (the note is printed as its own line)."""
    shown: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--markdown", "--note"):
            skip = True
        elif not a.startswith(("--markdown=", "--note=")):
            shown.append(a)
    return shown


def writeMarkdown(
    path: Path,
    table: list[str],
    conditions: list[str],
    run: Run,
    args: argparse.Namespace,
    started: float,
) -> None:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    shown = " ".join(shownArguments(sys.argv[1:]))
    s = run.s
    text = [
        f"# Noise relay benchmark, {when}",
        "",
        f"Command: `python bench/noise_relay.py{' ' + shown if shown else ''}` "
        "(bench/README.md says what each row measures).",
        "",
        *[f"- {c}" for c in conditions],
        f"- best of {s.rounds} interleaved round(s); output {s.outputBytes / 1e6:g} MB; "
        f"fs/readFile {s.fileReads} x {s.fileBytes} B; {s.sequential} sequential processes",
        *([f"- {args.note}"] if args.note else []),
        "",
        *table,
        "",
        *[f"- note: {n}" for n in run.notes],
    ]
    path.write_text("\n".join(text).rstrip("\n") + "\n")


def parseArgs(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one round, short windows, 20 MB output")
    p.add_argument("--rounds", type=int, help="interleaved rounds of every row (best kept)")
    p.add_argument("--codex-bin", help="the 0.171 codex binary (default $CODEX_171_BIN, vendor/)")
    p.add_argument("--python", default=sys.executable, help="python for ours and the harness")
    p.add_argument("--only", choices=["ours", "reference"], help="measure one executor")
    p.add_argument("--baseline", help="another source tree of twisted_exec, measured as 'before'")
    p.add_argument("--markdown", help="also write the table to this file")
    p.add_argument("--rows", help="a subset: rpc,16x4,output,readFile,sequential")
    p.add_argument("--profile", help="cProfile our executor's reactor thread into this file")
    p.add_argument("--note", default="", help="a line about the conditions, for --markdown")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parseArgs(sys.argv[1:] if argv is None else argv)
    task.react(lambda reactor: defer.ensureDeferred(amain(reactor, args)))


if __name__ == "__main__":
    main()
