"""Failing a websocket with a reason the peer can read, without waiting on the peer.

When a peer breaks the protocol (a message over ``--max-message-bytes``: 1009, invalid UTF-8
in a text message: 1007, ...) autobahn either drops the TCP connection (``failByDrop``, its
default: the peer only sees 1006 and never learns why) or starts a close handshake that only its
own txaio timer would bound (we set ``closeHandshakeTimeout`` to 0, because those timers linger
in the reactor). :class:`PromptFailMixin` does neither: it writes the close frame with its code
and reason, then closes the TCP connection once that frame is out.
"""

from __future__ import annotations

from typing import Any

from autobahn.util import encode_truncate
from autobahn.websocket.protocol import WebSocketProtocol


class PromptFailMixin:
    """Mix into an autobahn protocol (before it in the bases)."""

    state: Any
    failedByMe: bool

    def _fail_connection(self, code: int = 1001, reason: str = "going away") -> None:
        if self.state != WebSocketProtocol.STATE_OPEN:
            super()._fail_connection(code, reason)  # type: ignore[misc]
            return
        self.failedByMe = True
        self.sendCloseFrame(code=code, reasonUtf8=encode_truncate(reason, 123), isReply=False)  # type: ignore[attr-defined]
        self.dropConnection(abort=False)  # type: ignore[attr-defined]
