"""The per-process event log behind ``process/output|exited|closed`` and ``process/read``.

Sans-IO: no reactor, no sockets. One seq counter per process, shared by output chunks and the
``exited``/``closed`` events (as the reference numbers them). Only output chunks are retained, and
only the newest ``retainBytes`` of them (the reference keeps the last 1 MiB); the two lifecycle
events are remembered as flags plus their seq.

An observer (``onEvent``) sees every event right after its seq is assigned, before any waiter is
woken: the process table sends the notification there, so a long-polling ``process/read`` that is
released by an event is answered after that event's notification went out.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Chunk:
    seq: int
    stream: str
    data: bytes

    def toJson(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "stream": self.stream,
            "chunk": base64.b64encode(self.data).decode(),
        }


@dataclass(frozen=True, slots=True)
class Exited:
    seq: int
    exitCode: int


@dataclass(frozen=True, slots=True)
class Closed:
    seq: int


Event = Chunk | Exited | Closed


@dataclass(frozen=True, slots=True)
class ReadResult:
    chunks: list[Chunk]
    nextSeq: int
    exited: bool
    exitCode: int | None
    closed: bool

    def toJson(self) -> dict[str, Any]:
        """The ``process/read`` result, field for field as the reference sends it."""
        return {
            "chunks": [chunk.toJson() for chunk in self.chunks],
            "nextSeq": self.nextSeq,
            "exited": self.exited,
            "exitCode": self.exitCode,
            "closed": self.closed,
            "failure": None,
        }


class OutputBuffer:
    """Seq assignment, byte-bounded retention, reads and waiters for one process."""

    def __init__(
        self, retainBytes: int = 1 << 20, onEvent: Callable[[Event], None] | None = None
    ) -> None:
        self._retainBytes = retainBytes
        self._onEvent = onEvent
        self._chunks: deque[Chunk] | list[Chunk] = deque()
        self._retained = 0
        self.lastSeq = 0
        self.exitCode: int | None = None
        self.exited = False
        self.closed = False
        self._waiters: list[tuple[int, Callable[[], None]]] = []
        self._holdWakes = False

    # -- producing -------------------------------------------------------------------------------

    def appendOutput(self, stream: str, data: bytes) -> Chunk:
        chunks = self._chunks
        if not isinstance(chunks, deque):
            raise RuntimeError("output after the buffer was closed")
        chunk = Chunk(self._nextSeq(), stream, data)
        chunks.append(chunk)
        self._retained += len(data)
        while self._retained > self._retainBytes and len(chunks) > 1:
            self._retained -= len(chunks.popleft().data)
        if self._retained > self._retainBytes:
            # A single chunk larger than the whole budget is dropped too.
            self._retained -= len(chunks.popleft().data)
        self._emit(chunk)
        return chunk

    def markExited(self, exitCode: int) -> Exited:
        if self.exited:
            raise RuntimeError("exited twice")
        self.exited = True
        self.exitCode = exitCode
        event = Exited(self._nextSeq(), exitCode)
        self._emit(event)
        return event

    def markClosed(self) -> Closed:
        if self.closed or not self.exited:
            raise RuntimeError("closed twice or before exited")
        self.closed = True
        event = Closed(self._nextSeq())
        self._emit(event)
        # Nothing is appended any more: a list costs a fraction of a deque's fixed ~600 bytes,
        # which matters for the closed processes a session keeps (processes.RETAIN_CLOSED).
        self._chunks = list(self._chunks)
        return event

    def markFinished(self, exitCode: int) -> None:
        """``exited`` (unless sent already) and ``closed`` back to back, waking waiters once,
        after both: a long-poll ``process/read`` woken by the exit then reports ``closed: true``
        and the final ``nextSeq``, as the reference's does (probed)."""
        self._holdWakes = True
        try:
            if not self.exited:
                self.markExited(exitCode)
            self.markClosed()
        finally:
            self._holdWakes = False
        self._wake(self.lastSeq)

    def _nextSeq(self) -> int:
        self.lastSeq += 1
        return self.lastSeq

    def _emit(self, event: Event) -> None:
        if self._onEvent is not None:
            self._onEvent(event)
        if not self._holdWakes:
            self._wake(event.seq)

    def _wake(self, seq: int) -> None:
        if self._waiters:
            ready = [w for w in self._waiters if seq > w[0]]
            if ready:
                self._waiters = [w for w in self._waiters if seq <= w[0]]
                for _, wake in ready:
                    wake()

    # -- consuming -------------------------------------------------------------------------------

    def read(self, afterSeq: int = 0, maxBytes: int | None = None) -> ReadResult:
        """Retained chunks with seq > ``afterSeq``, at most ``maxBytes`` of them but at least one.

        ``nextSeq`` is the last returned chunk's seq + 1, or ``lastSeq + 1`` without chunks (the
        reference's rule: it then also skips the exited/closed events).
        """
        chunks: list[Chunk] = []
        if self._chunks and self._chunks[-1].seq > afterSeq:
            start = self._firstAfter(afterSeq)
            total = 0
            for index in range(start, len(self._chunks)):
                chunk = self._chunks[index]
                size = len(chunk.data)
                if chunks and maxBytes is not None and total + size > maxBytes:
                    break
                chunks.append(chunk)
                total += size
        nextSeq = chunks[-1].seq + 1 if chunks else self.lastSeq + 1
        return ReadResult(chunks, nextSeq, self.exited, self.exitCode, self.closed)

    def _firstAfter(self, afterSeq: int) -> int:
        """Index of the first retained chunk with seq > afterSeq (binary search: seqs ascend)."""
        lo, hi = 0, len(self._chunks)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._chunks[mid].seq > afterSeq:
                hi = mid
            else:
                lo = mid + 1
        return lo

    @property
    def lastChunkSeq(self) -> int:
        """The seq of the newest retained chunk (0 without any)."""
        return self._chunks[-1].seq if self._chunks else 0

    def hasEventsAfter(self, afterSeq: int) -> bool:
        return self.lastSeq > afterSeq

    def addWaiter(self, afterSeq: int, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake()`` once, at the first event with seq > ``afterSeq``.

        Returns a function that removes the waiter (for a timeout). The caller checks
        :meth:`hasEventsAfter` first; a waiter added when such events exist waits for the next one.
        """
        entry = (afterSeq, wake)
        self._waiters.append(entry)

        def cancel() -> None:
            if entry in self._waiters:
                self._waiters.remove(entry)

        return cancel

    @property
    def retainedBytes(self) -> int:
        return self._retained

    @property
    def waiterCount(self) -> int:
        return len(self._waiters)
