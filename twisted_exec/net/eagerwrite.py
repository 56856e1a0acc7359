"""Write a small reply to a TCP socket now, instead of on the reactor's next writable event.

Twisted's ``transport.write`` only buffers: it asks the reactor to watch the socket for
writability (an ``epoll_ctl``), and the next reactor iteration sends the buffer and stops
watching (another ``epoll_ctl``). For one request in flight that is a whole extra iteration,
two system calls and the reactor's per-event bookkeeping per reply, about a fifth of our
server's CPU for a cheap call over the local websocket (bench/results/local-ws-2026-12-04.md).

:func:`writeNow` sends at once when nothing is buffered on a plain TCP connection (so the byte
order cannot change) and hands whatever the kernel did not take (or everything, on an error,
which Twisted's own write then discovers and reports as the connection's loss) to
``transport.write``. Backpressure is unchanged: only bytes the socket accepted bypass the
buffer, so the buffer (and the producer registered on it) sees everything that waits.

Many replies in one reactor turn (pipelined requests) should still leave in one system call:
:class:`TurnWriter` sends the first write of a turn at once and buffers the rest of that turn,
which Twisted then sends together on the next writable event.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.internet.tcp import Connection


def writeNow(transport: Any, data: bytes) -> None:
    """``transport.write(data)``, sending first what the socket takes right now."""
    if (
        isinstance(transport, Connection)
        and transport.connected
        and not transport.disconnecting
        and not getattr(transport, "TLS", False)
        and not transport._tempDataLen
        and transport.offset == len(transport.dataBuffer)
    ):
        sent = transport.writeSomeData(data)
        if isinstance(sent, int) and sent > 0:
            if sent == len(data):
                return
            data = data[sent:]
    transport.write(data)


class TurnWriter:
    """The first write of each reactor turn :func:`writeNow`, the others buffered together."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._wroteThisTurn = False

    def write(self, transport: Any, data: bytes) -> None:
        if self._wroteThisTurn:
            transport.write(data)
            return
        self._wroteThisTurn = True
        self._clock.callLater(0, self._nextTurn)
        writeNow(transport, data)

    def _nextTurn(self) -> None:
        self._wroteThisTurn = False
