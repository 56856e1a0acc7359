"""``--exit-on-stdin-close`` (as Codex 0.171): exit when the parent-owned stdin pipe closes.

A parent that spawns a websocket executor for itself hands it a pipe as stdin and never writes to
it; when the parent dies, the pipe closes and the executor should not outlive it. Whatever
arrives on stdin is discarded (never buffered). In ``--listen stdio`` mode stdin is the protocol
and its end already ends the executor, so the watch is not installed there.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.application.service import Service
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()

ENV = "CODEX_EXEC_SERVER_EXIT_ON_STDIN_CLOSE"


def wantedByEnvironment(environ: Any = os.environ) -> bool:
    """The option's environment form: set to anything but empty, ``0`` or ``false``."""
    value = str(environ.get(ENV, "")).strip().lower()
    return value not in ("", "0", "false", "no")


class _Watch(Protocol):
    def __init__(self, onClosed: Any) -> None:
        self._onClosed = onClosed

    def dataReceived(self, data: bytes) -> None:
        """Discarded: the pipe only tells us the parent is alive."""

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._onClosed()


class StdinWatch(Service):
    """Stops the reactor (a clean shutdown of every service) once stdin reaches EOF."""

    def __init__(self, reactor: Any, standardIO: Any = None) -> None:
        self.reactor = reactor
        self._standardIO = standardIO
        self._stdio: Any = None

    def startService(self) -> None:
        super().startService()
        if self._standardIO is None:
            from twisted.internet.stdio import StandardIO

            self._standardIO = StandardIO
        self._stdio = self._standardIO(_Watch(self._closed), reactor=self.reactor)

    def _closed(self) -> None:
        if not self.running:
            return
        log.info("stdin closed (--exit-on-stdin-close): exiting")
        self.reactor.stop()
