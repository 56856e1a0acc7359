"""Sans-IO demux: per-stream processors, reset, connection loss, and isolation of bad input."""

from __future__ import annotations

import json
from typing import Any, cast

from twisted.logger import ILogObserver, LogEvent, formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from twisted_exec.executor.core.interfaces import IJsonRpcProcessor, IMessageSink, IProcessorFactory
from twisted_exec.executor.transports.relay.demux import RelayDemux
from twisted_exec.wire import relay_pb2
from twisted_exec.wire.frames import Data, decodeFrame, encodeData, encodeReset, encodeResume


@implementer(IJsonRpcProcessor)
class EchoProcessor:
    """Stands in for the real processor: answers every request with its params.

    ``{"method": "close"}`` closes the sink (like session-killing input); ``{"method": "boom"}``
    raises; non-JSON is dropped, as the relay processor does with ``parseErrorContext=None``.
    """

    def __init__(self, name: int) -> None:
        self.name = name
        self.sink: IMessageSink | None = None
        self.received: list[bytes] = []
        self.lost = 0

    def makeConnection(self, sink: IMessageSink) -> None:
        self.sink = sink

    def messageReceived(self, payload: bytes) -> None:
        self.received.append(payload)
        assert self.sink is not None
        try:
            message = json.loads(payload)
        except ValueError:
            return
        if message.get("method") == "boom":
            raise RuntimeError("processor exploded")
        if message.get("method") == "close":
            self.sink.loseConnection()
            return
        if "id" in message:
            result = {"echo": message.get("params"), "processor": self.name}
            self.sink.sendMessage(json.dumps({"id": message["id"], "result": result}).encode())

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def connectionLost(self) -> None:
        self.lost += 1

    def closeSession(self) -> None:
        self.connectionLost()


@implementer(IProcessorFactory)
class EchoFactory:
    def __init__(self) -> None:
        self.built: list[EchoProcessor] = []
        self.contexts: list[str | None] = []

    def buildProcessor(self, parseErrorContext: str | None) -> IJsonRpcProcessor:
        self.contexts.append(parseErrorContext)
        processor = EchoProcessor(len(self.built))
        self.built.append(processor)
        return processor


def request(streamId: str, ident: int, params: Any = None, seq: int = 0) -> bytes:
    body = {"id": ident, "method": "echo", "params": params}
    return encodeData(streamId, seq, json.dumps(body).encode())


def captureLogs(test: TestCase) -> list[str]:
    lines: list[str] = []

    def observer(event: LogEvent) -> None:
        text = formatEvent(event)
        if text:
            lines.append(text)

    globalLogPublisher.addObserver(cast(ILogObserver, observer))
    test.addCleanup(globalLogPublisher.removeObserver, cast(ILogObserver, observer))
    return lines


