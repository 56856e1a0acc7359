"""Bulk transfer through our rendezvous: MB/s of large messages, each process on its own.

Usage::

    python bench/transfer.py [--mib 64] [--rounds 3] [--baseline DIR] [--markdown FILE]

Why a benchmark of its own: ``bench/relay.py`` measures many small calls; a regression that only
large frames hit (the rendezvous handing autobahn a few frames per reactor turn, whatever their
size) showed up as ``codex-exec cp`` moving 1 MB/s. Here three processes stand where they stand
in production: the real rendezvous (``twistd codex-rendezvous``), our executor (``twistd
codex-executor --remote``, registered at that rendezvous) and the harness, this process
(:mod:`twisted_exec.harness`, the library ``codex-exec`` uses). With ``--baseline DIR`` (a
``git archive COMMIT twisted_exec | tar -x -C DIR``) a second rendezvous and executor run from
that tree, and every row alternates between the two trees, round after round.

Rows (MB = 10^6 bytes of file or output content, base64 on the wire; ``--content`` says what
the files hold, zeros by default, which was the old reader's worst case):

- ``fs/writeBlock``: ``--mib`` MiB uploaded in 1 MiB blocks, 4 in flight (``codex-exec cp``'s
  :func:`twisted_exec.cli.transfer.upload`);
- ``fs/readBlock``: the same file downloaded the same way;
- ``fs/writeFile`` / ``fs/readFile``: 16 MiB in one message each;
- process output: ``head -c N /dev/zero`` on a pipe, ``process/start`` to the exit.

Each cell is the best of ``--rounds``; also the CPU time (user + system, ``/proc``) that the
rendezvous and the executor spent per MB, which depends much less on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet import defer, task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.benchlib import Row, cpuSeconds, formatValue, machineDescription
from twisted_exec.cli.transfer import download, upload
from twisted_exec.harness.connection import HarnessConnection, connectHarness
from twisted_exec.harness.session import ExecSession

TOKEN = "bench-transfer-token-not-secret"
TWISTD = Path(sys.executable).with_name("twistd")
REPO = Path(__file__).resolve().parent.parent
MB = 1_000_000


class _Child(ProcessProtocol):
    """A twistd child: its first stdout line (the rendezvous URL), its log tail, its end."""

    def __init__(self) -> None:
        self.firstLine: Deferred[str] = Deferred()
        self.ended: Deferred[None] = Deferred()
        self.out = b""
        self.tail = b""

    def outReceived(self, data: bytes) -> None:
        self.out += data
        if b"\n" in self.out and not self.firstLine.called:
            self.firstLine.callback(self.out.split(b"\n")[0].decode().strip())
        self.out = self.out[-4096:]

    def errReceived(self, data: bytes) -> None:
        self.tail = (self.tail + data)[-4096:]

    def processEnded(self, reason: Failure) -> None:
        if not self.firstLine.called:
            self.firstLine.errback(RuntimeError(f"ended early: {self.tail[-500:]!r}"))
        self.ended.callback(None)


@dataclass
class Tree:
    """One source tree's rendezvous and executor, and the harness connection to them."""

    name: str
    source: str
    profile: str = ""  # a directory: cProfile both children (twistd --profile), saved at exit
    children: list[tuple[Any, _Child]] = field(default_factory=list)
    rendezvousPid: int = 0
    executorPid: int = 0
    url: str = ""
    connection: HarnessConnection | None = None
    session: ExecSession | None = None

    def spawn(self, reactor: Any, argv: list[str], env: dict[str, str]) -> tuple[Any, _Child]:
        child = _Child()
        transport = reactor.spawnProcess(child, argv[0], argv, env=env, path=self.source)
        self.children.append((transport, child))
        return transport, child

    async def start(self, reactor: Any) -> None:
        env = {**os.environ, "PYTHONPATH": self.source, "CODEX_RENDEZVOUS_TOKENS": TOKEN}
        twistd = [str(TWISTD), "-n", "--pidfile="]

        def profiled(role: str) -> list[str]:
            if not self.profile:
                return twistd
            out = os.path.join(self.profile, f"{self.name}-{role}.prof")
            return [*twistd, f"--profile={out}", "--profiler=cprofile", "--savestats"]

        rendezvous, child = self.spawn(
            reactor,
            [*profiled("rendezvous"), "codex-rendezvous", "--listen", "http://127.0.0.1:0"],
            env,
        )
        self.rendezvousPid = rendezvous.pid
        self.url = await child.firstLine.addTimeout(30, reactor)
        executorId = f"transfer-{self.name}"
        env = {**env, "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN": TOKEN}
        argv = [
            *profiled("executor"),
            "codex-executor",
            "--remote",
            self.url,
            "--executor-id",
            executorId,
        ]
        executor, _ = self.spawn(reactor, argv, env)
        self.executorPid = executor.pid
        for _attempt in range(100):
            try:
                self.connection = await connectHarness(reactor, self.url, executorId, TOKEN)
                self.session = await self.connection.openSession(waitForExecutor=20)
                CONNECTIONS[self.session.streamId] = self.connection
                return
            except Exception:
                if self.connection is not None:
                    self.connection.abort()
                await task.deferLater(reactor, 0.2, lambda: None)
        raise RuntimeError(f"{self.name}: the executor did not connect")

    async def stop(self, reactor: Any) -> None:
        if self.connection is not None:
            self.connection.abort()
        for transport, child in self.children:
            child.firstLine.addErrback(lambda _: None)  # it ends now, whatever it said
            if not child.ended.called:
                transport.signalProcess("TERM" if self.profile else "KILL")
                await child.ended


