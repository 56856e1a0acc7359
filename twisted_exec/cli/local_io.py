"""What ``codex-exec`` reads and writes on this machine: our stdout and stderr, local files.

Local files are opened, read and written on the reactor's thread pool, never on the reactor
thread: a slow disk or a FIFO must not stall the websocket.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool

from twisted_exec.cli.errors import CliError


def _writer(stream: str) -> Any:
    return sys.stderr.buffer if stream == "stderr" else sys.stdout.buffer


def writeOutput(stream: str, data: bytes) -> None:
    out = _writer(stream)
    out.write(data)
    out.flush()


def _inThread(reactor: Any, f: Callable[..., Any], *args: Any) -> Deferred[Any]:
    return deferToThreadPool(reactor, reactor.getThreadPool(), f, *args)


class LocalSink:
    """A local file (or stdout for None) written block by block off the reactor thread."""

    def __init__(self, reactor: Any, path: str | None) -> None:
        self.reactor = reactor
        self.path = path
        self._file: Any = None

    async def write(self, data: bytes) -> None:
        if self.path is None:
            writeOutput("stdout", data)
            return
        try:
            if self._file is None:
                self._file = await _inThread(self.reactor, open, self.path, "wb")
            await _inThread(self.reactor, self._file.write, data)
        except OSError as e:
            raise CliError(f"{self.path}: {e.strerror}", 1) from None

    async def close(self, completed: bool) -> None:
        if completed and self.path is not None and self._file is None:
            await self.write(b"")  # an empty file is still created
        if self._file is not None:
            f, self._file = self._file, None
            await _inThread(self.reactor, f.close)


class LocalSource:
    """A local file (or stdin for None) read block by block off the reactor thread."""

    def __init__(self, reactor: Any, path: str | None) -> None:
        self.reactor = reactor
        self.path = path
        self.size: int | None = None
        self._file: Any = None

    def _fail(self, e: OSError) -> CliError:
        return CliError(f"{self.path or '-'}: {e.strerror}", 1)

    async def open(self) -> None:
        if self.path is None:
            self._file = sys.stdin.buffer
            return
        try:
            self._file = await _inThread(self.reactor, open, self.path, "rb")
            self.size = os.fstat(self._file.fileno()).st_size
        except OSError as e:
            raise self._fail(e) from None

    async def read(self, size: int) -> bytes:
        try:
            data: bytes = await _inThread(self.reactor, self._file.read, size)
        except OSError as e:
            raise self._fail(e) from None
        return data

    async def readAll(self) -> bytes:
        chunks = []
        while chunk := await self.read(1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)

    async def close(self) -> None:
        if self.path is not None and self._file is not None:
            f, self._file = self._file, None
            await _inThread(self.reactor, f.close)
