"""Executor-side Noise relay (sans-IO), opening a stream: the handshake, registry validation of
the harness's key authorization, and encrypted JSON-RPC once it is established."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface.verify import verifyObject

from tests.support.noise_demux import EXECUTOR, HARNESS, EchoProcessor, NoiseDemuxCase, parse
from twisted_exec.executor.core.interfaces import IJsonRpcProcessor, IProcessorFactory
from twisted_exec.wire import noise
from twisted_exec.wire.frames import encodeHandshake


class NoiseDemuxHandshakeTests(NoiseDemuxCase):
    def test_fakesProvideTheInterfaces(self) -> None:
        verifyObject(IProcessorFactory, self.factory)
        verifyObject(IJsonRpcProcessor, EchoProcessor())

    # -- the happy path ----------------------------------------------------------------------

    def test_handshakeValidateThenJsonRpc(self) -> None:
        stream = self.newStream()
        resume, hello = stream.openingFrames()
        self.demux.frameReceived(resume)
        self.assertEqual(self.sent, [])
        self.demux.frameReceived(hello)
        [(key, authorization, streamId)] = self.validator.calls
        self.assertEqual(
            (key, authorization, streamId), (HARNESS.publicKey, "auth-1", stream.streamId)
        )
        [reply] = [parse(raw) for raw in self.sent]
        self.assertEqual(reply.WhichOneof("body"), "handshake")
        self.assertEqual(len(reply.handshake.payload), 3424)
        self.deliverToHarness(stream)
        self.assertTrue(stream.established)
        self.assertEqual(self.call(stream, 1, {"a": 1}), [{"id": 1, "result": {"a": 1}}])
        self.assertEqual(self.demux.streamIds, {stream.streamId})

    def test_noPlaintextOnTheWire(self) -> None:
        stream = self.open()
        secret = "plain-json-marker-" * 3
        body = json.dumps({"id": 7, "method": "echo", "params": secret}).encode()
        frames = stream.encodeMessage(body)
        self.assertFalse(any(secret.encode() in raw for raw in frames))
        for raw in frames:
            self.demux.frameReceived(raw)
        self.assertFalse(any(secret.encode() in raw for raw in self.sent))
        self.assertEqual(self.deliverToHarness(stream), [{"id": 7, "result": secret}])

    def test_largeMessagesBothWays(self) -> None:
        stream = self.open()
        big = "x" * 300_000
        self.assertEqual(self.call(stream, 2, big), [{"id": 2, "result": big}])

    def test_streamsAreIndependent(self) -> None:
        one, two = self.open(), self.open()
        self.assertEqual(self.call(two, 1, "b"), [{"id": 1, "result": "b"}])
        self.assertEqual(self.call(one, 1, "a"), [{"id": 1, "result": "a"}])
        self.assertEqual(len(self.factory.built), 2)

    # -- validation ---------------------------------------------------------------------------

    def test_refusedValidation(self) -> None:
        self.validator.answer = False
        stream = self.newStream()
        for raw in stream.openingFrames():
            self.demux.frameReceived(raw)
        self.assertOnlyReset(stream.streamId)
        self.assertEqual((self.factory.built, self.demux.failedHandshakes), ([], 1))

    def test_validationTimeout(self) -> None:
        self.validator.hold = True
        stream = self.newStream()
        for raw in stream.openingFrames():
            self.demux.frameReceived(raw)
        self.assertEqual(self.sent, [])
        self.clock.advance(9.9)
        self.assertEqual(self.sent, [])
        self.clock.advance(0.2)
        self.assertOnlyReset(stream.streamId)
        self.assertEqual(self.demux.validationsInFlight, 0)

    def test_validatorError(self) -> None:
        def broken(*args: Any) -> Deferred[bool]:
            raise RuntimeError("registry down")

        self.validator = broken  # type: ignore[assignment]
        self.demux = self.makeDemux()
        stream = self.newStream()
        for raw in stream.openingFrames():
            self.demux.frameReceived(raw)
        self.assertOnlyReset(stream.streamId)

    def test_authorizationLimits(self) -> None:
        for authorization in ("a" * 4097, "\udcff"):
            try:
                stream = self.newStream(authorization)
            except UnicodeEncodeError:
                # Not UTF-8: build message 1 with raw bytes instead.
                stream = self.newStream("x")
                raw = noise.InitiatorHandshake(
                    HARNESS,
                    EXECUTOR.publicKey,
                    noise.prologue("env-1", "reg-1", stream.streamId),
                    b"\xff\xfe",
                ).message1
                self.demux.frameReceived(encodeHandshake(stream.streamId, raw))
            else:
                for raw in stream.openingFrames():
                    self.demux.frameReceived(raw)
            self.assertOnlyReset(stream.streamId)
        self.assertEqual(self.validator.calls, [])
        self.assertEqual(self.demux.failedHandshakes, 2)
        accepted = self.open(self.newStream("a" * 4096))
        self.assertTrue(accepted.established)

    def test_wrongPrologueRefused(self) -> None:
        """A handshake made for another stream id (spliced) fails before any registry call."""
        other = self.newStream()
        _, hello = other.openingFrames()
        spliced = parse(hello)
        spliced.stream_id = "another-stream"
        self.demux.frameReceived(spliced.SerializeToString())
        self.assertOnlyReset("another-stream")
        self.assertEqual(self.validator.calls, [])