@dataclass
class Measurement:
    seconds: float
    megabytes: float
    rendezvousCpu: float
    executorCpu: float


Workload = Callable[[ExecSession], Coroutine[Any, Any, float]]  # returns megabytes moved


def workloads(directory: str, mib: int, content: str) -> dict[str, tuple[str, Workload]]:
    blockFile = os.path.join(directory, "blocks.bin")
    wholeFile = os.path.join(directory, "whole.bin")
    make = os.urandom if content == "random" else bytes
    blocks = make(mib << 20)
    whole = make(16 << 20)

    async def writeBlocks(session: ExecSession) -> float:
        offset = 0

        async def read(size: int) -> bytes:
            nonlocal offset
            piece = blocks[offset : offset + size]
            offset += len(piece)
            return piece

        assert await upload(session, blockFile, read)
        return len(blocks) / MB

    async def readBlocks(session: ExecSession) -> float:
        got = 0

        async def write(data: bytes) -> None:
            nonlocal got
            got += len(data)

        assert await download(session, blockFile, write)
        assert got == len(blocks), got
        return got / MB

    async def writeWhole(session: ExecSession) -> float:
        await session.writeFile(wholeFile, whole)
        return len(whole) / MB

    async def readWhole(session: ExecSession) -> float:
        data = await session.readFile(wholeFile)
        assert len(data) == len(whole)
        return len(data) / MB

    async def output(session: ExecSession) -> float:
        size = mib << 20
        got = 0

        def count(stream: str, data: bytes) -> None:
            nonlocal got
            got += len(data)

        process = await session.spawn(
            ["head", "-c", str(size), "/dev/zero"], directory, onOutput=count, keepOutput=False
        )
        await process.finished
        assert got == size, got
        return got / MB

    async def calls(session: ExecSession) -> float:
        """``fs/getMetadata`` on 16 streams, 4 in flight each: 16,000 calls ("MB" = 1,000
        calls here, so the CPU rows read as µs per call)."""
        sessions = [session, *[await connection(session).openSession() for _ in range(15)]]
        remaining = 16_000

        async def loop(one: ExecSession) -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await one.getMetadata(directory)

        try:
            await defer.gatherResults(
                [Deferred.fromCoroutine(loop(one)) for one in sessions for _ in range(4)],
                consumeErrors=True,
            )
        finally:
            for one in sessions[1:]:
                one.close()
        return 16.0

    return {
        "calls": ("fs/getMetadata, 16 streams x 4 in flight (k calls/s; µs per call)", calls),
        "writeBlock": (f"fs/writeBlock, {mib} MiB in 1 MiB blocks, 4 in flight", writeBlocks),
        "readBlock": (f"fs/readBlock, {mib} MiB in 1 MiB blocks, 4 in flight", readBlocks),
        "writeFile": ("fs/writeFile, 16 MiB in one message", writeWhole),
        "readFile": ("fs/readFile, 16 MiB in one message", readWhole),
        "output": (f"process output, {mib} MiB on a pipe", output),
    }


def connection(session: ExecSession) -> HarnessConnection:
    return CONNECTIONS[session.streamId]


CONNECTIONS: dict[str, HarnessConnection] = {}


