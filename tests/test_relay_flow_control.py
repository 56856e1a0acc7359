"""Flow control on the relay path: a slow rendezvous pauses every stream at its source, streams
take turns when the websocket drains, and a slow peer is not mistaken for a dead one.

Unit tests drive :class:`RelayDemux` and the relay protocol on memory transports and a clock;
the loopback test runs a real executor against a rendezvous that reads at a fixed rate
(:mod:`twisted_exec.testing.slowpeer`) with one stream flooding and another doing requests.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
from typing import Any, cast

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.test_relay_connector import TOKEN as CONNECTOR_TOKEN
from tests.test_relay_connector import _Endpoints, _TimedRegistry, startOnClock
from tests.test_relay_demux import captureLogs, request
from tests.test_relay_protocol import serverFrame
from twisted_exec.executor.core.interfaces import IJsonRpcProcessor, IMessageSink, IProcessorFactory
from twisted_exec.executor.executor import Executor
from twisted_exec.executor.transports.relay.demux import RelayDemux
from twisted_exec.executor.transports.relay.protocol import WRITE_BUFFER_BYTES
from twisted_exec.executor.transports.relay.registry import TOKEN_ENV, RemoteConfig
from twisted_exec.executor.transports.relay.service import makeRemoteService
from twisted_exec.net.backpressure import TransportBackpressure
from twisted_exec.testing.registry import FakeRegistry
from twisted_exec.testing.slowpeer import SlowRendezvous
from twisted_exec.testing.soak import WRITER, PatternChecker, poll
from twisted_exec.wire.frames import encodeData, encodeResume

from .helpers import meterWriteBuffer

TOKEN = "tok-FLOW-s3cret"


@implementer(IJsonRpcProcessor)
class FlowProcessor:
    """Records pause/resume; ``onResume`` runs inside resumeProducing (a queued reply)."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.paused = False
        self.onResume: Any = None
        self.sink: IMessageSink | None = None

    def makeConnection(self, sink: IMessageSink) -> None:
        self.sink = sink

    def messageReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self) -> None:
        self.log.append(f"lost {self.name}")

    def closeSession(self) -> None:
        self.connectionLost()

    def pauseProducing(self) -> None:
        self.paused = True
        self.log.append(f"pause {self.name}")

    def resumeProducing(self) -> None:
        self.paused = False
        self.log.append(f"resume {self.name}")
        if self.onResume is not None:
            self.onResume()


@implementer(IProcessorFactory)
class FlowFactory:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.built: dict[str, FlowProcessor] = {}

    def buildProcessor(self, parseErrorContext: str | None) -> IJsonRpcProcessor:
        name = "abcdefgh"[len(self.built)]
        processor = FlowProcessor(name, self.log)
        self.built[name] = processor
        return processor


class DemuxFlowTests(TestCase):
    def setUp(self) -> None:
        self.factory = FlowFactory()
        self.demux = RelayDemux(self.factory, lambda raw: None)
        for streamId in ("a", "b", "c"):
            self.demux.frameReceived(request(streamId, 1))
        self.log = self.factory.log

    def resumes(self) -> list[str]:
        out = [entry.split()[1] for entry in self.log if entry.startswith("resume")]
        self.log.clear()
        return out

    def test_pauseReachesEveryStream(self) -> None:
        self.demux.pauseProducing()
        self.demux.pauseProducing()  # idempotent
        self.assertEqual(self.log, ["pause a", "pause b", "pause c"])
        self.assertTrue(all(p.paused for p in self.factory.built.values()))

    def test_streamOpenedWhilePausedStartsPaused(self) -> None:
        self.demux.pauseProducing()
        self.demux.frameReceived(request("d", 1))
        self.assertTrue(self.factory.built["d"].paused)
        self.demux.resumeProducing()
        self.assertFalse(self.factory.built["d"].paused)

    def test_resumeRotatesWhoGoesFirst(self) -> None:
        firsts = []
        for _ in range(4):
            self.demux.pauseProducing()
            self.log.clear()
            self.demux.resumeProducing()
            order = self.resumes()
            self.assertEqual(sorted(order), ["a", "b", "c"])
            firsts.append(order[0])
        self.assertEqual(firsts, ["a", "b", "c", "a"])

    def test_resumeStopsWhenAStreamFillsTheWebsocketAgain(self) -> None:
        """The websocket is full again after a's queued reply: b and c wait, and go first next."""
        self.factory.built["a"].onResume = self.demux.pauseProducing
        self.demux.pauseProducing()
        self.log.clear()
        self.demux.resumeProducing()
        self.assertEqual(self.resumes(), ["a"])
        self.assertTrue(self.demux.paused)
        self.assertTrue(self.factory.built["b"].paused)
        self.factory.built["a"].onResume = None
        self.demux.resumeProducing()
        self.assertEqual(self.resumes(), ["b", "c", "a"])

    def test_lossWhilePausedDetachesEveryStream(self) -> None:
        self.demux.pauseProducing()
        self.log.clear()
        self.demux.connectionLost()
        self.assertEqual(self.log, ["lost a", "lost b", "lost c"])
        self.demux.resumeProducing()  # after the loss: nothing to resume
        self.assertEqual(self.log, ["lost a", "lost b", "lost c"])


