"""Executor-side Noise relay (sans-IO), protocol errors on a stream: duplicate handshakes,
early or unknown data, resets either way, tampered and reordered records; each resets only the
stream it concerns."""

from __future__ import annotations

import json

from tests.support.noise_demux import NoiseDemuxCase, parse
from twisted_exec.harness.noise_stream import NoiseStreamError
from twisted_exec.wire.frames import encodeData, encodeReset


class NoiseDemuxResetTests(NoiseDemuxCase):
    def test_duplicateHandshakeOnActiveStream(self) -> None:
        stream = self.open()
        self.demux.frameReceived(stream.openingFrames()[1])
        self.assertOnlyReset(stream.streamId)
        self.assertEqual(self.demux.failedHandshakes, 0)
        self.assertEqual(self.call(stream, 1, "still"), [{"id": 1, "result": "still"}])

    def test_duplicateHandshakeCancelsPending(self) -> None:
        self.validator.hold = True
        stream = self.newStream()
        hello = stream.openingFrames()[1]
        self.demux.frameReceived(hello)
        self.demux.frameReceived(hello)
        self.assertOnlyReset(stream.streamId)
        self.assertEqual(self.demux.failedHandshakes, 1)
        self.validator.held[0].callback(True)  # stale now
        self.assertEqual(self.sent, [])
        self.assertEqual(self.factory.built, [])

    def test_dataForUnknownAndPendingStreams(self) -> None:
        self.demux.frameReceived(encodeData("nobody", 0, b"x" * 32))
        self.assertOnlyReset("nobody")
        self.assertEqual(self.demux.failedHandshakes, 0)
        self.validator.hold = True
        stream = self.newStream()
        self.demux.frameReceived(stream.openingFrames()[1])
        self.demux.frameReceived(encodeData(stream.streamId, 0, b"x" * 32))
        self.assertOnlyReset(stream.streamId)
        self.assertEqual(self.demux.failedHandshakes, 1)

    def test_harnessResetDetachesSession(self) -> None:
        stream = self.open()
        self.demux.frameReceived(encodeReset(stream.streamId, "bye"))
        self.assertEqual(self.sent, [])
        self.assertEqual(self.factory.built[0].lost, 1)
        self.assertEqual(self.demux.streamIds, frozenset())

    def test_sessionCloseResetsStream(self) -> None:
        stream = self.open()
        for raw in stream.encodeMessage(b'{"method":"close"}'):
            self.demux.frameReceived(raw)
        self.assertOnlyReset(stream.streamId)
        self.assertEqual(self.factory.built[0].lost, 1)

    def test_tamperedRecordResetsOnlyThatStream(self) -> None:
        bad, good = self.open(), self.open()
        frame = parse(bad.encodeMessage(b'{"id":1,"method":"echo"}')[0])
        frame.data.payload = frame.data.payload[:-1] + bytes([frame.data.payload[-1] ^ 1])
        self.demux.frameReceived(frame.SerializeToString())
        self.assertOnlyReset(bad.streamId)
        self.assertEqual(self.factory.built[0].lost, 1)
        self.assertEqual(self.call(good, 5, "ok"), [{"id": 5, "result": "ok"}])

    def test_nonJsonMessageResetsStream(self) -> None:
        stream = self.open()
        for raw in stream.encodeMessage(b"not json"):
            self.demux.frameReceived(raw)
        self.assertOnlyReset(stream.streamId)
        self.assertEqual(self.factory.built[0].received, [])

    def test_reorderedAndDuplicatedRecords(self) -> None:
        stream = self.open()
        frames = stream.encodeMessage(
            json.dumps({"id": 9, "method": "echo", "params": "y" * 130_000}).encode()
        )
        self.assertEqual(len(frames), 3)
        for raw in (frames[2], frames[0], frames[0], frames[1]):
            self.demux.frameReceived(raw)
        self.assertEqual(self.deliverToHarness(stream), [{"id": 9, "result": "y" * 130_000}])

    def test_resetAfterHandshakeFailsHarness(self) -> None:
        stream = self.open()
        self.assertRaises(NoiseStreamError, stream.frameReceived, encodeReset(stream.streamId, "x"))
