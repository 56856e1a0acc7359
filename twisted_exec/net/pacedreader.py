"""Reading a connection in slices, one per reactor turn, so that one peer cannot hold the loop.

Twisted reads up to 64 KiB per turn and a websocket library handles every frame in it before it
returns: 64 KiB of tiny relay frames is some 1,500 frames, a few hundred milliseconds of routing
during which nothing else (a health check, other peers) is served. :class:`PacedReader` hands
the protocol at most ``sliceBytes`` per turn and keeps the transport paused while a backlog is
left, so a flooding peer is also slowed down by TCP itself. The transport is paused for either
of two reasons (a backlog, or the owner's flow control, :meth:`pause`), and resumed only when
neither holds; the backlog is not drained while the owner holds reading paused.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime

DEFAULT_SLICE_BYTES = 512


class PacedReader:
    def __init__(
        self,
        clock: IReactorTime,
        transport: Callable[[], Any],
        deliver: Callable[[bytes], None],
        sliceBytes: int = DEFAULT_SLICE_BYTES,
    ) -> None:
        self._clock = clock
        self._transport = transport
        self._deliver = deliver
        self.sliceBytes = sliceBytes
        self._backlog: deque[bytes] = deque()
        self._reasons: set[str] = set()
        self._call: IDelayedCall | None = None
        self.slices = 0  # turns that delivered a slice later than it arrived (tests)

    @property
    def backlog(self) -> int:
        return sum(map(len, self._backlog))

    def dataReceived(self, data: bytes) -> None:
        if not self._backlog and len(data) <= self.sliceBytes:
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
        piece, rest = head[: self.sliceBytes], head[self.sliceBytes :]
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
