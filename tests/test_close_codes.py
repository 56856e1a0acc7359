"""A server may close with the protocol codes (1008, 1009, ...) that autobahn's ``sendClose``
refuses: the rendezvous closes a harness that floods it with streams with 1008."""

from __future__ import annotations

import base64
import struct
from typing import Any

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.net.autobahn_compat import sendCloseCode
from twisted_exec.rendezvous.websocket import RelayLink

UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + base64.b64encode(b"0123456789abcdef") + b"\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


def openServer() -> tuple[Any, StringTransport]:
    factory = WebSocketServerFactory()
    factory.protocol = WebSocketServerProtocol
    factory.setProtocolOptions(openHandshakeTimeout=0, closeHandshakeTimeout=0)
    protocol: Any = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(UPGRADE)
    assert protocol.state == WebSocketServerProtocol.STATE_OPEN, protocol.state
    transport.clear()
    return protocol, transport


def closeFrame(written: bytes) -> tuple[int, bytes]:
    """The code and reason of the (unmasked, short) close frame ``written`` holds."""
    assert written[0] == 0x88, written[:2]
    size = written[1] & 0x7F
    payload = written[2 : 2 + size]
    return struct.unpack("!H", payload[:2])[0], payload[2:]


class SendCloseCodeTests(SynchronousTestCase):
    def test_policyViolation(self) -> None:
        protocol, transport = openServer()
        sendCloseCode(protocol, 1008, "too many streams")
        self.assertEqual(closeFrame(transport.value()), (1008, b"too many streams"))
        self.assertEqual(protocol.state, WebSocketServerProtocol.STATE_CLOSING)

    def test_autobahnRefusesIt(self) -> None:
        """Why the helper exists: the public call raises for 1008."""
        protocol, _ = openServer()
        with self.assertRaisesRegex(Exception, "invalid close code 1008"):
            protocol.sendClose(1008, "too many streams")

    def test_notOpenIsANoOp(self) -> None:
        protocol, transport = openServer()
        sendCloseCode(protocol, 1008, "first")
        sendCloseCode(protocol, 1008, "second")
        self.assertEqual(closeFrame(transport.value())[1], b"first")

    def test_relayLinkClosesWithPolicyViolation(self) -> None:
        """The router's flood close (``harness.close(1008, reason)``) reaches the wire."""
        protocol, transport = openServer()
        link = RelayLink(protocol, "box")
        link.close(1008, "too many streams on this harness connection")
        code, reason = closeFrame(transport.value())
        self.assertEqual(code, 1008)
        self.assertIn(b"too many streams", reason)
