"""Local websocket benchmark: our executor and the reference, side by side, A/B alternated.

Usage::

    python bench/local_ws.py [--codex-bin PATH | --v171] [--baseline DIR] [--rounds N]
                             [--big] [--no-output] [--only ours|reference] [--markdown FILE]

Every server is started once in local websocket mode (``--listen ws://127.0.0.1:0``) as its own
OS process; this benchmark's process is the client (one autobahn websocket per server). Each
round measures every server in turn, the order rotating from round to round:

- RPC round trip: sequential ``fs/getMetadata`` calls, one in flight (p50, p99, calls/s), and
  the server's CPU time per call (user + system, all threads, from ``/proc/PID/stat``);
- pipelined throughput: ``fs/getMetadata`` with 500 requests in flight (calls/s, CPU per call).

Then, once per server, process output: ``head -c 5242880 /dev/zero``, from sending
``process/start`` to receiving ``process/closed`` (MB/s of decoded output; best and median of
3); with ``--big`` also 100 MiB once. The table keeps the best round of each server and the
median of the per-round p50 ratios. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from twisted.internet import defer, task
from twisted.internet.defer import Deferred

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.benchlib import b64len, cpuSeconds, machineDescription, percentile
from scripts.conformancelib import launch
from scripts.conformancelib.transport import LocalWsTarget

SEQUENTIAL_SECONDS = 1.5
SEQUENTIAL_MAX = 20000
PIPELINE_WINDOW = 500
PIPELINE_TOTAL = 5000
OUTPUT_BYTES = 5 * 1024 * 1024
BIG_OUTPUT_BYTES = 100 * 1024 * 1024


class BenchClient:
    """A lean JSON-RPC client over an autobahn protocol: replies by id, notifications to a hook."""

    def __init__(self, proto: Any) -> None:
        self.proto = proto
        self.pending: dict[int, Deferred[dict[str, Any]]] = {}
        self.nextId = 1
        self.onNotification: Callable[[dict[str, Any]], None] = lambda m: None

    def received(self, payload: bytes) -> None:
        msg = json.loads(payload)
        if "id" in msg and ("result" in msg or "error" in msg):
            d = self.pending.pop(msg["id"], None)
            if d is not None:
                d.callback(msg)
        else:
            self.onNotification(msg)

    def call(self, method: str, params: dict[str, Any] | None = None) -> Deferred[dict[str, Any]]:
        rid = self.nextId
        self.nextId += 1
        d: Deferred[dict[str, Any]] = Deferred()
        self.pending[rid] = d
        msg: dict[str, Any] = {"id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.proto.sendMessage(json.dumps(msg).encode(), isBinary=False)
        return d

    def notify(self, method: str) -> None:
        self.proto.sendMessage(json.dumps({"method": method}).encode(), isBinary=False)


async def connect(reactor: Any, url: str) -> BenchClient:
    from autobahn.twisted.websocket import (
        WebSocketClientFactory,
        WebSocketClientProtocol,
        connectWS,
    )

    opened: Deferred[BenchClient] = Deferred()

    from twisted_exec.net.nodelay import NoDelayMixin

    class Proto(NoDelayMixin, WebSocketClientProtocol):  # type: ignore[misc]
        client: BenchClient

        def onOpen(self) -> None:
            self.client = BenchClient(self)
            opened.callback(self.client)

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            self.client.received(payload)

    factory = WebSocketClientFactory(url)
    factory.protocol = Proto
    factory.setProtocolOptions(maxMessagePayloadSize=0, maxFramePayloadSize=0)
    connectWS(factory)
    opened.addTimeout(10, reactor)
    client = await opened
    reply = await client.call("initialize", {"clientName": "bench"})
    assert "result" in reply, reply
    client.notify("initialized")
    return client


class Server:
    """One server under test: its process (for its CPU time) and the client connected to it."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.name: str = target.name
        self.client: BenchClient | None = None
        self.rounds: list[dict[str, float]] = []

    @property
    def pid(self) -> int | None:
        transport = getattr(self.target, "_transport", None)
        return getattr(transport, "pid", None)

    def cpu(self) -> float:
        return cpuSeconds(self.pid) or 0.0


