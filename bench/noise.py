"""Noise vs clear: handshakes/s and MB/s through the relay, the harness in its own process.

    python bench/noise.py [--handshakes 40] [--mib 32] [--rounds 3] [--markdown FILE]

Setup, all on loopback: the bench process runs the clear rendezvous (``RendezvousService``,
``--executor-id`` mode) and a small environment registry with a routing rendezvous
(``twisted_exec.testing.noise_cloud``, ``--environment-id`` mode), and starts two of our
executors as subprocesses (``twistd codex-executor --remote …`` from this tree), one per mode.
The harness is a third process (this file with ``--child``), using the harness library:

- *streams/s*: a new connection and an initialised session, closed again, one after another
  (clear: websocket + ``resume`` + ``initialize``; Noise: ``/connect`` + websocket + hybrid IK
  handshake + registry ``/validate`` + ``initialize``);
- *MB/s*: ``head -c N /dev/zero`` in one session; decoded stdout bytes over the time from
  ``process/start`` to ``closed``.

It also measures the sans-IO core in-process: full handshakes/s (initiator and responder,
both sides' CPU) and records MB/s (60 KiB records, encrypt + decrypt) — the crypto ceiling.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import react
from twisted.python.failure import Failure

from bench.benchlib import machineDescription
from scripts.conformancelib import launch

TOKEN = "bench-noise-token"
NOTE = (
    "Clear streams go through the product rendezvous (`RendezvousService`), Noise streams "
    "through `testing.noise_cloud`: the streams/s row compares whole paths, not the crypto "
    "alone (the core rows are the crypto's ceiling)."
)
REPO = Path(__file__).resolve().parent.parent


# -- the harness child ----------------------------------------------------------------------


async def childMain(reactor: Any, args: argparse.Namespace) -> None:
    from twisted_exec.harness import connectEnvironment, connectHarness

    async def connectClear() -> Any:
        return await connectHarness(reactor, args.clear, "bench", TOKEN)

    async def connectNoise() -> Any:
        return await connectEnvironment(reactor, args.noise, "bench", TOKEN)

    results: dict[str, Any] = {}
    # Best of the rounds, the modes alternating: the machine is shared, and a round that
    # another job slowed down says nothing about the relay.
    for _ in range(args.rounds):
        for mode, connect in (("clear", connectClear), ("noise", connectNoise)):
            started = time.perf_counter()
            for _ in range(args.handshakes):
                connection = await connect()
                await connection.openSession("bench")
                await connection.close()
            rate = args.handshakes / (time.perf_counter() - started)
            key = f"{mode}_streams_per_s"
            results[key] = max(results.get(key, 0.0), rate)
            connection = await connect()
            session = await connection.openSession("bench")
            size = args.mib * 1024 * 1024
            got = [0]

            def count(stream: str, data: bytes, got: list[int] = got) -> None:
                got[0] += len(data)

            started = time.perf_counter()
            process = await session.spawn(
                ["head", "-c", str(size), "/dev/zero"], "/", onOutput=count, keepOutput=False
            )
            await process.finished
            elapsed = time.perf_counter() - started
            assert got[0] == size, (mode, got[0], size)
            key = f"{mode}_mb_per_s"
            results[key] = max(results.get(key, 0.0), size / elapsed / 1e6)
            await connection.close()
    print(json.dumps(results))


# -- in-process core ------------------------------------------------------------------------


def coreNumbers(seconds: float = 2.0) -> dict[str, float]:
    from twisted_exec.wire import noise

    executor, harness = noise.NoiseIdentity.generate(), noise.NoiseIdentity.generate()
    pro = noise.prologue("e", "r", "s")
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        initiator = noise.InitiatorHandshake(harness, executor.publicKey, pro, b"authorization")
        responder, message2 = noise.PendingResponderHandshake(
            executor, pro, initiator.message1
        ).complete()
        transport = initiator.finish(message2)
        count += 1
    handshakes = count / (time.perf_counter() - started)
    sender, receiver = noise.NoiseChannel(transport), noise.NoiseChannel(responder)
    message = b"x" * (4 * 1024 * 1024)
    moved, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for seq, ct in sender.encodeMessage(message):
            receiver.receiveRecord(seq, ct)
        moved += len(message)
    return {
        "core_handshakes_per_s": handshakes,
        "core_records_mb_per_s": moved / (time.perf_counter() - started) / 1e6,
    }


# -- the parent -----------------------------------------------------------------------------


class _Proc(ProcessProtocol):
    def __init__(self) -> None:
        self.out = b""
        self.err = b""
        self.ended: Deferred[None] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def errReceived(self, data: bytes) -> None:
        self.err += data[-65536:]

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(None)


async def parentMain(reactor: Any, args: argparse.Namespace) -> None:
    from twisted_exec.rendezvous import RendezvousServer, RendezvousService
    from twisted_exec.rendezvous.auth import TokenSet
    from twisted_exec.testing.noise_cloud import NoiseCloud

    runRoot = Path(tempfile.mkdtemp(prefix="bench-noise-"))
    env = launch.serverEnv(str(launch.pluginShim(runRoot)))
    env["CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN"] = TOKEN
    server = RendezvousServer(reactor, TokenSet([TOKEN]))
    clear = RendezvousService(reactor, server, "http://127.0.0.1:0")
    clear.startService()
    cloud = NoiseCloud(reactor)
    twistd = [sys.executable, "-c", launch.TWISTD_MAIN, "-n", "--pidfile=", "codex-executor"]
    executors = []
    for extra in (
        ["--remote", clear.url, "--executor-id", "bench"],
        ["--remote", cloud.url, "--environment-id", "bench"],
    ):
        proc = _Proc()
        transport = reactor.spawnProcess(
            proc, sys.executable, [*twistd, *extra], env=env, path=str(runRoot)
        )
        executors.append((proc, transport))
    try:
        await server.router.waitForExecutor("bench").addTimeout(30, reactor)
        await cloud.executorConnected.addTimeout(30, reactor)
        child = _Proc()
        childArgv = [sys.executable, str(Path(__file__).resolve()), "--child"]
        childArgv += ["--clear", str(clear.url), "--noise", cloud.url]
        childArgv += ["--handshakes", str(args.handshakes), "--mib", str(args.mib)]
        childArgv += ["--rounds", str(args.rounds)]
        childEnv = {**env, "PYTHONPATH": str(REPO)}
        reactor.spawnProcess(child, sys.executable, childArgv, env=childEnv, path=str(REPO))
        await child.ended.addTimeout(600, reactor)
        lines = child.out.decode().strip().splitlines()
        if not lines:
            raise SystemExit(f"harness child failed:\n{child.err.decode()[-4000:]}")
        results = json.loads(lines[-1])
    finally:
        for proc, transport in executors:
            if not proc.ended.called:
                transport.signalProcess("TERM")
                await proc.ended
        await cloud.listening.stopListening()
        await clear.stopService()
    results.update(coreNumbers())
    report(results, args)


def report(results: dict[str, float], args: argparse.Namespace) -> None:
    rows = [
        (
            "new stream: connect + handshake + initialize (/s)",
            "clear_streams_per_s",
            "noise_streams_per_s",
        ),
        (f"process output, {args.mib} MiB (MB/s)", "clear_mb_per_s", "noise_mb_per_s"),
    ]
    lines = [
        "| measurement | clear (0.131 relay) | Noise (0.171 relay) | Noise / clear |",
        "|---|---|---|---|",
    ]
    for label, clearKey, noiseKey in rows:
        c, n = results[clearKey], results[noiseKey]
        lines.append(f"| {label} | {c:.1f} | {n:.1f} | {n / c:.2f} |")
    lines.append(
        f"| sans-IO core: full hybrid IK handshakes (/s, both sides) | - | "
        f"{results['core_handshakes_per_s']:.0f} | - |"
    )
    lines.append(
        f"| sans-IO core: records, encrypt + decrypt (MB/s) | - | "
        f"{results['core_records_mb_per_s']:.0f} | - |"
    )
    text = "\n".join(lines)
    print(text)
    print(json.dumps(results, sort_keys=True))
    if args.markdown:
        head = [f"# bench/noise.py, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]
        head += [f"- {line}" for line in machineDescription()]
        head += ["", NOTE, ""]
        Path(args.markdown).write_text("\n".join([*head, text, ""]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handshakes", type=int, default=40)
    parser.add_argument("--mib", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="best of N rounds (default 3)")
    parser.add_argument("--markdown")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--clear", help=argparse.SUPPRESS)
    parser.add_argument("--noise", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        react(lambda reactor: Deferred.fromCoroutine(childMain(reactor, args)))
    else:
        react(lambda reactor: Deferred.fromCoroutine(parentMain(reactor, args)))


if __name__ == "__main__":
    main()
