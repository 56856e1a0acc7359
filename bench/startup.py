"""Startup benchmark: how soon an executor is usable, ours and the reference, alternated.

Usage::

    python bench/startup.py [--runs 5] [--storm 20] [--codex-bin PATH] [--codex171-bin PATH]
                            [--only ours|reference] [--baseline DIR] [--markdown FILE]
                            [--note TEXT]

Rows (median of ``--runs``; every run starts the targets in turn, the order rotating):

- ``--listen ws://127.0.0.1:0`` until the bound URL is on stdout, then until the first
  ``initialize`` over that websocket is answered (the lazy imports must not just move the cost
  behind the URL);
- ``--listen stdio`` until ``initialize`` on stdin is answered;
- the CPU time (user+sys, ``wait4``'s rusage: the process is killed as soon as it answered) of
  both: on a shared machine wall time measures the neighbours too, CPU time much less;
- the RSS of the idle executor (websocket: after the URL, then after one ``initialize``; stdio:
  after ``initialize``);
- a stdio *storm*: ``--storm`` (20) stdio executors started at once, each sent ``initialize``
  at once; how many answered within 2 s, the median and the slowest answer, their CPU in all.

Ours is ``twistd -n codex-executor`` from this source tree (``--baseline DIR``: also from another
tree, as "before"); twistd alone (a plugin that listens and prints) is the floor; "ours,
stdio_main" is ``python -m twisted_exec.executor.stdio_main`` (stdio without twistd); the
references are Codex 0.131 and 0.171 (``vendor/``), with ``CODEX_HOME`` an empty directory
outside /tmp. Only the standard library here (sockets, ``selectors``), in a process of its own:
the measuring side costs next to nothing.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.benchlib import Row, formatValue, machineDescription, ratio, rssKiB
from scripts.conformancelib import launch

INITIALIZE = b'{"id":1,"method":"initialize","params":{"clientName":"bench-startup"}}\n'
STORM_DEADLINE = 2.0

FLOOR_PLUGIN = """
import sys

from twisted.application.service import IServiceMaker, Service
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer


class Options(usage.Options):
    optParameters = [["listen", None, None, "ignored"]]


class Listen(Service):
    def startService(self):
        from twisted.internet import reactor
        from twisted.internet.protocol import Factory, Protocol

        port = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        sys.__stdout__.write(f"ws://127.0.0.1:{port.getHost().port}\\n")
        sys.__stdout__.flush()


@implementer(IServiceMaker, IPlugin)
class Maker:
    tapname = "bench-floor"
    description = "twistd alone: listen on a port and print it"
    options = Options

    def makeService(self, options):
        return Listen()


floor = Maker()
"""


class Target:
    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        *,
        ws: bool = True,
        url: bool = True,
        stdio: bool = True,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.url = url  # prints a ws:// URL with --listen ws://...
        self.ws = ws  # ... and answers initialize on it (the floor does not)
        self.stdio = stdio  # answers initialize with --listen stdio

    def spawn(self, listen: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*self.argv, "--listen", listen],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=self.env,
            cwd=self.env.get("BENCH_CWD"),
        )


def _stop(p: subprocess.Popen[bytes]) -> float:
    """Kill ``p`` and reap it: the CPU time (user+sys, ms) it used."""
    p.kill()
    for pipe in (p.stdin, p.stdout):
        if pipe is not None:
            pipe.close()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return (usage.ru_utime + usage.ru_stime) * 1000


def wsInitialize(url: str, timeout: float = 10.0) -> None:
    """Upgrade, send ``initialize``, wait for the reply (a bare RFC 6455 client)."""
    host, port = url.removeprefix("ws://").split(":")
    s = socket.create_connection((host, int(port)), timeout=timeout)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(
            f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        payload = INITIALIZE.strip()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
        rest = buf.split(b"\r\n\r\n", 1)[1]
        while b'"sessionId"' not in rest:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("websocket closed before the initialize reply")
            rest += chunk
    finally:
        s.close()


def cpuTicksMs(pid: int) -> float | None:
    """user+sys CPU of a running process so far (``/proc/PID/stat``, clock ticks of 10 ms)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # after the command: state is field 3, utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def measureWs(t: Target) -> dict[str, float]:
    start = time.perf_counter()
    p = t.spawn("ws://127.0.0.1:0")
    result: dict[str, float] = {}
    try:
        assert p.stdout is not None
        url = p.stdout.readline().decode().strip()
        urlAt = time.perf_counter()
        if not url.startswith("ws://"):
            raise RuntimeError(f"{t.name}: no URL on stdout")
        result["url_ms"] = (urlAt - start) * 1000
        urlCpu = cpuTicksMs(p.pid)
        if urlCpu is not None:
            result["url_cpu_ms"] = urlCpu
        if t.ws:
            rss = rssKiB(p.pid)
            wsInitialize(url)
            result["init_ms"] = (time.perf_counter() - start) * 1000
            after = rssKiB(p.pid)
            if rss is not None and after is not None:
                result["rss_url"] = rss / 1024
                result["rss_init"] = after / 1024
    finally:
        cpu = _stop(p)
    # CPU to the first initialize answered (the floor: to the URL, it answers nothing)
    result["ws_cpu_ms"] = cpu
    return result


