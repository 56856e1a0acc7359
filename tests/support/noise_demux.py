"""The executor-side Noise relay demux driven sans-IO, for its tests: fixed executor and
harness identities, an echoing processor (``close`` closes its sink), a registry validator that
can hold or refuse, and :class:`NoiseDemuxCase`, a demux on a ``Clock`` with a harness-side
stream to open, call through and read resets from."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from twisted_exec.executor.core.interfaces import IJsonRpcProcessor, IMessageSink, IProcessorFactory
from twisted_exec.executor.transports.relay.noise_demux import NoiseRelayDemux
from twisted_exec.harness.noise_stream import ConnectBundle, NoiseHarnessStream
from twisted_exec.wire import noise, relay_pb2

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


class NoiseDemuxCase(TestCase):
    """A :class:`NoiseRelayDemux` for environment ``env-1``/``reg-1`` whose sent frames land in
    ``sent``; the helpers play the harness's side. No tests of its own."""

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
