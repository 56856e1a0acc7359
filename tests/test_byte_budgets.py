"""Every byte budgeted (issue 15): one Limits object; no reply the peer would refuse; stdin,
queue, HTTP bodies and stdio input bounded.

The relay test is the scenario from the issue: a 50 MiB ``fs/readFile`` through a rendezvous
whose message limit is 64 MiB. Round 1 sent the ~70 MB reply, the rendezvous dropped the
executor's websocket and every other stream on it failed.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.helpers import RecordingSink
from tests.support.processes import ENVIRON, Collector, execParams
from tests.support.relay import TestCloudExecutorMixin, startRemoteExecutor
from twisted_exec.compat.params import WriteParams
from twisted_exec.executor.core.limits import (
    READ_FILE_REPLY_OVERHEAD,
    RELAY_FRAME_OVERHEAD,
    Limits,
)
from twisted_exec.executor.executor import Executor
from twisted_exec.executor.resources.processes import ProcessTable, writeBacklog
from twisted_exec.executor.transports.stdio import StdioJsonRpcProtocol
from twisted_exec.wire.errors import RpcError

MiB = 1024 * 1024
TOKEN = "tok-BUDGETS-s3cret"
TIMEOUT = 20


def bounded(d: Deferred[Any], seconds: float = TIMEOUT) -> Deferred[Any]:
    return d.addTimeout(seconds, reactor)


def request(ident: int, method: str, params: Any = None) -> bytes:
    message: dict[str, Any] = {"id": ident, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode()


class LimitsTests(SynchronousTestCase):
    """The derived budgets keep every reply inside the message limit."""

    def test_defaults(self) -> None:
        limits = Limits()
        self.assertEqual(limits.maxMessageBytes, 64 * MiB)  # the rendezvous' and tungstenite's
        self.assertEqual(limits.maxReplyBytes, 64 * MiB - RELAY_FRAME_OVERHEAD)
        self.assertEqual(limits.maxReadFileBytes, 512 * MiB)  # the reference's

    def test_largestReadFileReplyFits(self) -> None:
        for message in (64 * MiB, 128 * MiB, 100_003):
            limits = Limits(maxMessageBytes=message)
            size = limits.readFileLimit()
            reply = (
                request(2**53, "x")[:0]
                + json.dumps(
                    {"id": "i" * 1000, "result": {"dataBase64": "A" * ((size + 2) // 3 * 4)}}
                ).encode()
            )
            self.assertLessEqual(len(reply), limits.maxReplyBytes)
            self.assertGreater(
                size, (message - RELAY_FRAME_OVERHEAD - READ_FILE_REPLY_OVERHEAD) // 2
            )
        self.assertEqual(Limits(maxReadFileBytes=10).readFileLimit(), 10)

    def test_problems(self) -> None:
        limits = Limits(maxMessageBytes=10_000, maxStdinBacklogBytes=100, maxQueuedBytes=50)
        self.assertIsNone(limits.replyProblem(limits.maxReplyBytes))
        self.assertEqual(
            limits.replyProblem(limits.maxReplyBytes + 1),
            f"reply of {limits.maxReplyBytes + 1} bytes exceeds the message limit of "
            f"{limits.maxReplyBytes} bytes (see --max-message-bytes)",
        )
        self.assertIsNone(limits.stdinProblem(60, 40))
        self.assertIsNotNone(limits.stdinProblem(60, 41))
        self.assertIsNone(limits.queueProblem(0, 0, 10**9))  # an empty queue takes one message
        self.assertIsNotNone(limits.queueProblem(1, 40, 11))

    def test_nonsenseRefused(self) -> None:
        with self.assertRaises(ValueError):
            Limits(maxStdinBacklogBytes=0)
        with self.assertRaises(ValueError):
            Limits(maxFsInFlight=11, fsThreads=10)

    def test_executorTakesItsBudgetsFromLimits(self) -> None:
        limits = Limits(maxMessageBytes=1 * MiB, maxHttpBodyBytes=12345, maxFsInFlight=3)
        executor = Executor(reactor, limits=limits)
        self.addCleanup(executor.shutdown)
        self.assertEqual(executor.filesystem.maxReadBytes, limits.readFileLimit())
        session = executor.registry.create(lambda method, params: None)
        self.addCleanup(executor.registry.close, session)
        resources: Any = session.resources
        self.assertEqual(resources.http.maxBufferedBody, 12345)
        self.assertIs(resources.processes.limits, limits)
        self.assertEqual(resources.fsGate.limit, 3)


class ReplyGuardTests(TestCase):
    """A reply over the message limit becomes a JSON-RPC error; the session carries on."""

    timeout = 20

    async def test_oversizedProcessReadBecomesAnError(self) -> None:
        limits = Limits(maxMessageBytes=100_000)
        executor = Executor(reactor, limits=limits)
        self.addCleanup(executor.shutdown)
        processor = executor.processorFactory.buildProcessor(None)
        sink = RecordingSink()
        processor.makeConnection(sink)
        self.addCleanup(processor.connectionLost)
        processor.messageReceived(request(1, "initialize", {"clientName": "t"}))
        processor.messageReceived(b'{"method":"initialized"}')
        start = {
            "processId": "p",
            "argv": ["head", "-c", "300000", "/dev/zero"],
            "cwd": "/",
            "env": {"PATH": ENVIRON["PATH"]},
            "tty": False,
        }
        processor.messageReceived(request(2, "process/start", start))
        for _ in range(500):
            closed = any(m.get("method") == "process/closed" for m in sink.messages)
            if closed:
                break
            await bounded(Deferred.fromCoroutine(_tick()))
        processor.messageReceived(request(3, "process/read", {"processId": "p"}))
        processor.messageReceived(request(4, "process/read", {"processId": "p", "maxBytes": 1}))
        replies = {m["id"]: m for m in sink.messages if "id" in m}
        self.assertEqual(replies[3]["error"]["code"], -32600)
        self.assertIn(
            f"exceeds the message limit of {limits.maxReplyBytes} bytes",
            replies[3]["error"]["message"],
        )
        self.assertEqual(len(replies[4]["result"]["chunks"]), 1)
        self.assertTrue(all(len(raw) <= limits.maxReplyBytes for raw in sink.raw))


async def _tick() -> None:
    from twisted.internet.task import deferLater

    await deferLater(reactor, 0.01, lambda: None)


class RelayReadFileTests(TestCloudExecutorMixin, TestCase):
    """The issue's scenario through the real rendezvous (64 MiB message limit)."""

    timeout = 60
    cloudToken = TOKEN

    async def test_50MiBReadFileIsAnErrorAndOtherStreamsCarryOn(self) -> None:
        startRemoteExecutor(self, self.executor, self.registry.baseUrl, "budgets", TOKEN)
        conn = await bounded(self.rendezvous.waitForConnection(1))
        big = os.path.join(self.tmp, "big")
        with open(big, "wb") as f:
            f.write(os.urandom(1024) * (50 * 1024))  # 50 MiB
        a, b = conn.stream("reader"), conn.stream("other")
        a.resume()
        b.resume()
        await bounded(a.initialize())
        await bounded(b.initialize())
        started = await bounded(
            b.request(
                "process/start",
                {
                    "processId": "p",
                    "argv": ["/bin/sh", "-c", "sleep 0.5; echo still-here"],
                    "cwd": self.tmp,
                    "env": {"PATH": ENVIRON["PATH"]},
                    "tty": False,
                },
            )
        )
        self.assertEqual(started["result"], {"processId": "p"})
        reply = await bounded(a.request("fs/readFile", {"path": big}))
        limit = Limits().readFileLimit()
        self.assertEqual(
            reply["error"],
            {"code": -32600, "message": f"file is too large to read: limit is {limit} bytes"},
        )
        read = await bounded(
            b.request("process/read", {"processId": "p", "afterSeq": 0, "waitMs": 5000})
        )
        output = b"".join(base64.b64decode(c["chunk"]) for c in read["result"]["chunks"])
        self.assertEqual(output, b"still-here\n")
        # The websocket stayed up: no second connection, this one never closed.
        self.assertEqual(len(self.rendezvous.connections), 1)
        self.assertIsNone(conn.closeInfo)


