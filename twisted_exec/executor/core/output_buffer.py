"""The per-process event log behind ``process/output|exited|closed`` and ``process/read``.

Sans-IO: no reactor, no sockets. One seq counter per process, shared by output chunks and the
``exited``/``closed`` events (as the reference numbers them). Only output chunks are retained, and
only the newest ``retainBytes`` of them (the reference keeps the last 1 MiB); the two lifecycle
events are remembered as flags plus their seq.

An observer (``onEvent``) sees every event right after its seq is assigned, before any waiter is
woken: the process table sends the notification there, so a long-polling ``process/read`` that is
released by an event is answered after that event's notification went out.

Cost and memory (issue 15): chunks live in a list with a moving head (dropped chunks are
released at once and the list compacted when half of it is dead), so a read is a binary search
plus the chunks it returns, O(log n + k), whatever the number retained (round 1 indexed a
``deque`` in its loop: 0.9 s for one read over 300k PTY chunks). Retention is bounded twice:
payload bytes by ``retainBytes`` (the reference's rule, so reads page exactly as its do), and
memory by ``memoryBytes`` counting :data:`CHUNK_OVERHEAD` per chunk, since a chunk of a few bytes
costs about a hundred in Python objects (0.9 MB of payload held 30 MB).
"""

from __future__ import annotations

import base64
from bisect import bisect_right
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

#: Bytes of Python objects per retained chunk besides its payload: the ``Chunk`` (56), the
#: ``bytes`` header (33), its seq ``int`` (28) and the list slot (8), rounded up (measured with
#: tracemalloc: bench/output_buffer.py).
CHUNK_OVERHEAD = 128

#: Placeholder for a dropped chunk below the head (releases its payload at once).
_DROPPED = Chunk(0, "", b"")


def _seqOf(chunk: Chunk) -> int:
    return chunk.seq


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
        self,
        retainBytes: int = 1 << 20,
        onEvent: Callable[[Event], None] | None = None,
        *,
        memoryBytes: int | None = None,
    ) -> None:
        self._retainBytes = retainBytes
        #: Payload plus :data:`CHUNK_OVERHEAD` per chunk; by default twice the payload budget
        #: (at least room for 1,024 chunks), so chunks of 8 KiB (pipes) are retained exactly
        #: as by the reference and only tiny chunks are retained fewer.
        if memoryBytes is None:
            memoryBytes = max(2 * retainBytes, retainBytes + 1024 * CHUNK_OVERHEAD)
        self._memoryBytes = memoryBytes
        self._onEvent = onEvent
        self._chunks: list[Chunk] = []
        self._head = 0  # index of the oldest retained chunk in _chunks
        self._retained = 0
        self._accounted = 0
        self.lastSeq = 0
        self.exitCode: int | None = None
        self.exited = False
        self.closed = False
        self._waiters: list[tuple[int, Callable[[], None]]] = []
        self._holdWakes = False

    # -- producing -------------------------------------------------------------------------------

    def appendOutput(self, stream: str, data: bytes) -> Chunk:
        if self.closed:
            raise RuntimeError("output after the buffer was closed")
        chunk = Chunk(self._nextSeq(), stream, data)
        self._chunks.append(chunk)
        self._retained += len(data)
        self._accounted += len(data) + CHUNK_OVERHEAD
        while (self._retained > self._retainBytes or self._accounted > self._memoryBytes) and len(
            self._chunks
        ) - self._head > 1:
            self._dropOldest()
        if self._retained > self._retainBytes:
            # A single chunk larger than the whole budget is dropped too.
            self._dropOldest()
        self._emit(chunk)
        return chunk

    def _dropOldest(self) -> None:
        chunks = self._chunks
        old = chunks[self._head]
        chunks[self._head] = _DROPPED
        self._head += 1
        self._retained -= len(old.data)
        self._accounted -= len(old.data) + CHUNK_OVERHEAD
        if self._head >= 64 and self._head * 2 >= len(chunks):
            self._compact()

    def _compact(self) -> None:
        del self._chunks[: self._head]
        self._head = 0

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
        # Nothing is appended any more: drop the dead head and the list's spare capacity, which
        # matters for the closed processes a session keeps (processes.RETAIN_CLOSED).
        self._chunks = self._chunks[self._head :]
        self._head = 0
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
        reference's rule: it then also skips the exited/closed events). O(log n + k) for k
        chunks returned.
        """
        chunks = self._chunks
        selected: list[Chunk] = []
        if len(chunks) > self._head and chunks[-1].seq > afterSeq:
            start = bisect_right(chunks, afterSeq, lo=self._head, key=_seqOf)
            if maxBytes is None:
                selected = chunks[start:]
            else:
                total = 0
                end = start
                for index in range(start, len(chunks)):
                    size = len(chunks[index].data)
                    if index > start and total + size > maxBytes:
                        break
                    total += size
                    end = index + 1
                selected = chunks[start:end]
        nextSeq = selected[-1].seq + 1 if selected else self.lastSeq + 1
        return ReadResult(selected, nextSeq, self.exited, self.exitCode, self.closed)

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
        """Payload bytes retained (what ``retainBytes`` bounds)."""
        return self._retained

    @property
    def accountedBytes(self) -> int:
        """Payload plus :data:`CHUNK_OVERHEAD` per retained chunk (what ``memoryBytes`` bounds)."""
        return self._accounted

    @property
    def retainedChunks(self) -> int:
        return len(self._chunks) - self._head

    @property
    def waiterCount(self) -> int:
        return len(self._waiters)
