"""The relay benchmark's executors under test: ours, the reference, the ceiling; how each starts.

A :class:`Target` is one executor subprocess that dials the benchmark's rendezvous; it is started
again (under a fresh executor id) when it crashes or drops its websocket, so one failure costs a
row, not the run.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet import defer, error, protocol
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from scripts.conformancelib import launch
from twisted_exec.testing.rendezvous import ExecutorConnection, Rendezvous

TOKEN = "bench-token-not-secret"
DETACH_TTL = 10.0  # the reference's and our default: a reset stream's session lives this long
BENCH = Path(__file__).resolve().parent.parent


class ExecutorProcess(protocol.ProcessProtocol):
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


async def stopProcess(reactor: Any, process: ExecutorProcess, transport: Any) -> None:
    """SIGTERM, then SIGKILL when it has not ended 5 s later; returns once it has ended (or
    after the SIGKILL's 5 s), at once when it already had."""
    if process.ended.called:
        return
    for sig in ("TERM", "KILL"):
        try:
            transport.signalProcess(sig)
        except error.ProcessExitedAlready:
            return
        waiter: Deferred[None] = Deferred()

        def fire(result: object, waiter: Deferred[None] = waiter) -> object:
            if not waiter.called:
                waiter.callback(None)
            return result

        process.ended.addBoth(fire)
        try:
            await waiter.addTimeout(5, reactor)
            return
        except defer.TimeoutError:
            continue


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
    process: ExecutorProcess | None = None
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
        self.process = process = ExecutorProcess()
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
        if self.process is not None:
            await stopProcess(reactor, self.process, self.transport)


def failureText(err: BaseException) -> str:
    """What a table cell shows for a measurement that failed: ``timeout`` or the error's line."""
    if isinstance(err, defer.FirstError) and err.subFailure.value is not None:
        err = err.subFailure.value  # the first failing call says what went wrong
    if isinstance(err, defer.TimeoutError | defer.CancelledError):
        return "timeout"
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return f"error: {text[:60]}"


def oursArgv(python: str) -> Callable[[str, str, str], list[str]]:
    """``twistd -n codex-executor --remote`` (run from a source tree, see ``pluginShim``)."""

    def argv(registry: str, _url: str, ident: str) -> list[str]:
        twistd = [python, "-c", launch.TWISTD_MAIN, "-n", "--pidfile="]
        return [*twistd, "codex-executor", "--remote", registry, "--executor-id", ident]

    return argv


def buildTargets(args: argparse.Namespace, runRoot: Path, codexHome: Path) -> list[Target]:
    shim = str(launch.pluginShim(runRoot))
    env = launch.serverEnv(shim)
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
        ref = launch.findReference(args.codex_bin)
        if ref is None:
            print("reference binary not found: measuring without it", file=sys.stderr)
        else:
            binary = str(ref)

            def referenceArgv(registry: str, _url: str, ident: str) -> list[str]:
                return [binary, "exec-server", "--remote", registry, "--executor-id", ident]

            targets.append(Target("reference", referenceArgv, env))
    if not args.no_ceiling:
        echo = str(BENCH / "echo_peer.py")
        targets.append(
            Target(
                "ceiling",
                lambda _registry, url, _ident: [python, echo, url],
                env,
                measuresMemory=False,
            )
        )
    return targets
