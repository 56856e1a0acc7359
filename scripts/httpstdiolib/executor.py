"""A stdio executor under test, ours or the reference, as a harness would spawn it."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from twisted.internet import defer, protocol, task

_VENDORED = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..",
    "..",
    "vendor/codex-0.131.0/package/vendor/x86_64-unknown-linux-musl/codex/codex",
)
REFERENCE = os.environ.get("CODEX_BIN", os.path.normpath(_VENDORED))
PYTHON = sys.executable
CODEX_HOME = os.environ.get("CODEX_HOME_PROBE", "/work/codexhome")


def command(target: str) -> list[str]:
    if target == "ref":
        return [REFERENCE, "exec-server", "--listen", "stdio"]
    return [PYTHON, "-m", "twisted_exec.executor.stdio_main"]


def environment() -> dict[str, str]:
    os.makedirs(CODEX_HOME, exist_ok=True)
    env = dict(os.environ, CODEX_HOME=CODEX_HOME)
    env.pop("TMPDIR", None)
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Executor(protocol.ProcessProtocol):
    """A stdio executor: JSON lines out, raw stderr kept, exit code recorded."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.buffer = b""
        self.messages: list[dict[str, Any]] = []
        self.rawLines: list[bytes] = []
        self.stderr = b""
        self.ended: defer.Deferred[int | None] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.rawLines.append(line)
            try:
                message = json.loads(line)
            except ValueError:
                message = {"__notjson__": line.decode("utf-8", "replace")}
            message["_t"] = time.monotonic()
            self.messages.append(message)

    def errReceived(self, data: bytes) -> None:
        self.stderr += data

    @property
    def process(self) -> Any:
        """The process transport (set once spawned)."""
        return self.transport

    def processEnded(self, reason: Any) -> None:
        self.ended.callback(reason.value.exitCode)

    def send(self, message: Any) -> None:
        raw = message if isinstance(message, bytes) else json.dumps(message).encode()
        self.process.write(raw + b"\n")


def spawn(reactor: Any, target: str) -> Executor:
    executor = Executor(reactor)
    argv = command(target)
    reactor.spawnProcess(executor, argv[0], argv, env=environment())
    return executor


async def waitFor(executor: Executor, start: int, predicate: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in executor.messages[start:]:
            if predicate(message):
                return message
        await task.deferLater(executor.reactor, 0.005, lambda: None)
    return None
