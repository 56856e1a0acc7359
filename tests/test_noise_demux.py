"""Executor-side Noise relay (sans-IO): handshake, validation, limits, resets, isolation."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from twisted_exec.executor.core.interfaces import IJsonRpcProcessor, IMessageSink, IProcessorFactory
from twisted_exec.executor.transports.relay.noise_demux import NoiseRelayDemux
from twisted_exec.harness.noise_stream import ConnectBundle, NoiseHarnessStream, NoiseStreamError
from twisted_exec.wire import noise, relay_pb2
from twisted_exec.wire.frames import encodeData, encodeHandshake, encodeReset

EXECUTOR = noise.NoiseIdentity.generate()
HARNESS = noise.NoiseIdentity.generate()


@implementer(IJsonRpcProcessor)
class EchoProcessor:
    """Answers each request with its params; ``close`` closes the sink."""

    def __init__(self) -> None:
        self.sink: IMessageSink | None = None
        self.received: list[bytes] = []
        self.lost = 0
        self.paused = False

    def makeConnection(self, sink: IMessageSink) -> None:
        self.sink = sink

    def messageReceived(self, payload: bytes) -> None:
        self.received.append(payload)
        message = json.loads(payload)
        assert self.sink is not None
        if message.get("method") == "close":
            self.sink.loseConnection()
        elif "id" in message:
            reply = {"id": message["id"], "result": message.get("params")}
            self.sink.sendMessage(json.dumps(reply).encode())

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False

    def connectionLost(self) -> None:
        self.lost += 1

    def closeSession(self) -> None:
        pass


@implementer(IProcessorFactory)
class EchoFactory:
    def __init__(self) -> None:
        self.built: list[EchoProcessor] = []

    def buildProcessor(self, parseErrorContext: str | None) -> IJsonRpcProcessor:
        processor = EchoProcessor()
        self.built.append(processor)
        return processor


def parse(raw: bytes) -> relay_pb2.RelayMessageFrame:
    frame = relay_pb2.RelayMessageFrame()
    frame.ParseFromString(raw)
    return frame


class Validator:
    """Records calls; answers ``True`` at once unless told to hold or refuse."""

    def __init__(self) -> None:
        self.calls: list[tuple[noise.NoisePublicKey, str, str]] = []
        self.hold = False
        self.answer = True
        self.held: list[Deferred[bool]] = []

    def __call__(self, key: noise.NoisePublicKey, authorization: str, streamId: str) -> Any:
        self.calls.append((key, authorization, streamId))
        if self.hold:
            d: Deferred[bool] = Deferred()
            self.held.append(d)
            return d
        return succeed(self.answer)


class NoiseDemuxTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.sent: list[bytes] = []
        self.factory = EchoFactory()
        self.validator = Validator()
        self.exhausted = 0
        self.demux = self.makeDemux()

    def makeDemux(self, **kwargs: Any) -> NoiseRelayDemux:
        def onExhausted() -> None:
            self.exhausted += 1

        return NoiseRelayDemux(
            self.factory,
            self.sent.append,
            identity=EXECUTOR,
            environmentId="env-1",
            executorRegistrationId="reg-1",
            validator=self.validator,
            clock=self.clock,
            onExhausted=onExhausted,
            **kwargs,
        )

    def newStream(
        self, authorization: str = "auth-1", streamId: str | None = None
    ) -> NoiseHarnessStream:
        bundle = ConnectBundle("env-1", "ws://x", "reg-1", EXECUTOR.publicKey, authorization)
        return NoiseHarnessStream(HARNESS, bundle, streamId)

    def deliverToHarness(self, stream: NoiseHarnessStream) -> list[Any]:
        out: list[Any] = []
        sent, self.sent[:] = list(self.sent), []
        for raw in sent:
            out.extend(json.loads(m) for m in stream.frameReceived(raw))
        return out

    def open(self, stream: NoiseHarnessStream | None = None) -> NoiseHarnessStream:
        stream = stream if stream is not None else self.newStream()
        for raw in stream.openingFrames():
            self.demux.frameReceived(raw)
        self.deliverToHarness(stream)
        self.assertTrue(stream.established)
        return stream

    def call(self, stream: NoiseHarnessStream, ident: int, params: Any) -> list[Any]:
        body = json.dumps({"id": ident, "method": "echo", "params": params}).encode()
        for raw in stream.encodeMessage(body):
            self.demux.frameReceived(raw)
        return self.deliverToHarness(stream)

    def resets(self) -> list[str]:
        return [f.stream_id for f in map(parse, self.sent) if f.WhichOneof("body") == "reset"]

    def assertOnlyReset(self, streamId: str) -> None:
        frames = [parse(raw) for raw in self.sent]
        self.assertEqual(
            [(f.WhichOneof("body"), f.stream_id) for f in frames], [("reset", streamId)]
        )
        self.assertEqual(frames[0].reset.reason, "noise_relay_protocol_error")
        self.sent.clear()

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

    # -- duplicates, early data, resets ---------------------------------------------------------

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

    # -- limits -------------------------------------------------------------------------------

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
