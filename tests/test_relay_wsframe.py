"""Our one-step binary websocket frame is byte for byte what autobahn's sendFrame writes."""

from __future__ import annotations

import os
import random
from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.wire.wsframe import SMALL_PAYLOAD, binaryFrame, maskPayload, newMaskKey


def autobahnFrame(payload: bytes, seed: int) -> bytes:
    """What autobahn's client protocol writes for one binary frame, its mask key drawn from
    ``random`` seeded with ``seed`` (an explicit ``mask=`` would leave the key off the wire)."""
    factory = WebSocketClientFactory("ws://127.0.0.1:9/x")
    protocol: Any = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.transport = transport
    protocol._perMessageCompress = None
    protocol.send_queue = []
    protocol.logFrames = False
    protocol.logOctets = False
    protocol.state = protocol.STATE_OPEN
    protocol.applyMask = True
    protocol.maskClientFrames = True
    protocol.trafficStats = _Counter()
    protocol.sendData = lambda data, sync=False, chopsize=None: transport.write(data)
    random.seed(seed)
    protocol.sendFrame(opcode=2, payload=payload)
    return transport.value()


def ourFrame(payload: bytes, seed: int) -> bytes:
    random.seed(seed)
    return binaryFrame(payload, newMaskKey())


class _Counter:
    def __getattr__(self, name: str) -> int:
        return 0

    def __setattr__(self, name: str, value: object) -> None:
        pass


class BinaryFrameTests(SynchronousTestCase):
    def setUp(self) -> None:
        state = random.getstate()
        self.addCleanup(random.setstate, state)

    def test_sizesAroundEveryBoundary(self) -> None:
        for size in (0, 1, 3, 4, 5, 125, 126, 127, SMALL_PAYLOAD, SMALL_PAYLOAD + 1, 65535, 65536):
            payload = os.urandom(size)
            self.assertEqual(ourFrame(payload, size), autobahnFrame(payload, size), size)

    @settings(max_examples=200, deadline=None)
    @given(payload=st.binary(max_size=3000), seed=st.integers(0, 2**32))
    def test_sameBytesAsAutobahn(self, payload: bytes, seed: int) -> None:
        self.assertEqual(ourFrame(payload, seed), autobahnFrame(payload, seed))

    def test_keyIsOnTheWireAndPayloadMasked(self) -> None:
        frame = binaryFrame(b"\x00" * 8, b"\x01\x02\x03\x04")
        self.assertEqual(frame, b"\x82\x88\x01\x02\x03\x04" + b"\x01\x02\x03\x04" * 2)

    def test_maskingTwiceRestores(self) -> None:
        payload = os.urandom(5000)
        key = newMaskKey()
        self.assertEqual(len(key), 4)
        self.assertEqual(maskPayload(maskPayload(payload, key), key), payload)
        self.assertNotEqual(maskPayload(payload[:100], key), payload[:100])


class NextServerMessageTests(SynchronousTestCase):
    def test_theShapesItTakes(self) -> None:
        from tests.test_relay_protocol import serverFrame
        from twisted_exec.wire.wsframe import nextServerMessage

        for size in (0, 1, 125, 126, 65535, 65536, 70_000):
            payload = os.urandom(size)
            frame = b"xy" + serverFrame(0x2, payload) + b"\x82"
            self.assertEqual(nextServerMessage(frame, 2), (payload, len(frame) - 1))
            self.assertIsNone(nextServerMessage(frame[:-2], 2))  # not whole
            self.assertIsNone(nextServerMessage(frame, 2, limit=size - 1) if size > 1 else None)
        refused = [
            serverFrame(0x1, b"text"),
            serverFrame(0x9, b"ping"),
            bytes((0x02, 3)) + b"abc",  # no FIN
            bytes((0xC2, 3)) + b"abc",  # RSV1
            bytes((0x82, 0x83)) + b"\0\0\0\0abc",  # masked
            bytes((0x82, 126, 0, 3)) + b"abc",  # not the shortest length
            bytes((0x82, 127)) + (3).to_bytes(8, "big") + b"abc",
            bytes((0x82, 127)) + (1 << 63 | 70_000).to_bytes(8, "big"),
        ]
        for frame in refused:
            self.assertIsNone(nextServerMessage(frame, 0), frame[:12])
        self.assertIsNone(nextServerMessage(b"\x82", 0))

    def test_clientFramesAreUnmasked(self) -> None:
        """The rendezvous's side: masked frames only, the payload returned unmasked."""
        from tests.test_relay_protocol import serverFrame
        from twisted_exec.wire.wsframe import nextClientMessage

        for size in (0, 5, 125, 126, 1024, 1025, 65536, 70_000):
            payload = os.urandom(size)
            frame = binaryFrame(payload, newMaskKey())
            self.assertEqual(nextClientMessage(frame + b"\x82", 0), (payload, len(frame)))
            self.assertIsNone(nextClientMessage(frame[:-1], 0))
            self.assertIsNone(nextClientMessage(serverFrame(0x2, payload), 0))  # unmasked