async def sequential(
    c: BenchClient,
    server: Server,
    method: str,
    params: dict[str, Any],
    prefix: str = "",
) -> dict[str, float]:
    """One call in flight for SEQUENTIAL_SECONDS: latency percentiles, calls/s, CPU per call."""
    for _ in range(100):  # warm-up
        await c.call(method, params)
    samples: list[float] = []
    cpu0 = server.cpu()
    start = time.perf_counter()
    while len(samples) < SEQUENTIAL_MAX and time.perf_counter() - start < SEQUENTIAL_SECONDS:
        t0 = time.perf_counter()
        reply = await c.call(method, params)
        samples.append(time.perf_counter() - t0)
        assert "result" in reply or "error" in reply, reply
    elapsed = time.perf_counter() - start
    cpu = server.cpu() - cpu0
    samples.sort()
    return {
        f"{prefix}p50_ms": percentile(samples, 0.5) * 1000,
        f"{prefix}p99_ms": percentile(samples, 0.99) * 1000,
        f"{prefix}seq_calls_s": len(samples) / elapsed,
        f"{prefix}seq_cpu_us": cpu / len(samples) * 1e6,
    }


async def pipelined(reactor: Any, c: BenchClient, server: Server, path: str) -> dict[str, float]:
    params = {"path": path}
    done: Deferred[None] = Deferred()
    state = {"sent": 0, "answered": 0}

    def send() -> None:
        state["sent"] += 1
        c.call("fs/getMetadata", params).addCallback(answered)

    def answered(reply: dict[str, Any]) -> None:
        state["answered"] += 1
        if state["sent"] < PIPELINE_TOTAL:
            send()
        elif state["answered"] == PIPELINE_TOTAL and not done.called:
            done.callback(None)

    cpu0 = server.cpu()
    start = time.perf_counter()
    for _ in range(PIPELINE_WINDOW):
        send()
    done.addTimeout(30, reactor)
    await done
    elapsed = time.perf_counter() - start
    cpu = server.cpu() - cpu0
    return {
        "pipelined_calls_s": PIPELINE_TOTAL / elapsed,
        "pipelined_cpu_us": cpu / PIPELINE_TOTAL * 1e6,
    }


async def processOutput(reactor: Any, c: BenchClient, cwd: str, size: int, n: int) -> float:
    """MB/s (10^6 bytes) of process output from start to process/closed, of one run."""
    pid = f"bench-{n}"
    got = {"bytes": 0}
    closed: Deferred[None] = Deferred()

    def onNotification(msg: dict[str, Any]) -> None:
        params = msg.get("params") or {}
        if params.get("processId") != pid:
            return
        if msg.get("method") == "process/output":
            got["bytes"] += b64len(params.get("chunk", ""))
        elif msg.get("method") == "process/closed" and not closed.called:
            closed.callback(None)

    c.onNotification = onNotification
    start = time.perf_counter()
    reply = await c.call(
        "process/start",
        {
            "processId": pid,
            "argv": ["head", "-c", str(size), "/dev/zero"],
            "cwd": cwd,
            "env": {"PATH": "/usr/bin:/bin"},
            "tty": False,
        },
    )
    assert "result" in reply, reply
    closed.addTimeout(60, reactor)
    await closed
    elapsed = time.perf_counter() - start
    if got["bytes"] != size:
        raise RuntimeError(f"expected {size} bytes of output, got {got['bytes']}")
    return size / elapsed / 1e6


async def outputRows(reactor: Any, c: BenchClient, cwd: str, big: bool) -> dict[str, float]:
    rates = [await processOutput(reactor, c, cwd, OUTPUT_BYTES, i) for i in range(3)]
    results = {"output_5mib_best": max(rates), "output_5mib_median": statistics.median(rates)}
    if big:
        results["output_100mib"] = await processOutput(reactor, c, cwd, BIG_OUTPUT_BYTES, 99)
    return results


