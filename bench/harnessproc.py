"""The driver's end of ``bench/harness_worker.py``: start it, send it commands, await answers."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from twisted.internet import protocol
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

WORKER = Path(__file__).resolve().parent / "harness_worker.py"
REPO = WORKER.parent.parent


class WorkerError(Exception):
    """The worker answered a command with an error (its text is the message)."""


class _Process(protocol.ProcessProtocol):
    def __init__(self, owner: HarnessProcess) -> None:
        self.owner = owner
        self.buffer = b""
        self.ended: Deferred[None] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            self.owner._answer(json.loads(line))

    def errReceived(self, data: bytes) -> None:
        sys.stderr.write("[harness] " + data.decode("utf-8", "replace"))

    def processEnded(self, reason: Failure) -> None:
        self.owner._ended(reason)
        self.ended.callback(None)


class HarnessProcess:
    """The harness as a separate interpreter, driven over its stdin/stdout."""

    def __init__(self, reactor: Any, python: str = sys.executable, worker: Path = WORKER) -> None:
        self._reactor = reactor
        self._python = python
        self._worker = worker  # bench/noise_worker.py speaks the same line protocol
        self._seq = 0
        self._pending: dict[int, Deferred[dict[str, Any]]] = {}
        self._proc: _Process | None = None
        self._transport: Any = None
        self.pid: int | None = None

    def start(self) -> None:
        self._proc = _Process(self)
        env = dict(os.environ)
        # This source tree's twisted_exec, as for our executor (not whatever is installed).
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        self._transport = self._reactor.spawnProcess(
            self._proc, self._python, [self._python, str(self._worker)], env=env
        )
        self.pid = self._transport.pid

    def call(self, op: str, **params: Any) -> Deferred[dict[str, Any]]:
        """Send one command; fires with its ``ok`` value, fails with :class:`WorkerError`."""
        if self._transport is None:
            raise WorkerError("the harness process is not running")
        self._seq += 1
        d: Deferred[dict[str, Any]] = Deferred()
        self._pending[self._seq] = d
        line = json.dumps({"seq": self._seq, "op": op, **params})
        self._transport.write(line.encode() + b"\n")
        return d

    def _answer(self, answer: dict[str, Any]) -> None:
        d = self._pending.pop(answer["seq"], None)
        if d is None:
            return
        if "error" in answer:
            d.errback(WorkerError(answer["error"]))
        else:
            d.callback(answer["ok"])

    def _ended(self, reason: Failure) -> None:
        self._transport = None
        pending, self._pending = self._pending, {}
        for d in pending.values():
            d.errback(WorkerError(f"the harness process ended: {reason.value}"))

    async def stop(self) -> None:
        if self._transport is None or self._proc is None:
            return
        self._transport.closeStdin()
        await self._proc.ended.addTimeout(10, self._reactor, onTimeoutCancel=self._kill)

    def _kill(self, result: object, timeout: float) -> None:
        if self._transport is not None:
            self._transport.signalProcess("KILL")
