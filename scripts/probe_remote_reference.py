"""Probe the reference executor (Codex CLI 0.131.0) in remote mode against our test cloud.

    PYTHONPATH=. python scripts/probe_remote_reference.py [CODEX_BINARY] [--only NAME]

Starts twisted_exec.testing's registry and rendezvous on loopback, runs
``codex exec-server --remote URL --executor-id ID`` with scripted registry replies and prints, per
scenario: the exit code, stderr (first lines), what the registry received, and what the
rendezvous saw. Used to confirm the facts in reference-0.131.md; nothing here is asserted.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import defer, protocol, task
from twisted.internet.interfaces import IReactorProcess

from twisted_exec.testing.registry import FakeRegistry, Reply, errorBody
from twisted_exec.testing.rendezvous import Rendezvous

DEFAULT_BINARY = "/work/ref/package/vendor/x86_64-unknown-linux-musl/codex/codex"
TOKEN = "probe-token-s3cr3t"


class _Capture(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.stdout = b""
        self.stderr = b""
        self.code: int | None = None
        self.done = False
        self._waiters: list[defer.Deferred[int | None]] = []

    def whenEnded(self) -> defer.Deferred[int | None]:
        if self.done:
            return defer.succeed(self.code)
        d: defer.Deferred[int | None] = defer.Deferred()
        self._waiters.append(d)
        return d

    def outReceived(self, data: bytes) -> None:
        self.stdout += data

    def errReceived(self, data: bytes) -> None:
        self.stderr += data

    def processEnded(self, reason: Any) -> None:
        self.code = getattr(reason.value, "exitCode", None)
        self.done = True
        for d in self._waiters:
            d.callback(self.code)


def spawn(reactor: IReactorProcess, binary: str, base: str, ident: str) -> _Capture:
    env = {k: v for k, v in os.environ.items() if k != "TMPDIR"}
    env["CODEX_HOME"] = env.get("CODEX_HOME", "/work/codexhome")
    env["CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN"] = TOKEN
    cap = _Capture()
    args = [binary, "exec-server", "--remote", base, "--executor-id", ident, "--name", "probe"]
    reactor.spawnProcess(cap, binary, args, env=env)
    return cap


async def waitExit(reactor: Any, cap: _Capture, timeout: float) -> int | None:
    d = cap.whenEnded()
    d.addTimeout(timeout, reactor)
    try:
        return await d
    except defer.TimeoutError:
        return None


def kill(cap: _Capture) -> None:
    with contextlib.suppress(Exception):
        cap.transport.signalProcess("KILL")  # type: ignore[union-attr]


def show(name: str, cap: _Capture, code: int | None, registry: FakeRegistry) -> None:
    print(f"== {name}: exit={code}")
    lines = cap.stderr.decode(errors="replace").splitlines()
    for line in lines[:8]:
        print(f"   stderr: {line}")
    if cap.stdout:
        print(f"   stdout: {cap.stdout[:200]!r}")
    print(f"   token in output: {TOKEN in (cap.stderr + cap.stdout).decode(errors='replace')}")
    for r in registry.requests:
        print(f"   request {r.method} {r.path} q={r.query!r} body={r.body!r}")
        print(f"      headers {sorted(r.headers)}")


async def errorScenario(reactor: Any, binary: str, name: str, reply: Reply) -> None:
    rendezvous = Rendezvous(reactor)
    rendezvous.listen()
    registry = FakeRegistry(TOKEN, rendezvous.executorUrl)
    base = registry.listen(reactor)
    registry.script(reply)
    cap = spawn(reactor, binary, base, "exec-1")
    code = await waitExit(reactor, cap, 10)
    if code is None:
        kill(cap)
        await cap.whenEnded()
    show(name, cap, code, registry)
    await registry.stopListening()
    await rendezvous.stopListening()


async def reconnectScenario(reactor: Any, binary: str) -> None:
    rendezvous = Rendezvous(reactor)
    rendezvous.listen()
    registry = FakeRegistry(TOKEN, rendezvous.executorUrl)
    base = registry.listen(reactor)
    cap = spawn(reactor, binary, base, "exec-2")
    try:
        first = await rendezvous.waitForConnection(1).addTimeout(10, reactor)
        print(f"== reconnect: upgrade headers {sorted(first.headers)} protocols={first.protocols}")
        s = first.stream("stream-a")
        sid = await s.initialize()
        print(f"   session {sid}; seqs {s.seqs}")
        t0 = time.monotonic()
        first.close()
        info = await first.whenClosed().addTimeout(5, reactor)
        print(f"   close info {info}")
        second = await rendezvous.waitForConnection(2).addTimeout(10, reactor)
        gap = time.monotonic() - t0
        print(f"   reconnected after {gap:.2f}s, registrations {len(registry.requests)}")
        s2 = second.stream("stream-b")
        reply = await s2.request("initialize", {"clientName": "p", "resumeSessionId": sid})
        print(f"   resume reply {json.dumps(reply)}")
        # refused upgrades: how do the gaps grow?
        rendezvous.refuseUpgrades = True
        t0 = time.monotonic()
        second.abort()
        stamps = []
        for n in range(3, 7):
            await registry.waitForRequest(n).addTimeout(20, reactor)
            stamps.append(round(time.monotonic() - t0, 2))
        print(f"   registrations after refused upgrades at {stamps}")
        print(f"   stderr: {cap.stderr.decode(errors='replace').splitlines()[:6]}")
    finally:
        kill(cap)
        await cap.whenEnded()
        rendezvous.closeAll()
        await registry.stopListening()
        await rendezvous.stopListening()


SCENARIOS: dict[str, Callable[[Any, str], Awaitable[None]]] = {}


def errors() -> list[tuple[str, Reply]]:
    long = "x" * 5000
    return [
        ("401 json", Reply(401, errorBody("unauthorized", "invalid bearer token"))),
        ("401 empty", Reply(401, b"")),
        ("401 plain", Reply(401, b"go away")),
        ("403 code only", Reply(403, errorBody("forbidden", None))),
        ("500 json", Reply(500, errorBody("internal", "database down"))),
        ("500 message only", Reply(500, errorBody(None, "database down"))),
        ("500 code only", Reply(500, errorBody("internal", None))),
        ("500 empty", Reply(500, b"")),
        ("500 long plain", Reply(500, long.encode())),
        ("502 html", Reply(502, b"<html>bad gateway</html>")),
        ("200 no url", Reply(200, {"executor_id": "exec-1"})),
        ("200 not json", Reply(200, b"nope")),
        ("200 http url", Reply(200, {"executor_id": "exec-1", "url": "http://127.0.0.1:9/x"})),
    ]


async def main(reactor: Any, argv: list[str]) -> None:
    binary = argv[0] if argv and not argv[0].startswith("--") else DEFAULT_BINARY
    only = argv[argv.index("--only") + 1] if "--only" in argv else None
    for name, reply in errors():
        if only is None or only == name:
            await errorScenario(reactor, binary, name, reply)
    if only is None or only == "reconnect":
        await reconnectScenario(reactor, binary)


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, sys.argv[1:])))
