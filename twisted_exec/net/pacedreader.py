"""Reading a connection in slices, one per reactor turn, so that one peer cannot hold the loop.

Twisted reads up to 64 KiB per turn and a websocket library handles every frame in it before it
returns: 64 KiB of tiny relay frames is some 1,500 frames, a few hundred milliseconds of routing
during which nothing else (a health check, other peers) is served. :class:`PacedReader` hands
the protocol one slice per turn (``cut``: for websockets 16 frames, whatever their size, so
bulk transfers are not slowed; by default ``sliceBytes``) and keeps the transport paused while
a backlog is left, so a flooding peer is also slowed down by TCP itself. The transport is
paused for either of two reasons (a backlog, or the owner's flow control, :meth:`pause`), and
resumed only when neither holds; the backlog is not drained while the owner holds reading
paused.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime

DEFAULT_SLICE_BYTES = 512
#: Websocket frames handed over per reactor turn (each small frame costs its router a few
#: tens of microseconds; a large one costs little more, so bytes alone are the wrong measure).
FRAMES_PER_TURN = 16


def websocketCut(data: bytes, frames: int = FRAMES_PER_TURN) -> int:
    """How many bytes of ``data`` hold its first ``frames`` websocket frames (all of it when
    it holds fewer, or ends inside a header): frame headers are read, payloads skipped."""
    offset, count, size = 0, 0, len(data)
    while count < frames:
        if offset + 2 > size:
            return size
        second = data[offset + 1]
        length, header = second & 0x7F, 2
        if length == 126:
            if offset + 4 > size:
                return size
            length, header = int.from_bytes(data[offset + 2 : offset + 4], "big"), 4
        elif length == 127:
            if offset + 10 > size:
                return size
            length, header = int.from_bytes(data[offset + 2 : offset + 10], "big"), 10
        if second & 0x80:
            header += 4
        offset += header + length
        count += 1
        if offset >= size:
            return size
    return offset


class PacedReader:
    def __init__(
        self,
        clock: IReactorTime,
        transport: Callable[[], Any],
        deliver: Callable[[bytes], None],
        sliceBytes: int = DEFAULT_SLICE_BYTES,
        cut: Callable[[bytes], int] | None = None,
    ) -> None:
        self._clock = clock
        self._transport = transport
        self._deliver = deliver
        self.sliceBytes = sliceBytes
        #: Where this turn's slice ends (default: ``sliceBytes``); for websockets,
        #: :func:`websocketCut` (a number of frames, whatever their size).
        self._cut = cut if cut is not None else (lambda data: self.sliceBytes)
        self._backlog: deque[bytes] = deque()
        self._reasons: set[str] = set()
        self._call: IDelayedCall | None = None
        self.slices = 0  # turns that delivered a slice later than it arrived (tests)

    @property
    def backlog(self) -> int:
        return sum(map(len, self._backlog))

    def dataReceived(self, data: bytes) -> None:
        if not self._backlog and self._cut(data) >= len(data):
            self._deliver(data)
            return
        self._backlog.append(data)
        self._hold("backlog", True)
        self._deliverSlice()

    def pause(self, reason: str = "owner") -> None:
        self._hold(reason, True)

    def resume(self, reason: str = "owner") -> None:
        self._hold(reason, False)
        if self._backlog and self._call is None:
            self._schedule()

    def stop(self) -> None:
        """The connection is gone: forget the backlog and the pending turn."""
        self._backlog.clear()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _deliverSlice(self) -> None:
        self._call = None
        if (self._reasons - {"backlog"}) or not self._backlog:
            return
        head = self._backlog.popleft()
        if len(self._backlog) and len(head) < 65536:
            head += self._backlog.popleft()  # a frame may straddle two reads
        size = max(1, self._cut(head))
        piece, rest = head[:size], head[size:]
        if rest:
            self._backlog.appendleft(rest)
        self._deliver(piece)
        if self._backlog:
            self._schedule()
        else:
            self._hold("backlog", False)

    def _schedule(self) -> None:
        self.slices += 1
        self._call = self._clock.callLater(0, self._deliverSlice)

    def _hold(self, reason: str, paused: bool) -> None:
        before = bool(self._reasons)
        if paused:
            self._reasons.add(reason)
        else:
            self._reasons.discard(reason)
        after = bool(self._reasons)
        if before == after:
            return
        transport = self._transport()
        if transport is None:
            return
        if after:
            transport.pauseProducing()
        else:
            transport.resumeProducing()