class DemuxTests(TestCase):
    def setUp(self) -> None:
        self.sent: list[bytes] = []
        self.factory = EchoFactory()
        self.demux = RelayDemux(self.factory, self.sent.append)
        self.logs = captureLogs(self)

    def replies(self) -> list[tuple[str, int, dict[str, Any]]]:
        out = []
        for raw in self.sent:
            event = decodeFrame(raw)
            assert isinstance(event, Data)
            out.append((event.streamId, event.seq, json.loads(event.payload)))
        return out

    def test_processorPerStreamOnFirstData(self) -> None:
        self.demux.frameReceived(encodeResume("a"))
        self.assertEqual(self.factory.built, [])
        self.demux.frameReceived(request("a", 1, "x"))
        self.demux.frameReceived(request("b", 1, "y"))
        self.demux.frameReceived(request("a", 2, "z"))
        self.assertEqual(self.factory.contexts, [None, None])
        self.assertEqual(
            self.replies(),
            [
                ("a", 0, {"id": 1, "result": {"echo": "x", "processor": 0}}),
                ("b", 0, {"id": 1, "result": {"echo": "y", "processor": 1}}),
                ("a", 1, {"id": 2, "result": {"echo": "z", "processor": 0}}),
            ],
        )
        self.assertEqual(self.demux.streamIds, frozenset({"a", "b"}))

    def test_resetDetachesOnlyThatStream(self) -> None:
        self.demux.frameReceived(request("a", 1))
        self.demux.frameReceived(request("b", 1))
        a, b = self.factory.built
        self.demux.frameReceived(encodeReset("a", "harness gone"))
        self.assertEqual((a.lost, b.lost), (1, 0))
        self.assertEqual(self.demux.streamIds, frozenset({"b"}))
        # a detached sink writes nothing
        assert a.sink is not None
        a.sink.sendMessage(b'{"late":true}')
        self.demux.frameReceived(request("b", 2))
        self.assertEqual([r[:2] for r in self.replies()], [("a", 0), ("b", 0), ("b", 1)])
        self.assertTrue(any("reset: harness gone" in line for line in self.logs), self.logs)

    def test_reusedIdIsFreshSessionFromSeqZero(self) -> None:
        self.demux.frameReceived(request("a", 1))
        self.demux.frameReceived(request("a", 2))
        self.demux.frameReceived(encodeReset("a", "r"))
        self.demux.frameReceived(request("a", 3))
        self.assertEqual(len(self.factory.built), 2)
        self.assertEqual(
            [(r[1], r[2]["result"]["processor"]) for r in self.replies()], [(0, 0), (1, 0), (0, 1)]
        )

    def test_connectionLostDetachesAll(self) -> None:
        self.demux.frameReceived(request("a", 1))
        self.demux.frameReceived(request("b", 1))
        self.demux.connectionLost()
        self.assertEqual([p.lost for p in self.factory.built], [1, 1])
        self.demux.connectionLost()
        self.assertEqual([p.lost for p in self.factory.built], [1, 1])
        # frames after the loss are ignored
        self.demux.frameReceived(request("c", 1))
        self.assertEqual(len(self.factory.built), 2)

    def test_processorClosesItsStream(self) -> None:
        """Session-killing input: connectionLost after the call returns, then a fresh session."""
        self.demux.frameReceived(request("a", 1))
        first = self.factory.built[0]
        self.demux.frameReceived(encodeData("a", 1, b'{"method":"close"}'))
        self.assertEqual(first.lost, 1)
        self.assertEqual(self.demux.streamIds, frozenset())
        self.demux.frameReceived(request("a", 2))
        self.assertEqual(len(self.factory.built), 2)
        self.assertEqual(self.replies()[-1][:2], ("a", 0))

    def test_processorFailureStaysInItsStream(self) -> None:
        self.demux.frameReceived(encodeData("a", 0, b'{"method":"boom"}'))
        self.demux.frameReceived(request("b", 1))
        self.demux.frameReceived(request("a", 2))
        self.assertEqual([r[:2] for r in self.replies()], [("b", 0), ("a", 0)])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_invalidFramesDroppedWithLogLine(self) -> None:
        self.demux.frameReceived(request("a", 1))
        bad = [
            b"\xff\xff",
            b"",
            relay_pb2.RelayMessageFrame(version=2, stream_id="a").SerializeToString(),
            encodeData("", 0, b"{}"),
            encodeData(" a", 0, b'{"id":9,"method":"x"}'),
            encodeData("a", 0, b""),
            encodeReset("a", ""),
            relay_pb2.RelayMessageFrame(version=1, stream_id="a").SerializeToString(),
        ]
        for raw in bad:
            self.demux.frameReceived(raw)
        self.demux.frameReceived(request("a", 2))
        self.assertEqual([r[2]["id"] for r in self.replies()], [1, 2])
        self.assertEqual(self.factory.built[0].lost, 0)
        dropped = [line for line in self.logs if line.startswith("invalid relay frame dropped")]
        self.assertEqual(len(dropped), len(bad), self.logs)

    def test_nonJsonPayloadReachesProcessor(self) -> None:
        """The processor (built with parseErrorContext=None) decides to drop it."""
        self.demux.frameReceived(encodeData("a", 0, b"not json"))
        self.assertEqual(self.factory.built[0].received, [b"not json"])
        self.assertEqual(self.sent, [])

    def test_unknownStreamControlFramesDropped(self) -> None:
        self.demux.frameReceived(encodeReset("zz", "nothing"))
        self.demux.frameReceived(encodeResume("zz"))
        self.assertEqual(self.factory.built, [])
        self.assertTrue(any("unknown stream 'zz'" in line for line in self.logs), self.logs)

    def test_controlFramesOnKnownStreamIgnored(self) -> None:
        self.demux.frameReceived(request("a", 1))
        for body in (
            {"ack_frame": relay_pb2.RelayAck()},
            {"heartbeat": relay_pb2.RelayHeartbeat()},
            {"resume": relay_pb2.RelayResume(next_seq=3)},
        ):
            raw = relay_pb2.RelayMessageFrame(version=1, stream_id="a", **body).SerializeToString()
            self.demux.frameReceived(raw)
        self.assertEqual(len(self.sent), 1)
        self.assertEqual(self.factory.built[0].lost, 0)
