"""Property tests: whatever bytes the rendezvous sends, the relay layers never raise past their
boundary and a valid stream next to the garbage is still served.

Three boundaries: the frame decoder/validator (bytes → event), the demux with real processors
behind it (frames → sessions), and the relay websocket protocol itself (raw bytes off the TCP
connection → autobahn → demux). Any ``log.failure`` (an exception caught at a boundary) fails.
"""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.support.fakes import StubFilesystem, StubResources
from tests.test_fuzz_envelope import FUZZ, _FailureWatch
from tests.test_relay_connector import TOKEN, _Endpoints, _TimedRegistry, stopOnClock
from tests.test_relay_protocol import serverFrame
from twisted_exec.executor.core.processor_factory import ExecProcessorFactory
from twisted_exec.executor.core.session import SessionRegistry
from twisted_exec.executor.methods import buildRegistry
from twisted_exec.executor.transports.relay.demux import RelayDemux
from twisted_exec.executor.transports.relay.registry import TOKEN_ENV, RemoteConfig
from twisted_exec.executor.transports.relay.service import makeRemoteService
from twisted_exec.testing.soak import fuzzFrame
from twisted_exec.wire import relay_pb2
from twisted_exec.wire.frames import Data, Ignored, Invalid, Reset, decodeFrame, encodeData

frames = st.binary(max_size=300) | st.randoms(use_true_random=False).map(
    lambda r: fuzzFrame(random.Random(r.random()))
)


def validFrame() -> bytes:
    return relay_pb2.RelayMessageFrame(
        version=1,
        stream_id="fz-1",
        data=relay_pb2.RelayData(seq=0, segment_index=0, segment_count=1, payload=b'{"id":1}'),
    ).SerializeToString()


class _Harness:
    """A demux with real processors (over fake resources) and a decoded view of what it sends."""

    def __init__(self) -> None:
        registry = SessionRegistry(Clock(), StubResources, ttl=10.0)
        self.sent: list[bytes] = []
        self.demux = RelayDemux(
            ExecProcessorFactory(registry, StubFilesystem(), methods=buildRegistry()),
            self.sent.append,
            maxStreams=8,
        )
        self.validSeq = 0

    def ask(self, ident: str) -> dict[str, Any]:
        """A request on the valid stream; returns its reply (sent synchronously)."""
        body = json.dumps({"id": ident, "method": "no/such"}).encode()
        self.sent.clear()
        self.demux.frameReceived(encodeData("valid", self.validSeq, body))
        self.validSeq += 1
        replies = [e for e in map(decodeFrame, self.sent) if isinstance(e, Data)]
        [reply] = [json.loads(e.payload) for e in replies if e.streamId == "valid"]
        return reply  # type: ignore[no-any-return]


class FrameFuzzTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.watch = _FailureWatch(self)

    def tearDown(self) -> None:
        self.assertEqual(self.watch.failures, [])

    @FUZZ
    @given(frames)
    def test_decoderNeverRaises(self, raw: bytes) -> None:
        self.assertIsInstance(decodeFrame(raw), (Data, Reset, Ignored, Invalid))

    @FUZZ
    @given(st.binary(max_size=40), st.integers(0, 40), st.integers(0, 255))
    def test_mutatedValidFrame(self, noise: bytes, at: int, byte: int) -> None:
        raw = bytearray(validFrame())
        raw[at % len(raw)] = byte
        self.assertIsInstance(decodeFrame(bytes(raw) + noise), (Data, Reset, Ignored, Invalid))

    @settings(FUZZ, max_examples=150)
    @given(st.lists(frames, max_size=25))
    def test_demuxServesTheValidStreamWhateverElseArrives(self, garbage: list[bytes]) -> None:
        harness = _Harness()
        self.assertIn("error", harness.ask("before"))
        for n, raw in enumerate(garbage):
            harness.demux.frameReceived(raw)
            if n % 5 == 0:
                self.assertEqual(harness.ask(f"during-{n}")["id"], f"during-{n}")
        self.assertEqual(harness.ask("after")["id"], "after")
        self.assertIn("valid", harness.demux.streamIds)
        harness.demux.connectionLost()


def _asWebsocketMessage(frame: bytes) -> bytes:
    return serverFrame(0x2, frame)


class WebsocketFuzzTests(SynchronousTestCase):
    """Raw bytes off the TCP connection into the real relay protocol (autobahn + demux)."""

    def setUp(self) -> None:
        self.watch = _FailureWatch(self)

    def tearDown(self) -> None:
        self.assertEqual(self.watch.failures, [])

    def connect(self) -> tuple[Any, Any, Clock]:
        clock = Clock()
        endpoints = _Endpoints(clock, [])
        config = RemoteConfig.fromInputs("http://r.example", "x", environ={TOKEN_ENV: TOKEN})
        registry = _TimedRegistry(clock)
        service = makeRemoteService(
            clock,
            ExecProcessorFactory(
                SessionRegistry(clock, StubResources, 10.0),
                StubFilesystem(),
                methods=buildRegistry(),
            ),
            config,
            http=StubTreq(registry.resource()),
            endpointFor=endpoints,
        )
        service.startService()
        transport = endpoints.open[0]
        return service, transport, clock

    @settings(FUZZ, max_examples=100)
    @given(
        st.lists(st.binary(max_size=200) | frames.map(lambda f: serverFrame(0x2, f)), max_size=8)
    )
    def test_rawBytesNeverRaise(self, chunks: list[bytes]) -> None:
        service, transport, clock = self.connect()
        try:
            for chunk in chunks:
                if transport.lost:
                    break
                transport.protocol.dataReceived(chunk)  # must not raise
        finally:
            stopOnClock(service, clock)