async def measure(reactor: Any, tree: Tree, work: Workload) -> Measurement:
    assert tree.session is not None
    cpu0 = cpuSeconds(tree.rendezvousPid) or 0.0, cpuSeconds(tree.executorPid) or 0.0
    started = time.perf_counter()
    megabytes: float = await Deferred.fromCoroutine(work(tree.session)).addTimeout(600, reactor)
    seconds = time.perf_counter() - started
    cpu1 = cpuSeconds(tree.rendezvousPid) or 0.0, cpuSeconds(tree.executorPid) or 0.0
    return Measurement(seconds, megabytes, cpu1[0] - cpu0[0], cpu1[1] - cpu0[1])


async def run(reactor: Any, args: argparse.Namespace) -> list[str]:
    trees = [Tree("ours", str(REPO), args.profile)]
    if args.baseline:
        trees.append(Tree("before", os.path.abspath(args.baseline), args.profile))
    directory = tempfile.mkdtemp(prefix="transfer-bench-")
    rows: dict[str, dict[str, Row]] = {}
    try:
        for tree in trees:
            await tree.start(reactor)
            print(f"{tree.name}: rendezvous {tree.url}", file=sys.stderr, flush=True)
        chosen = workloads(directory, args.mib, args.content)
        keys = [k for k in chosen if not args.rows or k in args.rows.split(",")]
        for key in keys:
            label = chosen[key][0]
            rows[key] = {
                "rate": Row(label, "MB/s", False, {}),
                "rendezvous": Row("… rendezvous CPU per MB", "ms", True, {}),
                "executor": Row("… executor CPU per MB", "ms", True, {}),
            }
        for round in range(args.rounds):
            for key in keys:
                order = trees if round % 2 == 0 else trees[::-1]
                for tree in order:
                    m = await measure(reactor, tree, chosen[key][1])
                    print(
                        f"round {round + 1} {key} {tree.name}: {m.megabytes / m.seconds:.1f} MB/s,"
                        f" rendezvous {m.rendezvousCpu * 1000 / m.megabytes:.1f} ms/MB,"
                        f" executor {m.executorCpu * 1000 / m.megabytes:.1f} ms/MB",
                        file=sys.stderr,
                        flush=True,
                    )
                    keep(rows[key]["rate"], tree.name, m.megabytes / m.seconds)
                    keep(rows[key]["rendezvous"], tree.name, m.rendezvousCpu * 1000 / m.megabytes)
                    keep(rows[key]["executor"], tree.name, m.executorCpu * 1000 / m.megabytes)
    finally:
        for tree in trees:
            await tree.stop(reactor)
        shutil.rmtree(directory, ignore_errors=True)
    names = [t.name for t in trees]
    head = ["measurement", "unit", *names] + (["ours/before"] if len(names) > 1 else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for group in rows.values():
        for row in group.values():
            cells = [row.label, row.unit + (" ↓" if row.lowerIsBetter else " ↑")]
            cells += [formatValue(row.values.get(n)) for n in names]
            if len(names) > 1:
                a, b = row.values.get("ours"), row.values.get("before")
                both = isinstance(a, float) and isinstance(b, float) and b
                cells.append(f"{a / b:.2f}" if both else "-")  # type: ignore[operator]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def keep(row: Row, name: str, value: float) -> None:
    old = row.values.get(name)
    if not isinstance(old, float) or (value < old if row.lowerIsBetter else value > old):
        row.values[name] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--content",
        choices=("zeros", "random"),
        default="zeros",
        help="the files' bytes (zeros: base64 'AAAA', what head -c N /dev/zero prints too)",
    )
    parser.add_argument("--rows", default="", help="a subset: writeBlock,readBlock,...")
    parser.add_argument("--baseline", default="", help="another source tree, for before/after")
    parser.add_argument("--markdown", default="")
    parser.add_argument("--note", default="")
    parser.add_argument(
        "--profile", default="", help="a directory: cProfile stats of each child, at its exit"
    )
    args = parser.parse_args()
    described = machineDescription()

    async def body(reactor: Any) -> None:
        lines = await run(reactor, args)
        load = os.getloadavg()
        text = "\n".join(lines)
        print(text)
        if args.markdown:
            with open(args.markdown, "w") as out:
                out.write(f"# Transfer benchmark, {time.strftime('%Y-%m-%d %H:%M UTC')}\n\n")
                out.write(f"Command: `python bench/transfer.py {' '.join(sys.argv[1:])}`\n\n")
                for line in [
                    *described,
                    f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
                ]:
                    out.write(f"- {line}\n")
                if args.note:
                    out.write(f"- {args.note}\n")
                out.write("\n" + text + "\n")

    task.react(lambda reactor: defer.ensureDeferred(body(reactor)))


if __name__ == "__main__":
    main()
