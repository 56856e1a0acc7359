"""Time the full loop on one machine: rendezvous service + remote executor + harness client.

    python scripts/full_loop_timing.py [--reference CODEX_BINARY] [--rounds N]

Starts the real rendezvous service and our remote executor in this process (or the reference
``codex exec-server --remote`` as a subprocess with ``--reference``), then measures through the
relay: harness connect + session open, a short command's round trip, and a 10 MiB file written
and read back. Prints one line per measurement (median of ``--rounds``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

from twisted.internet import defer, protocol, task

from twisted_exec.executor.executor import Executor
from twisted_exec.executor.transports.relay.registry import TOKEN_ENV, RemoteConfig
from twisted_exec.executor.transports.relay.service import makeRemoteService
from twisted_exec.harness import connectHarness
from twisted_exec.rendezvous import RendezvousServer, RendezvousService
from twisted_exec.rendezvous.auth import TokenSet

TOKEN = "timing-token"


async def main(reactor: Any, argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference", metavar="CODEX_BINARY")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    server = RendezvousServer(reactor, TokenSet([TOKEN]))
    service = RendezvousService(reactor, server, "http://127.0.0.1:0")
    service.startService()
    assert service.url is not None
    url = service.url
    proc: Any = None
    home = ""
    if args.reference:
        # the reference refuses a CODEX_HOME under /tmp: a scratch directory here, removed below
        home = tempfile.mkdtemp(prefix=".codex-home-", dir=os.getcwd())
        env = {"PATH": os.environ["PATH"], "CODEX_HOME": home, TOKEN_ENV: TOKEN}
        proc = reactor.spawnProcess(
            protocol.ProcessProtocol(),
            args.reference,
            [args.reference, "exec-server", "--remote", url, "--executor-id", "box"],
            env=env,
        )
    else:
        executor = Executor(reactor)
        config = RemoteConfig.fromInputs(url, "box", environ={TOKEN_ENV: TOKEN})
        makeRemoteService(reactor, executor.processorFactory, config).startService()
    await server.router.waitForExecutor("box").addTimeout(20, reactor)
    tmp = tempfile.mkdtemp()
    data = os.urandom(10 * 1024 * 1024)
    results: dict[str, list[float]] = {"connect+open": [], "run echo": [], "10 MiB write+read": []}
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        connection = await connectHarness(reactor, url, "box", TOKEN)
        session = await connection.openSession()
        t1 = time.perf_counter()
        process = await session.spawn(["/bin/echo", "hi"], tmp)
        await process.finished
        t2 = time.perf_counter()
        path = os.path.join(tmp, "big.bin")
        await session.writeFile(path, data)
        back = await session.readFile(path)
        t3 = time.perf_counter()
        assert back == data
        results["connect+open"].append(t1 - t0)
        results["run echo"].append(t2 - t1)
        results["10 MiB write+read"].append(t3 - t2)
        await connection.close()
    which = "reference executor" if args.reference else "twisted-exec executor"
    print(f"full loop through the rendezvous, {which}, median of {args.rounds}:")
    for name, values in results.items():
        print(f"  {name:<20} {statistics.median(values) * 1000:8.1f} ms")
    if proc is not None:
        proc.signalProcess("KILL")
        shutil.rmtree(home, ignore_errors=True)
    await service.stopService()


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, sys.argv[1:])))
