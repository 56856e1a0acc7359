"""``TCP_NODELAY`` on every TCP socket we open or accept.

Why: our messages are small and latency-bound (one JSON-RPC reply, one relay frame). With Nagle's
algorithm on, a second small write waits for the ACK of the first, and the peer delays that ACK
by up to 40 ms: a sequential ``process/start`` → ``process/closed`` through the relay took about
43 ms instead of 1.5 ms.

autobahn means to set it in ``connectionMade``, but reads ``self.tcpNoDelay`` before it has
copied the factory's options onto the protocol (that happens in ``_connectionMade``, the next
line): the ``AttributeError`` is swallowed by a bare ``except``, so no autobahn connection,
client or server, ever had it. Every other protocol option is copied in ``_connectionMade`` and
does reach the protocol (``tests/test_nodelay.py`` checks the live values); this one was the only
casualty of that ``except``.

The sockets our HTTP listeners accept (the local websocket listener, the rendezvous) already
have it: Twisted's ``HTTPChannel.connectionMade`` sets it, and a websocket upgraded from that
channel keeps the socket. The ones we dial with autobahn (the relay websocket, the harness
websocket, the test and benchmark peers) and autobahn servers listening without a ``Site`` (test
doubles) did not: :class:`NoDelayMixin` sets it as soon as the connection is made.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

log = Logger()


def setNoDelay(transport: Any) -> bool:
    """Turn Nagle's algorithm off on the TCP socket under ``transport`` (also through TLS).

    Returns False when there is no TCP socket to set it on (a UNIX socket, a pipe, an in-memory
    test transport): that is not an error.
    """
    setter = getattr(transport, "setTcpNoDelay", None)
    if setter is None:
        return False
    try:
        setter(True)
    except OSError as err:  # EOPNOTSUPP/EINVAL: not a TCP socket after all
        log.debug("TCP_NODELAY not set: {error}", error=err)
        return False
    return True


class NoDelayMixin:
    """Put first in a protocol's bases: ``TCP_NODELAY`` as soon as the connection is made."""

    transport: Any

    def connectionMade(self) -> None:
        super().connectionMade()  # type: ignore[misc]
        setNoDelay(self.transport)
