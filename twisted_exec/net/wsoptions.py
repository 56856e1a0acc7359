"""The autobahn factory options our websockets share: a message cap and no handshake timers.

autobahn's opening and closing handshake timers run on txaio's global loop, not on the reactor
we were given: in tests they linger past the test, in production nobody can move their clock.
Each websocket of ours bounds its own handshakes instead (a connect timeout, a close deadline
on the injected clock), so the factories switch autobahn's off.
"""

from __future__ import annotations

from typing import Any


def capWithoutHandshakeTimers(factory: Any, maxMessageBytes: int) -> None:
    """Messages and frames of at most ``maxMessageBytes``; no autobahn handshake timers."""
    factory.setProtocolOptions(
        maxMessagePayloadSize=maxMessageBytes,
        maxFramePayloadSize=maxMessageBytes,
        openHandshakeTimeout=0,
        closeHandshakeTimeout=0,
    )