class ProtocolBackpressureTests(TestCase):
    """The relay protocol on a memory transport: registration, pause, and the pong deadline."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.registry = _TimedRegistry(self.clock)
        self.endpoints = _Endpoints(self.clock, [])
        self.service = startOnClock(
            self, self.clock, FlowFactory(), self.registry, self.endpoints, CONNECTOR_TOKEN
        )
        self.transport = self.endpoints.open[0]
        self.relay = self.transport.protocol

    def receive(self, opcode: int, payload: bytes) -> None:
        self.relay.dataReceived(serverFrame(opcode, payload))

    def test_registeredAsStreamingProducer(self) -> None:
        producer = self.transport.producer
        self.assertIsInstance(producer, TransportBackpressure)
        self.assertTrue(self.transport.streaming)
        self.assertTrue(verifyObject(IPushProducer, producer))

    def test_pausePausesStreamsAndReading(self) -> None:
        producer = cast(TransportBackpressure, self.transport.producer)
        self.receive(0x2, request("s", 1))
        producer.pauseProducing()
        self.assertTrue(self.relay.demux.paused)
        self.assertEqual(self.transport.producerState, "paused")
        producer.resumeProducing()
        self.assertFalse(self.relay.demux.paused)
        self.assertEqual(self.transport.producerState, "producing")
        self.assertEqual(producer.pauses, 1)

    def test_drainingCountsAsLiveness(self) -> None:
        """A rendezvous that reads our buffer out is alive even when it sends nothing."""
        producer = cast(TransportBackpressure, self.transport.producer)
        self.clock.advance(50)
        producer.pauseProducing()
        self.clock.advance(9)
        producer.resumeProducing()  # at t=59: the deadline moves to t=119
        self.clock.advance(55)
        self.assertFalse(self.transport.lost)
        self.clock.advance(6)
        self.assertTrue(self.transport.lost)

    def test_stalledPeerStillDropped(self) -> None:
        """A peer that neither reads nor writes is dropped after the deadline, paused or not."""
        producer = cast(TransportBackpressure, self.transport.producer)
        producer.pauseProducing()
        self.clock.advance(61)
        self.assertTrue(self.transport.lost)


class SlowRendezvousTests(TestCase):
    """A real executor behind a rendezvous reading 12 MB/s: one stream floods, another asks."""

    timeout = 60

    def setUp(self) -> None:
        self.logs = captureLogs(self)
        self.peer = SlowRendezvous(reactor, rate=12e6)
        self.peer.listen()
        self.registry = FakeRegistry(TOKEN, self.peer.executorUrl)
        self.registry.listen(reactor)
        self.executor = Executor(reactor)
        config = RemoteConfig.fromInputs(self.registry.baseUrl, "flow", environ={TOKEN_ENV: TOKEN})
        self.service = makeRemoteService(reactor, self.executor.processorFactory, config)
        self.service.startService()
        self.addCleanup(self.registry.stopListening)
        self.addCleanup(self.peer.stopListening)
        self.addCleanup(self.executor.shutdown)
        self.addCleanup(lambda: self.service.stopService() if self.service.running else None)

    def test_floodPausedAtSourceAndOtherStreamServed(self) -> Any:
        blocks = 256  # 16 MiB: about 1.9 s of reading at 12 MB/s as base64 JSON

        async def go() -> None:
            conn = await self.peer.waitForConnection().addTimeout(10, reactor)
            await poll(reactor, lambda: self.service.endpoint.current is not None, 10)
            relay = self.service.endpoint.current
            assert relay is not None and relay.backpressure is not None
            transport: Any = relay.transport
            # above one turn of process output, so output does not pause every stream each turn
            self.assertEqual(transport.bufferSize, WRITE_BUFFER_BYTES)
            peak = meterWriteBuffer(self, transport)

            checker = PatternChecker()
            replies: dict[tuple[str, int], Deferred[dict[str, Any]]] = {}
            floodClosed: Deferred[None] = Deferred()
            seqs = {"flood": 0, "ask": 0}

            def onFrame(streamId: str, seq: int, payload: bytes) -> None:
                message = json.loads(payload)
                key = (streamId, message.get("id"))
                if key in replies:
                    replies.pop(key).callback(message)
                elif streamId == "flood" and message.get("method") == "process/output":
                    checker.feed(base64.b64decode(message["params"]["chunk"]))
                elif streamId == "flood" and message.get("method") == "process/closed":
                    floodClosed.callback(None)

            conn.onFrame = onFrame

            def call(streamId: str, ident: int, method: str, params: Any) -> Deferred[Any]:
                d: Deferred[dict[str, Any]] = Deferred()
                replies[(streamId, ident)] = d
                body = {"id": ident, "method": method, "params": params}
                conn.sendFrame(encodeData(streamId, seqs[streamId], json.dumps(body).encode()))
                seqs[streamId] += 1
                return d.addTimeout(20, reactor)

            def initialized(streamId: str) -> None:
                conn.sendFrame(encodeData(streamId, seqs[streamId], b'{"method":"initialized"}'))
                seqs[streamId] += 1

            for streamId in ("flood", "ask"):
                conn.sendFrame(encodeResume(streamId))
                await call(streamId, 1, "initialize", {"clientName": "flow"})
                initialized(streamId)
            started = await call(
                "flood",
                2,
                "process/start",
                {
                    "processId": "w",
                    "argv": [sys.executable, "-c", WRITER, str(blocks)],
                    "cwd": os.getcwd(),
                    "env": {"PATH": os.environ.get("PATH", "")},
                    "tty": False,
                },
            )
            self.assertEqual(started["result"], {"processId": "w"})
            # Once the flood flows and is held back, the other stream still gets answers.
            backpressure = relay.backpressure
            self.assertTrue(await poll(reactor, lambda: backpressure.pauses >= 1, 20))
            # Each reply waits only for what is already buffered (our 64 KiB, and the kernel's
            # socket buffers: a few MB on loopback), never for the flood to end.
            total = blocks * 65536
            # Counted in bytes, not timed: what the peer reads between a request and its reply is
            # what was buffered ahead of it (our user-space buffer, the two kernel buffers and
            # the peer's read in flight; ~3.5 MB here), and what flowed while the call was
            # served: at most as much again. The 2 s this replaces were ~24 MB at 12 MB/s.
            executorSocket = transport.getHandle()
            peerSocket = conn._protocol.transport.getHandle()
            for ident in range(2, 5):
                before = conn.bytesRead
                reply = await call("ask", ident, "fs/getMetadata", {"path": os.getcwd()})
                self.assertTrue(reply["result"]["isDirectory"])
                self.assertLess(checker.offset, total, "the flood ended first")
                buffered = (
                    512 * 1024  # our user-space buffer's ceiling, asserted below
                    + executorSocket.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
                    + peerSocket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
                    + 65536
                )
                read = conn.bytesRead - before
                self.assertLess(read, 2 * buffered, f"{read} bytes read, {buffered} buffered")
            await floodClosed.addTimeout(30, reactor)
            self.assertEqual(checker.firstBad, None)
            self.assertEqual(checker.offset, total)
            self.assertGreaterEqual(relay.backpressure.pauses, 1)
            # the relay high-water mark (256 KiB, WRITE_BUFFER_BYTES) + the writes of the turn
            # that crossed it
            self.assertLess(peak[0], 512 * 1024)

        return ensureDeferred(go())
