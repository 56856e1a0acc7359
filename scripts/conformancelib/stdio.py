"""The stdio transport (``--stdio``): each connection is one executor child on stdin/stdout."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from twisted.internet import defer, error
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.python.failure import Failure

from scripts.conformancelib.transport import Connection, Event, LineProcess, fireWhenDone


class StdioTarget:
    """A server in ``--listen stdio`` mode: every :meth:`connect` spawns a fresh child (a stdio
    executor serves exactly one session, and stdin EOF ends it), so only sessions with a single
    connection can run here."""

    def __init__(self, reactor: Any, name: str, argv: Sequence[str], env: dict[str, str], cwd: str):
        self.reactor = reactor
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd
        self.url = "stdio"
        self._children: list[StdioConnection] = []

    def start(self) -> Deferred[None]:
        return defer.succeed(None)

    def connect(self) -> Deferred[Connection]:
        conn = StdioConnection(self.reactor)
        self.reactor.spawnProcess(conn, self.argv[0], self.argv, env=self.env, path=self.cwd)
        self._children.append(conn)
        return defer.succeed(conn)

    async def _stop(self) -> None:
        for conn in self._children:
            await conn.close()

    def stop(self) -> Deferred[None]:
        return defer.ensureDeferred(self._stop())


class StdioConnection(LineProcess):
    """A :class:`Connection` over a child's stdin and stdout: one JSON message per line."""

    def __init__(self, reactor: Any) -> None:
        super().__init__()
        self.reactor = reactor
        self.queue: DeferredQueue[Event] = DeferredQueue()

    def lineReceived(self, text: str) -> None:
        self.queue.put(Event("text", text, self.reactor.seconds()))

    def processEnded(self, reason: Failure) -> None:
        self.queue.put(Event("closed", "stdout closed", self.reactor.seconds()))
        super().processEnded(reason)

    def send(self, text: str) -> None:
        if self.transport is not None and not self.ended.called:
            self.transport.write(text.encode("utf-8", "surrogateescape") + b"\n")

    def receive(self) -> Deferred[Event]:
        return self.queue.get()

    async def _close(self) -> None:
        if self.ended.called or self.transport is None:
            return
        self.transport.closeStdin()
        for sig in ("TERM", "KILL"):
            waiter: Deferred[None] = Deferred()
            fireWhenDone(self.ended, waiter)
            waiter.addTimeout(3.0, self.reactor)
            try:
                await waiter
                return
            except defer.TimeoutError:
                with contextlib.suppress(error.ProcessExitedAlready):
                    self.transport.signalProcess(sig)

    def close(self) -> Deferred[None]:
        return defer.ensureDeferred(self._close())