#: a call that touches no file and no thread: the protocol path alone
TERMINATE = ("process/terminate", {"processId": "no-such-process"})

#: key, label, lower is better; "best" of the rounds is the min or the max accordingly
ROWS = [
    ("p50_ms", "RPC round trip p50 (ms), fs/getMetadata", True),
    ("p99_ms", "RPC round trip p99 (ms)", True),
    ("seq_calls_s", "sequential calls/s (1 in flight)", False),
    ("seq_cpu_us", "server CPU per call (µs), sequential", True),
    ("term_p50_ms", "RPC round trip p50 (ms), process/terminate unknown id", True),
    ("term_seq_cpu_us", "server CPU per call (µs), process/terminate", True),
    ("pipelined_calls_s", f"pipelined calls/s ({PIPELINE_WINDOW} in flight)", False),
    ("pipelined_cpu_us", "server CPU per call (µs), pipelined", True),
    ("output_5mib_best", "process output MB/s, 5 MiB (best of 3)", False),
    ("output_5mib_median", "process output MB/s, 5 MiB (median of 3)", False),
    ("output_100mib", "process output MB/s, 100 MiB", False),
]


def best(server: Server) -> dict[str, float]:
    """Per row, the best of the rounds (the machine is shared: a slowed round says nothing)."""
    out: dict[str, float] = {}
    for key, _, lower in ROWS:
        values = [r[key] for r in server.rounds if key in r]
        if values:
            out[key] = min(values) if lower else max(values)
    return out


def roundRatios(servers: Sequence[Server], key: str) -> list[float]:
    """ours/reference of ``key`` in each round (both measured back to back in that round)."""
    byName = {s.name: s for s in servers}
    ours, ref = byName.get("ours"), byName.get("reference")
    if ours is None or ref is None:
        return []
    return [
        o[key] / r[key]
        for o, r in zip(ours.rounds, ref.rounds, strict=True)
        if key in o and r.get(key)
    ]


def table(servers: Sequence[Server]) -> list[str]:
    names = [s.name for s in servers]
    results = {s.name: best(s) for s in servers}
    withRatio = "ours" in results and "reference" in results
    head = "| measurement | " + " | ".join(names) + " |"
    extra = [n for n in ("ours", "before") if withRatio and n in results]
    head += "".join(f" {n}/ref |" for n in extra)
    lines = [head, "|---|" + "---:|" * (len(names) + len(extra))]
    for key, label, lower in ROWS:
        if not any(key in r for r in results.values()):
            continue
        cells = [label + (" ↓" if lower else " ↑")]
        cells += [f"{results[n][key]:.2f}" if key in results[n] else "-" for n in names]
        for n in extra:
            a, b = results[n].get(key), results["reference"].get(key)
            cells.append(f"{a / b:.2f}" if a is not None and b else "-")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for key in ("p50_ms", "seq_cpu_us", "term_p50_ms", "term_seq_cpu_us", "pipelined_calls_s"):
        ratios = roundRatios(servers, key)
        if ratios:
            each = ", ".join(f"{r:.2f}" for r in ratios)
            lines.append(
                f"- ours/ref {key} per round: {each} (median {statistics.median(ratios):.2f})"
            )
    return lines