class StdinBudgetTests(TestCase):
    """A 10 MiB flood into a child that never reads its stdin is refused, memory bounded."""

    timeout = 30

    async def test_floodRefused(self) -> None:
        limits = Limits()
        notes = Collector()
        table = ProcessTable(reactor, notes, environ=ENVIRON, limits=limits)

        async def stop() -> None:
            table.killAll()
            await notes.closed("p")  # no reader outlives the test

        self.addCleanup(stop)
        await table.start(execParams("p", ["sleep", "30"], pipeStdin=True))
        chunk = b"x" * MiB
        accepted = 0
        refusal = None
        for _ in range(10):
            try:
                table.write(WriteParams(processId="p", chunk=chunk))
            except RpcError as err:
                refusal = err
                break
            accepted += len(chunk)
        self.assertIsNotNone(refusal)
        assert refusal is not None
        self.assertEqual(refusal.code, -32600)
        self.assertIn(
            f"process stdin backlog would exceed {limits.maxStdinBacklogBytes} bytes",
            refusal.message,
        )
        writer = table._entries["p"].transport.pipes[0]
        self.assertLessEqual(writeBacklog(writer), limits.maxStdinBacklogBytes)
        self.assertLessEqual(accepted, limits.maxStdinBacklogBytes + 64 * 1024 + MiB)


