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

With many replies in one turn (pipelined requests) each one that finds the buffer empty is its
own ``send``; a variant that sent only a turn's first write at once (a ``callLater(0)`` per
turn) measured worse, not better (docs/decisions-pending/perflocal.md).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.tcp import Connection


def writeNow(transport: Any, data: bytes) -> None:
    """``transport.write(data)``, sending first what the socket takes right now."""
    if (
        isinstance(transport, Connection)
        and transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnected
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