def measureStdio(t: Target) -> dict[str, float]:
    start = time.perf_counter()
    p = t.spawn("stdio")
    result: dict[str, float] = {}
    try:
        assert p.stdin is not None and p.stdout is not None
        p.stdin.write(INITIALIZE)
        p.stdin.flush()
        line = p.stdout.readline()
        if b'"sessionId"' not in line:
            raise RuntimeError(f"{t.name}: no initialize reply on stdout: {line[:80]!r}")
        result["stdio_ms"] = (time.perf_counter() - start) * 1000
        rss = rssKiB(p.pid)
        if rss is not None:
            result["rss_stdio"] = rss / 1024
    finally:
        result["stdio_cpu_ms"] = _stop(p)
    return result


def storm(t: Target, count: int) -> dict[str, float]:
    """``count`` stdio executors at once; the time each took to answer ``initialize``."""
    sel = selectors.DefaultSelector()
    start = time.perf_counter()
    procs = [t.spawn("stdio") for _ in range(count)]
    answered: dict[int, float] = {}
    buffers: dict[int, bytes] = {}
    try:
        for p in procs:
            assert p.stdin is not None and p.stdout is not None
            p.stdin.write(INITIALIZE)
            p.stdin.flush()
            os.set_blocking(p.stdout.fileno(), False)
            sel.register(p.stdout, selectors.EVENT_READ, p.pid)
            buffers[p.pid] = b""
        deadline = start + 10.0
        while len(answered) < count and time.perf_counter() < deadline:
            for key, _ in sel.select(timeout=max(0.0, deadline - time.perf_counter())):
                pid = key.data
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buffers[pid] += chunk
                if b'"sessionId"' in buffers[pid] and pid not in answered:
                    answered[pid] = (time.perf_counter() - start) * 1000
    finally:
        cpu = sum(_stop(p) for p in procs)
    times = sorted(answered.values())
    within = sum(1 for x in times if x <= STORM_DEADLINE * 1000)
    return {
        "within": float(within),
        "median_ms": statistics.median(times) if times else float("nan"),
        "max_ms": times[-1] if len(times) == count else float("nan"),
        "cpu_s": cpu / 1000,
    }


def buildTargets(args: argparse.Namespace, root: Path) -> list[Target]:
    shim = launch.pluginShim(root)
    (shim / "twisted" / "plugins" / "bench_floor.py").write_text(FLOOR_PLUGIN)
    env = launch.serverEnv(str(shim))
    cacheDir = Path.home() / ".cache" / "twisted-exec-bench"
    cacheDir.mkdir(parents=True, exist_ok=True)
    env["CODEX_HOME"] = tempfile.mkdtemp(prefix="codex-home-", dir=cacheDir)
    env["BENCH_CWD"] = str(root)
    twistd = [args.python, "-c", launch.TWISTD_MAIN, "-n", "--pidfile="]
    targets: list[Target] = []
    if args.only != "reference":
        targets.append(Target("ours", [*twistd, "codex-executor"], env))
        # stdio without twistd (what a harness that spawns stdio sessions should run)
        stdioMain = [args.python, "-m", "twisted_exec.executor.stdio_main"]
        targets.append(Target("ours, stdio_main", stdioMain, env, ws=False, url=False))
        if args.baseline:
            before = dict(env)
            before["PYTHONPATH"] = os.pathsep.join([str(Path(args.baseline).resolve()), str(shim)])
            targets.append(Target("before", [*twistd, "codex-executor"], before))
            targets.append(Target("before, stdio_main", stdioMain, before, ws=False, url=False))
        floor = [*twistd, "--logfile=/dev/null", "bench-floor"]
        targets.append(Target("twistd alone", floor, env, ws=False, stdio=False))
    if args.only != "ours":
        ref = launch.findReference(args.codex_bin)
        if ref is None:
            print("reference binary not found: measuring without it", file=sys.stderr)
        else:
            targets.append(Target("ref 0.131", [str(ref), "exec-server"], env))
        ref171 = Path(args.codex171_bin or launch.REPO / "vendor" / "codex-0.171.0" / "codex")
        if ref171.exists():
            targets.append(Target("ref 0.171", [str(ref171), "exec-server"], env))
        else:
            print(f"{ref171} not found: measuring without 0.171", file=sys.stderr)
    return targets


