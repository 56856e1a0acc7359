"""The one module that touches autobahn's internals (private attributes and methods).

Everything here would break first on an autobahn upgrade, so it is in one place, with a test
for each piece (tests/test_local_ws.py, tests/test_relay_wsframe.py); the pin in pyproject.toml
guards the rest.

Failing a websocket with a reason the peer can read, without waiting on the peer: when a peer
breaks the protocol (a message over ``--max-message-bytes``: 1009, invalid UTF-8 in a text
message: 1007, ...) autobahn either drops the TCP connection (``failByDrop``, its
default: the peer only sees 1006 and never learns why) or starts a close handshake that only its
own txaio timer would bound (we set ``closeHandshakeTimeout`` to 0, because those timers linger
in the reactor). :class:`PromptFailMixin` does neither: it writes the close frame with its code
and reason and closes the TCP connection once that frame is out, aborting it after
``FAIL_ABORT_SECONDS`` if a peer that stopped reading never lets the frame out.

Whole binary frames handed to ``onMessage`` without autobahn's general parser
(:func:`deliverWholeFrames`): autobahn parses every frame through a state machine of Python
calls (``processData`` twice, ``onFrameBegin``, ``onFrameData``, ``onFrameEnd``,
``onMessageEnd``, ...), some 15 µs per small frame, a large share of a relay call (two frames
per call at the executor, four at the rendezvous). Only the frames that need no judgement (see
``wire/wsframe.nextServerMessage``) are taken off the front of a read, and only while autobahn
is between frames with nothing buffered; the first frame of any other kind (a ping, a close,
text, a fragment, one over the size limit or not whole yet) and everything after it in that
read are left to autobahn, so whatever the wire, each byte is parsed once and in order
(tests/test_fastframes.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import connectionDone

from twisted_exec.net.autobahn_nvx import installLeanAccelerators

# before the first import of autobahn's websocket protocol, in the executor's order of imports
installLeanAccelerators()

from autobahn.util import encode_truncate  # noqa: E402
from autobahn.websocket.protocol import WebSocketProtocol  # noqa: E402

FAIL_ABORT_SECONDS = 5.0


class PromptFailMixin:
    """Mix into an autobahn protocol (before it in the bases) whose factory has a ``clock``
    or ``reactor`` attribute."""

    state: Any
    failedByMe: bool
    factory: Any
    transport: Any
    _failAbortCall: IDelayedCall | None = None

    def _fail_connection(self, code: int = 1001, reason: str = "going away") -> None:
        if self.state != WebSocketProtocol.STATE_OPEN:
            super()._fail_connection(code, reason)  # type: ignore[misc]
            return
        self.failedByMe = True
        self.sendCloseFrame(code=code, reasonUtf8=encode_truncate(reason, 123), isReply=False)  # type: ignore[attr-defined]
        self.dropConnection(abort=False)  # type: ignore[attr-defined]
        clock = getattr(self.factory, "clock", None) or getattr(self.factory, "reactor", None)
        if clock is not None and self._failAbortCall is None:
            self._failAbortCall = clock.callLater(FAIL_ABORT_SECONDS, self._abortAfterFail)

    def _abortAfterFail(self) -> None:
        self._failAbortCall = None
        if self.transport is not None and not getattr(self.transport, "disconnected", False):
            self.transport.abortConnection()

    def connectionLost(self, reason: Any = connectionDone) -> None:
        if self._failAbortCall is not None and self._failAbortCall.active():
            self._failAbortCall.cancel()
        self._failAbortCall = None
        super().connectionLost(reason)  # type: ignore[misc]


def sendCloseCode(protocol: Any, code: int, reason: str) -> None:
    """Start a close handshake with any valid close code. autobahn's public ``sendClose``
    takes only 1000 and 3000-4999 (what an application may send) and raises on the protocol
    codes a server sends about its peer (1008 policy violation, 1009, ...)."""
    if protocol.state != WebSocketProtocol.STATE_OPEN:
        return
    protocol.sendCloseFrame(code=code, reasonUtf8=encode_truncate(reason, 123), isReply=False)


def canWriteFrameDirectly(protocol: Any, size: int) -> bool:
    """May ``protocol`` write a ``size``-byte binary message as one pre-built frame?

    Only while no per-message compression was negotiated, autobahn has nothing queued (its
    ``send_queue``) and the message is within ``maxMessagePayloadSize`` (0: no limit): then the
    bytes on the wire are exactly what ``sendMessage`` would write (see ``wire/wsframe.py``).
    """
    limit: int = getattr(protocol, "maxMessagePayloadSize", 0)
    return (
        protocol._perMessageCompress is None
        and not protocol.send_queue
        and (limit == 0 or size <= limit)
    )


def betweenWholeFrames(protocol: Any) -> bool:
    """Is an open ``protocol``'s parser between frames, with nothing buffered?

    Then bytes that start with a whole, uncompressed, unfragmented frame may be read past
    autobahn (``executor/transports/local_ws``), and whatever follows handed to its own
    ``dataReceived`` without changing their order or its state.
    """
    return (
        protocol.state == WebSocketProtocol.STATE_OPEN
        and protocol.current_frame is None
        and not protocol.inside_message
        and not protocol.data
        and protocol._perMessageCompress is None
    )


FrameParse = Callable[[bytes, int, int], "tuple[bytes, int] | None"]


def deliverWholeFrames(protocol: Any, data: bytes, parse: FrameParse) -> int:
    """Call ``protocol.onMessage(payload, True)`` for each whole frame at the start of
    ``data`` that ``parse`` accepts; how many bytes of ``data`` that consumed."""
    if not betweenWholeFrames(protocol):
        return 0
    limit: int = protocol.maxMessagePayloadSize
    frameLimit: int = protocol.maxFramePayloadSize
    if frameLimit and (not limit or frameLimit < limit):
        limit = frameLimit
    offset = 0
    onMessage = protocol.onMessage
    while protocol.state == protocol.STATE_OPEN and protocol.transport is not None:
        found = parse(data, offset, limit)
        if found is None:
            break
        payload, offset = found
        onMessage(payload, True)
    return offset
