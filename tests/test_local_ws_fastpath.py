"""The local websocket's one-step text frames (wire/wstext) against autobahn's own.

Inbound: whole masked text frames reach the processor without autobahn's frame machinery, and
everything else (fragments, control frames, a frame split across reads, invalid UTF-8, a
frame over the limit) still reaches autobahn, in order, with its own answers. Outbound: the
frame we write is byte for byte what autobahn's ``sendMessage`` writes.
"""

from __future__ import annotations

import base64
import os
import random
import struct
from typing import Any

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from twisted_exec.executor.core.interfaces import IJsonRpcProcessor, IMessageSink, IProcessorFactory
from twisted_exec.executor.transports.local_ws import LocalExecFactory
from twisted_exec.wire.wsframe import maskPayload
from twisted_exec.wire.wstext import nextClientTextMessage, serverTextFrame

SIZES = (0, 1, 5, 125, 126, 127, 1024, 1025, 65535, 65536)


def clientFrame(
    payload: bytes, opcode: int = 1, fin: bool = True, key: bytes = b"\x01\x02\x03\x04"
) -> bytes:
    """A masked client frame with the shortest length encoding."""
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size <= 125:
        header = bytes((first, 0x80 | size))
    elif size <= 0xFFFF:
        header = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, size)
    return header + key + maskPayload(payload, key)


class TextFrameTests(SynchronousTestCase):
    def test_parsesEverySize(self) -> None:
        for size in SIZES:
            payload = b"x" * size
            frame = clientFrame(payload, key=os.urandom(4))
            self.assertEqual(nextClientTextMessage(b"junk" + frame, 4), (payload, 4 + len(frame)))

    def test_severalFramesInOneRead(self) -> None:
        data = clientFrame(b'{"id":1}') + clientFrame("é".encode())
        first = nextClientTextMessage(data, 0)
        assert first is not None
        self.assertEqual(nextClientTextMessage(data, first[1]), ("é".encode(), len(data)))

    def test_leavesEverythingElseToAutobahn(self) -> None:
        whole = clientFrame(b"hello")
        cases = {
            "binary": clientFrame(b"hello", opcode=2),
            "fragment": clientFrame(b"hello", fin=False),
            "ping": clientFrame(b"", opcode=9),
            "unmasked": bytes((0x81, 5)) + b"hello",
            "rsv bit": bytes((0xC1,)) + whole[1:],
            "not whole": whole[:-1],
            "invalid UTF-8": clientFrame(b"\xff\xfe"),
            "surrogate": clientFrame(b"\xed\xa0\x80"),
            "non-minimal length": bytes((0x81, 0x80 | 126, 0, 5)) + whole[2:],
        }
        for name, data in cases.items():
            self.assertIsNone(nextClientTextMessage(data, 0), name)
        self.assertIsNone(nextClientTextMessage(clientFrame(b"x" * 11), 0, limit=10))
        self.assertIsNotNone(nextClientTextMessage(clientFrame(b"x" * 10), 0, limit=10))


@implementer(IJsonRpcProcessor)
class _RecordingProcessor:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.sink: IMessageSink | None = None
        self.lost = False

    def makeConnection(self, sink: IMessageSink) -> None:
        self.sink = sink

    def messageReceived(self, payload: bytes) -> None:
        self.messages.append(payload)
        assert self.sink is not None
        self.sink.sendMessage(b"re:" + payload)

    def connectionLost(self) -> None:
        self.lost = True

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def closeSession(self) -> None:
        pass


@implementer(IProcessorFactory)
class _OneProcessor:
    def __init__(self) -> None:
        self.processor = _RecordingProcessor()

    def buildProcessor(self, parseErrorContext: str | None) -> IJsonRpcProcessor:
        return self.processor


class LocalProtocolFastPathTests(SynchronousTestCase):
    """A ``LocalExecProtocol`` on a ``StringTransport``, past a real upgrade handshake."""

    protocol: Any

    def setUp(self) -> None:
        self.factory = _OneProcessor()
        verifyObject(IJsonRpcProcessor, self.factory.processor)
        verifyObject(IProcessorFactory, self.factory)
        wsFactory = LocalExecFactory(self.factory, Clock(), maxMessageBytes=1000)
        built: Any = wsFactory.buildProtocol(None)
        self.protocol = built
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        key = base64.b64encode(os.urandom(16))
        self.protocol.dataReceived(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.assertIn(b"101 Switching Protocols", self.transport.value())
        self.transport.clear()
        self.autobahnFrames = 0
        original = self.protocol.processData

        def counting() -> bool:
            self.autobahnFrames += 1
            result: bool = original()
            return result

        self.protocol.processData = counting

    def replies(self) -> list[bytes]:
        return [serverTextFrame(b"re:" + m) for m in self.factory.processor.messages]

    def test_wholeFramesSkipAutobahn(self) -> None:
        self.protocol.dataReceived(clientFrame(b"a") + clientFrame(b"b" * 300))
        self.assertEqual(self.factory.processor.messages, [b"a", b"b" * 300])
        self.assertEqual(self.autobahnFrames, 0)
        self.assertEqual(self.transport.value(), b"".join(self.replies()))

    def test_splitFragmentedAndControlFramesInOrder(self) -> None:
        ping = clientFrame(b"p", opcode=9)
        split = clientFrame(b"split")
        fragments = clientFrame(b"fr", fin=False) + clientFrame(b"ag", opcode=0)
        self.protocol.dataReceived(clientFrame(b"1") + ping + clientFrame(b"2") + split[:3])
        self.protocol.dataReceived(split[3:] + clientFrame(b"3"))
        self.protocol.dataReceived(fragments + clientFrame(b"4"))
        self.assertEqual(
            self.factory.processor.messages, [b"1", b"2", b"split", b"3", b"frag", b"4"]
        )
        pong = bytes((0x8A, 1)) + b"p"
        out = self.transport.value()
        self.assertTrue(out.startswith(serverTextFrame(b"re:1") + pong), out)

    def test_serverFrameIsAutobahns(self) -> None:
        self.protocol.maxMessagePayloadSize = 0  # autobahn refuses to send over its limit
        for size in SIZES:
            payload = bytes(random.getrandbits(7) for _ in range(size))
            self.protocol.sendMessage(payload, isBinary=False)  # autobahn's own
            self.assertEqual(serverTextFrame(payload), self.transport.value(), size)
            self.transport.clear()

    def test_invalidUtf8ClosesWith1007(self) -> None:
        self.protocol.dataReceived(clientFrame(b"ok") + clientFrame(b"\xff") + clientFrame(b"x"))
        self.assertEqual(self.factory.processor.messages, [b"ok"])
        out = self.transport.value()[len(serverTextFrame(b"re:ok")) :]
        self.assertEqual((out[0], struct.unpack("!H", out[2:4])[0]), (0x88, 1007))

    def test_overTheLimitClosesWith1009(self) -> None:
        self.protocol.dataReceived(clientFrame(b"y" * 1001))
        self.assertEqual(self.factory.processor.messages, [])
        out = self.transport.value()
        self.assertEqual((out[0], struct.unpack("!H", out[2:4])[0]), (0x88, 1009))