#: Ratio columns: each of ours against each reference (when both are in the run).
RATIOS = [
    ("ours", "ref 0.131"),
    ("ours", "ref 0.171"),
    ("ours, stdio_main", "ref 0.131"),
    ("ours, stdio_main", "ref 0.171"),
    ("before", "ref 0.171"),
]


def render(rows: list[Row], columns: list[str]) -> list[str]:
    """The table: one column per target, then ours/reference for each pair present."""
    pairs = [(a, b) for a, b in RATIOS if a in columns and b in columns]
    head = ["measurement", "unit", *columns, *(f"{a} / {b}" for a, b in pairs)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row.label, row.unit + (" ↓" if row.lowerIsBetter else " ↑")]
        cells.extend(formatValue(row.values.get(c)) for c in columns)
        for a, b in pairs:
            r = ratio(row.values.get(a), row.values.get(b))
            cells.append("-" if r is None else f"{r:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="runs per row (median kept)")
    p.add_argument("--storm", type=int, default=20, help="stdio executors started at once")
    p.add_argument("--codex-bin", help="the 0.131 reference (default: $CODEX_BIN, vendor/)")
    p.add_argument("--codex171-bin", help="the 0.171 reference (default: vendor/codex-0.171.0)")
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--only", choices=["ours", "reference"])
    p.add_argument("--baseline", metavar="DIR", help="also our executor from this source tree")
    p.add_argument("--markdown", help="also write the table with the conditions to this file")
    p.add_argument("--note", default="", help="a line about the conditions, for --markdown")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    root = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    conditions = machineDescription()
    targets = buildTargets(args, root)
    samples: dict[tuple[str, str], list[float]] = {}

    def keep(target: Target, key: str, value: float) -> None:
        samples.setdefault((target.name, key), []).append(value)

    for r in range(args.runs):
        order = targets[r % len(targets) :] + targets[: r % len(targets)]
        for t in order:
            if t.url:
                for key, value in measureWs(t).items():
                    keep(t, key, value)
            if t.stdio:
                for key, value in measureStdio(t).items():
                    keep(t, key, value)
        print(f"run {r + 1}/{args.runs} done", file=sys.stderr)
    storms: dict[str, dict[str, float]] = {}
    for t in targets:
        if t.stdio and args.storm:
            storms[t.name] = storm(t, args.storm)
            print(f"storm [{t.name}]: {storms[t.name]}", file=sys.stderr)
    n = args.storm
    medianRows = [
        ("url_ms", Row("ws: spawn to the URL on stdout (median)", "ms", True, {})),
        ("url_cpu_ms", Row("ws: CPU to the URL (/proc, 10 ms ticks)", "ms", True, {})),
        ("init_ms", Row("ws: spawn to the first initialize answered (median)", "ms", True, {})),
        ("ws_cpu_ms", Row("ws: CPU to the first initialize (floor: to the URL)", "ms", True, {})),
        ("stdio_ms", Row("stdio: spawn to initialize answered (median)", "ms", True, {})),
        ("stdio_cpu_ms", Row("stdio: CPU to initialize answered (median)", "ms", True, {})),
        ("rss_url", Row("RSS idle, ws, URL printed", "MiB", True, {})),
        ("rss_init", Row("RSS idle, ws, after one initialize", "MiB", True, {})),
        ("rss_stdio", Row("RSS idle, stdio, after initialize", "MiB", True, {})),
    ]
    stormRows = [
        ("within", Row(f"{n} stdio at once: answered within {STORM_DEADLINE:g} s", "", False, {})),
        ("median_ms", Row(f"{n} stdio at once: median answer", "ms", True, {})),
        ("max_ms", Row(f"{n} stdio at once: slowest answer", "ms", True, {})),
        ("cpu_s", Row(f"{n} stdio at once: CPU of all {n}", "s", True, {})),
    ]
    for t in targets:
        for key, row in medianRows:
            if (t.name, key) in samples:
                row.values[t.name] = statistics.median(samples[(t.name, key)])
        for key, row in stormRows if t.name in storms else ():
            row.values[t.name] = storms[t.name][key]
    load = os.getloadavg()
    conditions.append(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    lines = render([row for _, row in medianRows + stormRows], [t.name for t in targets])
    print("\n".join(lines))
    if args.markdown:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        text = [f"# Startup benchmark, {when}", "", "Command: `python bench/startup.py`", ""]
        text += [f"- {c}" for c in conditions] + ([f"- {args.note}"] if args.note else [])
        Path(args.markdown).write_text("\n".join([*text, "", *lines]) + "\n")
    print(json.dumps({f"{n}.{k}": v for (n, k), v in samples.items()}), file=sys.stderr)


if __name__ == "__main__":
    main()
