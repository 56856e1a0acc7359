"""The relay benchmark's command line: parse it, run the phases, print (and write) the table."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twisted.internet import defer, task

from bench.benchlib import machineDescription
from bench.harnessproc import HarnessProcess
from bench.relaylib.phases import RelayBench
from bench.relaylib.run import Run, Settings
from bench.relaylib.targets import ExecutorProcess, buildTargets
from bench.workloads import sleep

DESCRIPTION = (
    "Relay benchmark: our executor and the reference, side by side, through one rendezvous."
)


async def profileOurs(reactor: Any, run: Run, path: str) -> None:
    """Attach ``py-spy record`` to our executor for the rest of the run (ends with ours)."""
    [ours] = [t for t in run.targets if t.name == "ours"]
    argv = ["py-spy", "record", "--format", "raw", "--rate", "250", "-p", str(ours.pid)]
    argv += ["-o", path]
    spy = ExecutorProcess()
    reactor.spawnProcess(spy, shutil.which("py-spy") or "py-spy", argv, env=dict(os.environ))
    await sleep(reactor, 1.0)


def parseArgs(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=DESCRIPTION)
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
    run = RelayBench(reactor, targets, s, str(runRoot), worker)
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