class QueueBytesTests(SynchronousTestCase):
    """Messages waiting behind a slow request are bounded in bytes, not only in count."""

    def test_bytesBudget(self) -> None:
        from twisted.internet.task import Clock

        from tests.support.fakes import PathOnlyFilesystem
        from tests.test_processor import INIT, INITIALIZED, FakeResources
        from twisted_exec.executor.core.processor_factory import ExecProcessorFactory
        from twisted_exec.executor.core.session import SessionRegistry

        registry = SessionRegistry(Clock(), FakeResources, ttl=10.0)
        limits = Limits(maxQueuedBytes=1000)
        from twisted_exec.executor.methods import buildRegistry

        factory = ExecProcessorFactory(
            registry, PathOnlyFilesystem(), methods=buildRegistry(), limits=limits
        )
        processor = factory.buildProcessor(None)
        sink = RecordingSink()
        processor.makeConnection(sink)
        processor.messageReceived(INIT)
        processor.messageReceived(INITIALIZED)
        sink.take()
        processor.messageReceived(request(2, "process/read", {"processId": "p"}))  # never ends
        filler = {"path": "/" + "a" * 400}
        processor.messageReceived(request(3, "fs/getMetadata", filler))
        processor.messageReceived(request(4, "fs/getMetadata", filler))
        processor.messageReceived(request(5, "fs/getMetadata", filler))  # over 1000 bytes
        [refused] = sink.take()
        self.assertEqual(refused["id"], 5)
        self.assertEqual(refused["error"]["code"], -32600)
        self.assertIn("too many pending bytes on this session", refused["error"]["message"])


class _FakeStdio:
    def __init__(self) -> None:
        self.paused = 0
        self.resumed = 0
        self.producer: Any = None

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.producer = producer

    def pauseProducing(self) -> None:
        self.paused += 1

    def resumeProducing(self) -> None:
        self.resumed += 1

    def writeSequence(self, data: list[bytes]) -> None:
        pass

    def loseConnection(self) -> None:
        pass


class _PausableProcessor:
    paused = False

    def makeConnection(self, sink: Any) -> None:
        pass

    def messageReceived(self, payload: bytes) -> None:
        pass

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False

    def connectionLost(self) -> None:
        pass


class StdioInputPausedTests(SynchronousTestCase):
    """stdout full: the processor pauses *and* stdin stops being read (round 1 read on)."""

    def test_backpressurePausesStdin(self) -> None:
        processor = _PausableProcessor()
        protocol = StdioJsonRpcProtocol(processor)  # type: ignore[arg-type]
        transport = _FakeStdio()
        protocol.makeConnection(transport)  # type: ignore[arg-type]
        transport.producer.pauseProducing()
        self.assertTrue(processor.paused)
        self.assertEqual(transport.paused, 1)
        transport.producer.resumeProducing()
        self.assertFalse(processor.paused)
        self.assertEqual(transport.resumed, 1)
