"""Reading a connection in slices, one per reactor turn, so that one peer cannot hold the loop.

Twisted reads up to 64 KiB per turn and a websocket library handles every frame in it before it
returns: 64 KiB of tiny relay frames is some 1,500 frames, a few hundred milliseconds of routing
during which nothing else (a health check, other peers) is served. :class:`PacedReader` hands
the protocol one slice per turn and keeps the transport paused while a backlog is left, so a
flooding peer is also slowed down by TCP itself. Every paced connection with a backlog gets one
slice per turn (each its own ``callLater(0)``, run in order): peers are served round-robin.

For websockets the slice is cut by :class:`WebsocketCutter`: at most :data:`FRAMES_PER_TURN`
frames begun and :data:`BYTES_PER_TURN` bytes, so a flood of tiny frames is paced by their
count while a large message passes at socket speed (a 64 KiB read of it is a few frame
*pieces*, not thousands of frames). The cutter follows the frame boundaries across reads: a
read that starts inside a frame's payload is not parsed as headers (it once was, and a 1 MiB
message of base64 text, ``AAAA...``, looked like 16-frame runs of 67 bytes: cut into a thousand
slices, a turn each, ``codex-exec cp`` at a few MB/s).

The transport is paused for either of two reasons (a backlog, or the owner's flow control,
:meth:`PacedReader.pause`), and resumed only when neither holds; the backlog is not drained
while the owner holds reading paused.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime

DEFAULT_SLICE_BYTES = 512
#: Websocket frames begun per reactor turn (each small frame costs its router a few tens of
#: microseconds; a large one costs little more, so bytes alone are the wrong measure).
FRAMES_PER_TURN = 16
#: Bytes handed over per reactor turn, whatever the frames (a bound on one turn's copying and
#: parsing; Twisted reads 64 KiB at a time, so bulk transfers are never held back by it).
BYTES_PER_TURN = 256 * 1024
_MAX_HEADER = 14  # 2 + 8 (64-bit length) + 4 (mask key)


def _headerSize(head: bytes) -> int:
    """The size of the frame header that ``head`` begins (2 when that is not known yet)."""
    if len(head) < 2:
        return 2
    second = head[1]
    length = second & 0x7F
    size = 4 if length == 126 else 10 if length == 127 else 2
    return size + 4 if second & 0x80 else size


def _payloadLength(header: bytes) -> int:
    length = header[1] & 0x7F
    if length == 126:
        return int.from_bytes(header[2:4], "big")
    if length == 127:
        return int.from_bytes(header[2:10], "big")
    return length


class WebsocketCutter:
    """Where to end a turn's slice of a websocket byte stream, fed in order (sans IO).

    :meth:`cut` is given the stream's next undelivered bytes and returns how many of them to
    hand over now; the cutter then counts those bytes as delivered (it must be told of every
    byte exactly once, in order). Frame headers are read, payloads skipped: a header split
    across reads is kept until it is whole.
    """

    def __init__(self, frames: int = FRAMES_PER_TURN, budget: int = BYTES_PER_TURN) -> None:
        self.frames = frames
        self.budget = budget
        self._skip = 0  # payload bytes of the current frame not yet seen
        self._partial = b""  # the start of a header that a read cut short

    def cut(self, data: bytes) -> int:
        size, offset, count = len(data), 0, 0
        limit = min(size, max(1, self.budget))
        while offset < limit:
            if self._skip:
                step = min(self._skip, limit - offset)
                offset += step
                self._skip -= step
                continue
            if count >= self.frames:
                break
            known = len(self._partial)
            head = self._partial + data[offset : offset + _MAX_HEADER - known]
            need = _headerSize(head)
            if len(head) < need:
                self._partial = head  # the rest of the read is a header's first bytes
                return size
            self._partial = b""
            self._skip = _payloadLength(head[:need])
            offset += need - known
            count += 1
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
        #: Where this turn's slice ends (default: ``sliceBytes``); for websockets, a
        #: :class:`WebsocketCutter`'s ``cut``, told of every byte delivered, once, in order.
        self._cut = cut if cut is not None else (lambda data: self.sliceBytes)
        self._backlog: deque[bytes] = deque()
        self._reasons: set[str] = set()
        self._call: IDelayedCall | None = None
        self.slices = 0  # turns that delivered a slice later than it arrived (tests)

    @property
    def backlog(self) -> int:
        return sum(map(len, self._backlog))

    def dataReceived(self, data: bytes) -> None:
        if self._backlog:
            self._backlog.append(data)  # behind the backlog: a scheduled turn (or resume) reads it
            return
        size = self._cut(data)
        if size >= len(data):
            self._deliver(data)
            return
        self._backlog.append(data[size:])
        self._hold("backlog", True)
        self._schedule()
        self._deliver(data[:size])

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
            head += self._backlog.popleft()  # fewer, larger slices for the cutter
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