def parseArgs(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--codex-bin", help="the reference codex binary (default: $CODEX_BIN, vendor/)")
    p.add_argument("--v171", action="store_true", help="the 0.171 reference (vendor/codex-0.171.0)")
    p.add_argument("--ours-cmd", help="command that starts our server in local mode")
    p.add_argument("--python", default=sys.executable, help="python that runs our server")
    p.add_argument(
        "--baseline",
        metavar="DIR",
        action="append",
        default=[],
        help="also our executor from DIR (`git archive COMMIT twisted_exec | tar -x -C DIR`);"
        " repeatable: before, before2, ...",
    )
    p.add_argument("--rounds", type=int, default=3, help="A/B rounds (order rotates)")
    p.add_argument("--big", action="store_true", help="also measure 100 MiB of output")
    p.add_argument("--no-output", action="store_true", help="skip the process output rows")
    p.add_argument("--only", choices=["ours", "reference"], help="measure one server")
    p.add_argument("--markdown", metavar="FILE", help="append the table, machine and load there")
    p.add_argument("--note", default="", help="a line about the conditions, for --markdown")
    return p.parse_args(argv)


def buildTargets(reactor: Any, args: argparse.Namespace, runRoot: Path) -> list[Any]:
    shim = str(launch.pluginShim(runRoot))
    env = launch.serverEnv(shim)
    targets = []
    ref = launch.findReference(args.codex_bin, v171=args.v171)
    if args.only != "ours":
        if ref is None:
            print("reference binary not found, measuring ours only")
        else:
            argv = launch.referenceArgv(ref)
            targets.append(LocalWsTarget(reactor, "reference", argv, env, str(runRoot)))
    if args.only != "reference":
        cmd = shlex.split(args.ours_cmd) if args.ours_cmd else launch.oursArgv(args.python)
        targets.append(LocalWsTarget(reactor, "ours", cmd, env, str(runRoot)))
        for n, tree in enumerate(args.baseline):
            before = dict(env, PYTHONPATH=f"{Path(tree).resolve()}:{env['PYTHONPATH']}")
            name = "before" if n == 0 else f"before{n + 1}"
            targets.append(LocalWsTarget(reactor, name, cmd, before, str(runRoot)))
    return targets


async def amain(reactor: Any, args: argparse.Namespace) -> None:
    runRoot = Path(tempfile.mkdtemp(prefix="bench-"))
    servers = [Server(t) for t in buildTargets(reactor, args, runRoot)]
    loadStart = machineDescription()
    try:
        for s in servers:
            await s.target.start()
            s.client = await connect(reactor, s.target.url)
        for n in range(args.rounds):
            order = servers[n % len(servers) :] + servers[: n % len(servers)]
            for s in order:
                assert s.client is not None
                r = await sequential(s.client, s, "fs/getMetadata", {"path": str(runRoot)})
                r.update(await sequential(s.client, s, *TERMINATE, prefix="term_"))
                try:
                    r.update(await pipelined(reactor, s.client, s, str(runRoot)))
                except defer.TimeoutError:
                    print(f"round {n + 1}: pipelined calls timed out on {s.name}", file=sys.stderr)
                s.rounds.append(r)
            print(f"round {n + 1}/{args.rounds} done", file=sys.stderr)
        if not args.no_output:
            for s in servers:
                assert s.client is not None
                try:
                    rows = await outputRows(reactor, s.client, str(runRoot), args.big)
                except AssertionError as e:  # e.g. the 0.171 dialect's process/start params
                    print(f"process output rows skipped for {s.name}: {e}", file=sys.stderr)
                    continue
                s.rounds[-1].update(rows)
    finally:
        for s in servers:
            await s.target.stop()
        shutil.rmtree(runRoot, ignore_errors=True)
    lines = table(servers)
    print("\n".join(lines))
    if args.markdown:
        load = machineDescription()[-1].replace("at the start", "at the end")
        with open(args.markdown, "a") as out:
            out.write(
                f"\n## bench/local_ws.py, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
            )
            for line in [*loadStart, load] + ([args.note] if args.note else []):
                out.write(f"- {line}\n")
            out.write(f"- {args.rounds} rounds, A/B alternated; best round per server\n\n")
            out.write("\n".join(lines) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    args = parseArgs(sys.argv[1:] if argv is None else argv)
    task.react(lambda reactor: defer.ensureDeferred(amain(reactor, args)))


if __name__ == "__main__":
    main()
