"""Executor-side Noise relay (sans-IO), limits of one websocket: the failed-handshake budget,
active streams, validations in flight; losing the websocket and flow control reach every
stream."""

from __future__ import annotations

from tests.support.noise_demux import NoiseDemuxCase, parse
from twisted_exec.wire.frames import encodeHandshake, encodeReset


class NoiseDemuxLimitTests(NoiseDemuxCase):
    def test_failedHandshakeBudgetClosesWebsocket(self) -> None:
        for i in range(7):
            self.demux.frameReceived(encodeHandshake(f"s-{i}", b"garbage"))
        self.assertEqual((self.exhausted, self.demux.failedHandshakes), (0, 7))
        live = self.factory.built
        self.demux.frameReceived(encodeHandshake("s-7", b"garbage"))
        self.assertEqual(self.exhausted, 1)
        self.assertTrue(self.demux.exhausted)
        self.sent.clear()
        stream = self.newStream()
        for raw in stream.openingFrames():
            self.demux.frameReceived(raw)
        self.assertEqual(self.sent, [])  # nothing more on this websocket
        self.assertEqual(live, [])

    def test_activeStreamLimit(self) -> None:
        """128 streams at once (0.171's limit); the 129th handshake is reset, not charged."""
        streams = [self.open() for _ in range(128)]
        extra = self.newStream()
        for raw in extra.openingFrames():
            self.demux.frameReceived(raw)
        self.assertOnlyReset(extra.streamId)
        self.assertEqual(self.demux.failedHandshakes, 0)
        self.demux.frameReceived(encodeReset(streams[0].streamId, "done"))
        self.assertTrue(self.open(extra).established)

    def test_pendingValidationLimit(self) -> None:
        self.validator.hold = True
        waiting = [self.newStream() for _ in range(32)]
        for stream in waiting:
            self.demux.frameReceived(stream.openingFrames()[1])
        self.assertEqual(self.demux.validationsInFlight, 32)
        extra = self.newStream()
        self.demux.frameReceived(extra.openingFrames()[1])
        self.assertOnlyReset(extra.streamId)
        self.assertEqual(len(self.validator.calls), 32)
        self.validator.held[0].callback(True)
        self.assertEqual([parse(r).WhichOneof("body") for r in self.sent], ["handshake"])

    def test_websocketLostDetachesAll(self) -> None:
        self.open()
        self.validator.hold = True
        pending = self.newStream()
        self.demux.frameReceived(pending.openingFrames()[1])
        self.demux.connectionLost()
        self.assertEqual(self.factory.built[0].lost, 1)
        self.assertTrue(self.validator.held[0].called)  # cancelled
        self.assertEqual(self.demux.validationsInFlight, 0)

    def test_flowControlReachesProcessors(self) -> None:
        self.open()
        self.demux.pauseProducing()
        self.assertTrue(self.factory.built[0].paused)
        late = self.open()
        self.assertTrue(self.factory.built[1].paused)
        self.demux.resumeProducing()
        self.assertFalse(self.factory.built[0].paused)
        self.assertTrue(late.established)
