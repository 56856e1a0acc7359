"""autobahn_compat.deliverWholeFrames: which frames skip autobahn's parser, where they stop."""

from __future__ import annotations

from typing import Any

from autobahn.websocket.protocol import WebSocketProtocol
from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.net.autobahn_compat import deliverWholeFrames
from twisted_exec.wire.wsframe import binaryFrame, nextClientMessage, nextServerMessage


class _Protocol:
    """The autobahn state deliverWholeFrames reads, and what it calls."""

    STATE_OPEN = WebSocketProtocol.STATE_OPEN
    STATE_CLOSED = WebSocketProtocol.STATE_CLOSED

    def __init__(self) -> None:
        self.state = self.STATE_OPEN
        self.data = b""
        self.current_frame: Any = None
        self.inside_message = False
        self._perMessageCompress: Any = None
        self.maxMessagePayloadSize = 0
        self.maxFramePayloadSize = 0
        self.transport: Any = object()
        self.messages: list[bytes] = []

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.messages.append(payload)


def frame(payload: bytes) -> bytes:
    return binaryFrame(payload, b"\x01\x02\x03\x04")


class DeliverWholeFramesTests(SynchronousTestCase):
    def test_stopsAtTheFirstOtherFrame(self) -> None:
        protocol = _Protocol()
        ping = bytes((0x89, 0x80)) + b"\0\0\0\0"
        data = frame(b"a") + frame(b"bb") + ping + frame(b"c")
        used = deliverWholeFrames(protocol, data, nextClientMessage)
        self.assertEqual(protocol.messages, [b"a", b"bb"])
        self.assertEqual(data[used:], ping + frame(b"c"))

    def test_aPartialFrameIsLeft(self) -> None:
        protocol = _Protocol()
        data = frame(b"a") + frame(b"x" * 300)[:-1]
        self.assertEqual(deliverWholeFrames(protocol, data, nextClientMessage), len(frame(b"a")))

    def test_nothingWhileAutobahnIsInsideAFrameOrHasBytes(self) -> None:
        for attribute, value in (
            ("data", b"\x82"),
            ("current_frame", object()),
            ("inside_message", True),
            ("_perMessageCompress", object()),
            ("state", _Protocol.STATE_CLOSED),
        ):
            protocol = _Protocol()
            setattr(protocol, attribute, value)
            self.assertEqual(deliverWholeFrames(protocol, frame(b"a"), nextClientMessage), 0)
            self.assertEqual(protocol.messages, [])

    def test_theSmallerLimitApplies(self) -> None:
        protocol = _Protocol()
        protocol.maxMessagePayloadSize, protocol.maxFramePayloadSize = 100, 10
        data = frame(b"x" * 10) + frame(b"y" * 11)
        self.assertEqual(
            deliverWholeFrames(protocol, data, nextClientMessage), len(frame(b"x" * 10))
        )

    def test_stopsWhenAMessageClosesTheConnection(self) -> None:
        protocol = _Protocol()

        def onMessage(payload: bytes, isBinary: bool) -> None:
            protocol.messages.append(payload)
            protocol.state = protocol.STATE_CLOSED

        protocol.onMessage = onMessage  # type: ignore[method-assign]
        data = frame(b"a") + frame(b"b")
        self.assertEqual(deliverWholeFrames(protocol, data, nextClientMessage), len(frame(b"a")))
        self.assertEqual(protocol.messages, [b"a"])

    def test_serverFramesNeedNoMask(self) -> None:
        protocol = _Protocol()
        self.assertEqual(deliverWholeFrames(protocol, frame(b"a"), nextServerMessage), 0)
