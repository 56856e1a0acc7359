"""Local websocket benchmark: our executor and the reference, side by side.

Usage::

    python bench/local_ws.py [--codex-bin PATH] [--ours-cmd CMD] [--big] [--only ours|reference]

Each server is started in turn in local websocket mode and measured over one loopback websocket:

- RPC round trip: sequential ``fs/getMetadata`` calls, one in flight (p50, p99, calls/s);
- pipelined throughput: ``fs/getMetadata`` with 500 requests in flight (calls/s);
- process output: ``head -c 5242880 /dev/zero``, from sending ``process/start`` to receiving
  ``process/closed`` (MB/s of decoded output; best and median of 3); with ``--big`` also
  100 MiB once.

The last column is ours/reference: above 1 means ours is slower for latencies and faster for
rates.  The whole run is bounded to about a minute.  See bench/README.md.
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
from bench.benchlib import b64len
from scripts.conformancelib import launch
from scripts.conformancelib.transport import LocalWsTarget

SEQUENTIAL_SECONDS = 2.0
SEQUENTIAL_MAX = 20000
PIPELINE_WINDOW = 500
PIPELINE_TOTAL = 10000
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


async def sequential(reactor: Any, c: BenchClient, path: str) -> dict[str, float]:
    params = {"path": path}
    for _ in range(100):  # warm-up
        await c.call("fs/getMetadata", params)
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < SEQUENTIAL_MAX and time.perf_counter() - start < SEQUENTIAL_SECONDS:
        t0 = time.perf_counter()
        reply = await c.call("fs/getMetadata", params)
        samples.append(time.perf_counter() - t0)
        assert "result" in reply, reply
    elapsed = time.perf_counter() - start
    samples.sort()
    return {
        "p50_ms": samples[len(samples) // 2] * 1000,
        "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000,
        "seq_calls_s": len(samples) / elapsed,
    }


async def pipelined(reactor: Any, c: BenchClient, path: str) -> float:
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

    start = time.perf_counter()
    for _ in range(PIPELINE_WINDOW):
        send()
    done.addTimeout(30, reactor)
    await done
    return PIPELINE_TOTAL / (time.perf_counter() - start)


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


async def measure(reactor: Any, target: Any, cwd: str, big: bool) -> dict[str, float]:
    await target.start()
    try:
        c = await connect(reactor, target.url)
        results = await sequential(reactor, c, cwd)
        results["pipelined_calls_s"] = max([await pipelined(reactor, c, cwd) for _ in range(3)])
        rates = [await processOutput(reactor, c, cwd, OUTPUT_BYTES, i) for i in range(3)]
        results["output_5mib_best"] = max(rates)
        results["output_5mib_median"] = statistics.median(rates)
        if big:
            results["output_100mib"] = await processOutput(reactor, c, cwd, BIG_OUTPUT_BYTES, 99)
        c.proto.sendClose()
        return results
    finally:
        await target.stop()


ROWS = [
    ("p50_ms", "RPC round trip p50 (ms), fs/getMetadata"),
    ("p99_ms", "RPC round trip p99 (ms)"),
    ("seq_calls_s", "sequential calls/s (1 in flight)"),
    ("pipelined_calls_s", f"pipelined calls/s ({PIPELINE_WINDOW} in flight)"),
    ("output_5mib_best", "process output MB/s, 5 MiB (best of 3)"),
    ("output_5mib_median", "process output MB/s, 5 MiB (median of 3)"),
    ("output_100mib", "process output MB/s, 100 MiB"),
]


def table(results: dict[str, dict[str, float]]) -> list[str]:
    names = list(results)
    head = f"{'':44}" + "".join(f"{n:>12}" for n in names)
    if len(names) == 2:
        head += f"{'ours/ref':>10}"
    lines = [head]
    for key, label in ROWS:
        if not any(key in r for r in results.values()):
            continue
        vals = [results[n].get(key) for n in names]
        line = f"{label:44}" + "".join(
            f"{v:12.2f}" if v is not None else f"{'-':>12}" for v in vals
        )
        if len(names) == 2 and vals[0] and vals[1] is not None:
            line += f"{vals[1] / vals[0]:10.2f}"
        lines.append(line)
    return lines


def parseArgs(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--codex-bin", help="the reference codex binary (default: $CODEX_BIN, vendor/)")
    p.add_argument("--ours-cmd", help="command that starts our server in local mode")
    p.add_argument("--python", default=sys.executable, help="python that runs our server")
    p.add_argument("--big", action="store_true", help="also measure 100 MiB of output")
    p.add_argument("--only", choices=["ours", "reference"], help="measure one server")
    return p.parse_args(argv)


async def amain(reactor: Any, args: argparse.Namespace) -> None:
    runRoot = Path(tempfile.mkdtemp(prefix="bench-"))
    env = launch.serverEnv(str(launch.pluginShim(runRoot)))
    targets = []
    ref = launch.findReference(args.codex_bin)
    if args.only != "ours":
        if ref is None:
            print("reference binary not found, measuring ours only")
        else:
            targets.append(
                LocalWsTarget(reactor, "reference", launch.referenceArgv(ref), env, str(runRoot))
            )
    if args.only != "reference":
        cmd = shlex.split(args.ours_cmd) if args.ours_cmd else launch.oursArgv(args.python)
        targets.append(LocalWsTarget(reactor, "ours", cmd, env, str(runRoot)))
    results: dict[str, dict[str, float]] = {}
    try:
        for t in targets:
            t0 = time.perf_counter()
            results[t.name] = await measure(reactor, t, str(runRoot), args.big)
            print(f"measured {t.name} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    finally:
        shutil.rmtree(runRoot, ignore_errors=True)
    print("\n".join(table(results)))


def main(argv: Sequence[str] | None = None) -> None:
    args = parseArgs(sys.argv[1:] if argv is None else argv)
    task.react(lambda reactor: defer.ensureDeferred(amain(reactor, args)))


if __name__ == "__main__":
    main()
