"""The relay websocket protocol: keepalive and pong deadline on a task.Clock, frame routing.

The real autobahn client protocol runs over an in-memory transport opened by the scripted
endpoints of test_relay_connector; we speak raw websocket frames to it.
"""

from __future__ import annotations

import json
import struct

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from tests.test_relay_connector import TOKEN, _Endpoints, _TimedRegistry, startOnClock
from tests.test_relay_demux import EchoFactory, captureLogs
from twisted_exec.wire.frames import Data, decodeFrame, encodeData


def serverFrame(opcode: int, payload: bytes) -> bytes:
    """An unmasked server-to-client frame."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return header + payload


def clientFrames(raw: bytes) -> list[tuple[int, bytes]]:
    """Parse masked client-to-server frames."""
    frames = []
    i = 0
    while i < len(raw):
        b0, b1 = raw[i], raw[i + 1]
        n = b1 & 0x7F
        i += 2
        if n == 126:
            (n,) = struct.unpack("!H", raw[i : i + 2])
            i += 2
        elif n == 127:
            (n,) = struct.unpack("!Q", raw[i : i + 8])
            i += 8
        mask = raw[i : i + 4]
        i += 4
        body = bytes(c ^ mask[k % 4] for k, c in enumerate(raw[i : i + n]))
        i += n
        frames.append((b0 & 0x0F, body))
    return frames


class RelayProtocolTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.logs = captureLogs(self)
        self.registry = _TimedRegistry(self.clock)
        self.endpoints = _Endpoints(self.clock, [])
        self.factory = EchoFactory()
        self.service = startOnClock(
            self, self.clock, self.factory, self.registry, self.endpoints, TOKEN
        )
        self.transport = self.endpoints.open[0]
        self.transport.clear()  # the upgrade request

    def sent(self) -> list[tuple[int, bytes]]:
        frames = clientFrames(self.transport.value())
        self.transport.clear()
        return frames

    def receive(self, opcode: int, payload: bytes) -> None:
        self.endpoints.open[-1].protocol.dataReceived(serverFrame(opcode, payload))

    def test_pingEvery30s(self) -> None:
        self.clock.advance(29.9)
        self.assertEqual(self.sent(), [])
        self.clock.advance(0.1)
        self.assertEqual([op for op, _ in self.sent()], [0x9])
        self.receive(0xA, b"")  # pong
        self.clock.advance(30)
        self.assertEqual([op for op, _ in self.sent()], [0x9])

    def test_pongDeadlineDropsAndReconnects(self) -> None:
        self.clock.advance(59.9)
        self.assertFalse(self.transport.lost)
        self.clock.advance(0.1)
        self.assertTrue(self.transport.lost)
        self.assertTrue(any("no pong or message" in line for line in self.logs), self.logs)
        self.clock.advance(1)
        self.assertEqual(len(self.registry.times), 2)
        self.assertEqual(len(self.endpoints.open), 2)

    def test_pongsKeepItAlive(self) -> None:
        for _ in range(10):
            self.clock.advance(30)
            self.receive(0xA, b"")
        self.assertFalse(self.transport.lost)
        self.assertEqual(len(self.registry.times), 1)

    def test_messagesCountAsLiveness(self) -> None:
        for _ in range(4):
            self.clock.advance(45)
            self.receive(0x2, encodeData("s", 0, b"not json"))
        self.assertFalse(self.transport.lost)

    def test_bytesOfAnUnfinishedMessageCountAsLiveness(self) -> None:
        """The deadline moves on inbound bytes (once per read), not only on whole messages: a
        large message still arriving shows the rendezvous is alive."""
        frame = serverFrame(0x2, encodeData("s", 0, b"x" * 4000))
        protocol = self.endpoints.open[-1].protocol
        for i in range(4):
            self.clock.advance(45)
            protocol.dataReceived(frame[i * 1000 : (i + 1) * 1000])
        self.assertFalse(self.transport.lost)
        self.clock.advance(60)  # then silence: dropped one timeout after the last bytes
        self.assertTrue(self.transport.lost)

    def test_binaryFramesRouted(self) -> None:
        self.receive(0x2, encodeData("s1", 0, json.dumps({"id": 4, "method": "m"}).encode()))
        [(opcode, payload)] = self.sent()
        self.assertEqual(opcode, 0x2)
        event = decodeFrame(payload)
        assert isinstance(event, Data)
        self.assertEqual((event.streamId, event.seq), ("s1", 0))
        self.assertEqual(json.loads(event.payload)["id"], 4)

    def test_textDropped(self) -> None:
        self.receive(0x1, json.dumps({"id": 1, "method": "initialize"}).encode())
        self.assertEqual(self.sent(), [])
        self.assertEqual(self.factory.built, [])
        self.assertTrue(any("text websocket message" in line for line in self.logs), self.logs)

    def test_lossDetachesStreams(self) -> None:
        for sid in ("a", "b"):
            self.receive(0x2, encodeData(sid, 0, b'{"id":1,"method":"m"}'))
        self.transport.loseConnection()
        self.assertEqual([p.lost for p in self.factory.built], [1, 1])
        self.assertEqual(self.clock.getDelayedCalls()[0].getTime(), 1.0)

    def test_oversizedMessageDropsConnection(self) -> None:
        self.service.relayFactory.setProtocolOptions(maxMessagePayloadSize=1024)
        # The cap applies to connections made after the change: reconnect first.
        self.transport.loseConnection()
        self.clock.advance(1)
        transport = self.endpoints.open[-1]
        transport.clear()
        transport.protocol.dataReceived(serverFrame(0x2, b"x" * 2048))
        # A close frame saying why (1009), then the TCP connection is closed; we reconnect.
        [(opcode, body)] = clientFrames(transport.value())
        self.assertEqual((opcode, struct.unpack("!H", body[:2])[0]), (0x8, 1009))
        self.assertIn(b"1024", body[2:])
        self.assertTrue(transport.lost)
        self.assertEqual(self.factory.built, [])
        self.clock.advance(1)
        self.assertEqual(len(self.endpoints.open), 3)

    def test_oversizedMessageAbortsIfTheCloseFrameCannotLeave(self) -> None:
        """A peer that stopped reading never takes the close frame: aborted after 5 s."""
        self.service.relayFactory.setProtocolOptions(maxMessagePayloadSize=1024)
        self.transport.loseConnection()
        self.clock.advance(1)
        transport = self.endpoints.open[-1]
        transport.loseConnection = lambda: None  # type: ignore[method-assign]
        transport.protocol.dataReceived(serverFrame(0x2, b"x" * 2048))
        self.assertFalse(transport.lost)
        self.clock.advance(4.9)
        self.assertFalse(transport.lost)
        self.clock.advance(0.2)
        self.assertTrue(transport.lost)

    def test_framesOfOneReadInOrderWhateverTheirKind(self) -> None:
        """Whole binary frames take the fast path (wire/wsframe.nextServerMessage), anything
        else autobahn's parser; together they keep the order of the wire."""
        protocol = self.endpoints.open[-1].protocol

        def message(ident: int) -> bytes:
            return encodeData("s1", ident, json.dumps({"id": ident, "method": "m"}).encode())

        fragmented = message(4)
        read = b"".join(
            [
                serverFrame(0x2, message(0)),
                serverFrame(0x2, message(1)),
                serverFrame(0x9, b"ping!"),
                serverFrame(0x2, message(2)),
                serverFrame(0x1, b"text"),
                serverFrame(0x2, message(3)),
                bytes((0x02, len(fragmented[:5]))) + fragmented[:5],  # no FIN
                serverFrame(0x0, fragmented[5:]),  # FIN, continuation
                serverFrame(0x2, message(5) + b" " * 200),  # 16-bit length
                serverFrame(0x2, message(6)),
            ]
        )
        cut = len(read) - 7
        protocol.dataReceived(read[:cut])
        protocol.dataReceived(read[cut:])
        frames = self.sent()
        self.assertIn((0xA, b"ping!"), frames)
        seqs = []
        for opcode, payload in frames:
            if opcode == 0x2:
                event = decodeFrame(payload)
                assert isinstance(event, Data)
                seqs.append(json.loads(event.payload)["id"])
        self.assertEqual(seqs, [0, 1, 2, 3, 4, 5, 6])
        self.assertTrue(any("text websocket message" in line for line in self.logs), self.logs)

    def test_wholeBinaryFramesBypassAutobahnsParser(self) -> None:
        protocol = self.endpoints.open[-1].protocol
        parsed: list[object] = []
        original = protocol.processData

        def processData() -> bool:
            parsed.append(1)
            return bool(original())

        protocol.processData = processData
        frames = [serverFrame(0x2, encodeData("s", i, b'{"id":1,"method":"m"}')) for i in range(5)]
        protocol.dataReceived(b"".join(frames))
        self.assertEqual(len([op for op, _ in self.sent() if op == 0x2]), 5)
        self.assertEqual(parsed, [])
        protocol.dataReceived(frames[0][:3])  # not whole: autobahn buffers it
        protocol.dataReceived(frames[0][3:])
        self.assertEqual(len(self.sent()), 1)
        self.assertNotEqual(parsed, [])
