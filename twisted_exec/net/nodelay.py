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

:func:`quickAck` is for the other end of a peer that leaves Nagle on: the 0.131 and 0.171
executors never set ``TCP_NODELAY`` on their relay websocket, so a small frame they write while
the previous one is unacknowledged waits for our ACK, which Linux delays by up to 40 ms unless
data goes back. The rendezvous used to send a delivery ack per frame and so hid this; since acks
are batched (decisions 169 and 175) a sequential ``process/start`` -> ``process/closed`` of the
reference through our rendezvous took 44 ms instead of 2.3 ms. The rendezvous therefore asks for
an immediate ACK (``TCP_QUICKACK``, which the kernel forgets after a while, hence once per read).
"""

from __future__ import annotations

import socket
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


_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def _tcpSocket(transport: Any) -> Any:
    """The socket under ``transport``: a TCP transport's own, or the one under a TLS wrapper."""
    for _ in range(2):
        sock = getattr(transport, "socket", None)
        if sock is not None:
            return sock
        transport = getattr(transport, "transport", None)
    return None


def quickAck(transport: Any) -> bool:
    """ACK what this socket has received now rather than up to 40 ms later (see the module
    docstring). False, and nothing done, where there is no TCP socket or no ``TCP_QUICKACK``."""
    if _QUICKACK is None:
        return False
    sock = _tcpSocket(transport)
    if sock is None:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
    except (OSError, AttributeError, TypeError):  # not a TCP socket after all
        return False
    return True
