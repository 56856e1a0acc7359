"""ProcessTable test set-up shared by the process tests: a notification collector, ExecParams
with the test environment, and a test case that kills and awaits every process at cleanup (so no
reader or timer outlives a test).
"""

from __future__ import annotations

import base64
import os
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from twisted_exec.compat.params import (
    ExecParams,
)
from twisted_exec.executor.resources.processes import ProcessTable
from twisted_exec.wire.errors import RpcError

TIMEOUT = 10
ENVIRON = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Collector:
    """The ``notify`` callable: records every notification and lets a test wait for one."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._waiting: list[tuple[Any, defer.Deferred[None]]] = []

    def __call__(self, method: str, params: dict[str, Any]) -> None:
        self.messages.append((method, params))
        for entry in list(self._waiting):
            predicate, d = entry
            if predicate():
                self._waiting.remove(entry)
                d.callback(None)

    def waitFor(self, predicate: Any) -> defer.Deferred[None]:
        d: defer.Deferred[None] = defer.Deferred()
        if predicate():
            d.callback(None)
        else:
            self._waiting.append((predicate, d))
        d.addTimeout(TIMEOUT, reactor)
        return d

    def of(self, processId: str) -> list[tuple[str, dict[str, Any]]]:
        return [m for m in self.messages if m[1]["processId"] == processId]

    def closed(self, processId: str) -> defer.Deferred[None]:
        return self.waitFor(lambda: ("process/closed", processId) in self._methods())

    def exited(self, processId: str) -> defer.Deferred[None]:
        return self.waitFor(lambda: ("process/exited", processId) in self._methods())

    def _methods(self) -> set[tuple[str, str]]:
        return {(m, p["processId"]) for m, p in self.messages}

    def output(self, processId: str) -> bytes:
        return b"".join(
            base64.b64decode(p["chunk"]) for m, p in self.of(processId) if m == "process/output"
        )

    def outputContains(self, processId: str, data: bytes) -> defer.Deferred[None]:
        return self.waitFor(lambda: data in self.output(processId))


def execParams(processId: str, argv: list[str], **kw: Any) -> ExecParams:
    kw.setdefault("cwd", "/")
    kw.setdefault("env", {"PATH": ENVIRON["PATH"]})
    kw.setdefault("tty", False)
    return ExecParams(processId=processId, argv=argv, **kw)


async def until(predicate: Any, seconds: float = TIMEOUT) -> None:
    """Poll ``predicate`` on the reactor clock (for facts no callback reports, like /proc)."""
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await task.deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("condition not reached in time")


class ProcessTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.notes = Collector()
        self.table = ProcessTable(reactor, self.notes, environ=ENVIRON)
        self.tables = [self.table]
        self.addCleanup(self.reapAll)

    def newTable(self, **kw: Any) -> ProcessTable:
        table = ProcessTable(reactor, self.notes, **kw)
        self.tables.append(table)
        return table

    async def reapAll(self) -> None:
        """Kill every process and wait until each is closed: no reader or timer outlives a test."""
        waits = []
        for table in self.tables:
            table.killAll()
            waits += [self.notes.closed(pid) for pid, e in table._entries.items()]
        await defer.gatherResults(waits)

    async def run_(self, processId: str, argv: list[str], **kw: Any) -> None:
        await self.table.start(execParams(processId, argv, **kw))
        await self.notes.closed(processId)

    async def assertRpcError(self, code: int, message: str, coro: Any) -> None:
        try:
            await coro
        except RpcError as err:
            self.assertEqual((err.code, err.message), (code, message))
        else:
            self.fail("no RpcError")
