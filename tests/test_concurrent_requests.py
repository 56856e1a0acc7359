"""``--concurrent-requests N``: up to N requests of one connection in flight (0.171's option).

With the default (1) a connection's requests are handled one at a time, in arrival order, so a
long-polling ``process/read`` holds back everything behind it. With N, up to N are in flight and
replies leave as they complete, out of order, as the 0.171 reference does (checked on the
binary: with ``--concurrent-requests 4`` an ``fs/getMetadata`` sent after a waiting
``process/read`` is answered first; with the default it waits).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.support.fakes import PathOnlyFilesystem
from tests.support.local import connectClient, serveExecutor
from tests.support.reference import listeningReference
from tests.test_processor import INIT, INITIALIZED, FakeResources, req
from twisted_exec.executor.core.processor import ExecProcessor
from twisted_exec.executor.core.processor_factory import ExecProcessorFactory
from twisted_exec.executor.core.session import SessionRegistry
from twisted_exec.executor.executor import Executor, ExecutorLimits
from twisted_exec.executor.methods import buildRegistry
from twisted_exec.executor.options import ExecutorOptions
from twisted_exec.testing.wsclient import JsonRpcClient

from .helpers import RecordingSink


class ConcurrentRequestsTests(SynchronousTestCase):
    def ready(self, concurrent: int) -> tuple[ExecProcessor, RecordingSink, Any]:
        registry = SessionRegistry(Clock(), FakeResources, ttl=10.0)
        factory = ExecProcessorFactory(
            registry, PathOnlyFilesystem(), methods=buildRegistry(), concurrentRequests=concurrent
        )
        processor = factory.buildProcessor("test message")
        sink = RecordingSink()
        processor.makeConnection(sink)
        processor.messageReceived(INIT)
        processor.messageReceived(INITIALIZED)
        sessionId = sink.take()[0]["result"]["sessionId"]
        session = registry.get(sessionId)
        assert session is not None
        return processor, sink, session.resources.processes

    def test_defaultIsOneAtATimeInOrder(self) -> None:
        processor, sink, processes = self.ready(1)
        processor.messageReceived(req(2, "process/read", {"processId": "a"}))
        processor.messageReceived(req(3, "fs/getMetadata", {"path": "/"}))
        processor.messageReceived(req(4, "process/read", {"processId": "b"}))
        self.assertEqual(sink.take(), [])
        self.assertEqual(len(processes.pendingReads), 1)  # the second read is not started
        processes.pendingReads[0].callback({"chunks": []})
        self.assertEqual([m["id"] for m in sink.take()], [2, 3])
        self.assertEqual(len(processes.pendingReads), 2)

    def test_laterRequestsOvertakeAPendingOne(self) -> None:
        processor, sink, processes = self.ready(4)
        processor.messageReceived(req(2, "process/read", {"processId": "a"}))
        processor.messageReceived(req(3, "fs/getMetadata", {"path": "/"}))
        self.assertEqual([m["id"] for m in sink.take()], [3])
        processes.pendingReads[0].callback({"chunks": []})
        self.assertEqual([m["id"] for m in sink.take()], [2])

    def test_atMostNInFlight(self) -> None:
        processor, sink, processes = self.ready(2)
        for i in range(2, 6):
            processor.messageReceived(req(i, "process/read", {"processId": f"p{i}"}))
        processor.messageReceived(req(6, "fs/getMetadata", {"path": "/"}))
        self.assertEqual(len(processes.pendingReads), 2)  # requests 2 and 3
        self.assertEqual(sink.take(), [])
        processes.pendingReads[1].callback({"chunks": [], "n": 3})
        self.assertEqual([m["id"] for m in sink.take()], [3])
        self.assertEqual(len(processes.pendingReads), 3)  # 4 started in the freed slot
        processes.pendingReads[0].callback({"chunks": []})
        processes.pendingReads[2].callback({"chunks": []})
        # 5 (a read) and 6 (answered at once) took the two free slots: 6 overtakes 5
        self.assertEqual([m["id"] for m in sink.take()], [2, 4, 6])
        processes.pendingReads[3].callback({"chunks": []})
        self.assertEqual([m["id"] for m in sink.take()], [5])

    def test_pausedConnectionStartsNothingNew(self) -> None:
        processor, sink, _ = self.ready(4)
        processor.pauseProducing()
        processor.messageReceived(req(2, "fs/getMetadata", {"path": "/"}))
        self.assertEqual(sink.take(), [])
        processor.resumeProducing()
        self.assertEqual([m["id"] for m in sink.take()], [2])


class OptionTests(SynchronousTestCase):
    def parse(self, *argv: str) -> ExecutorOptions:
        options = ExecutorOptions()
        options.parseOptions(["--listen", "ws://127.0.0.1:0", *argv])
        return options

    def test_defaultOne(self) -> None:
        self.assertEqual(self.parse()["concurrent-requests"], 1)
        self.assertEqual(self.parse("--concurrent-requests", "4")["concurrent-requests"], 4)

    def test_refusesZeroAndJunk(self) -> None:
        with self.assertRaises(usage.UsageError) as caught:
            self.parse("--concurrent-requests", "0")
        self.assertIn("--concurrent-requests", str(caught.exception))
        with self.assertRaises(usage.UsageError):
            self.parse("--concurrent-requests", "abc")


TIMEOUT = 15


def bounded(d: Deferred[Any], seconds: float = TIMEOUT) -> Deferred[Any]:
    return d.addTimeout(seconds, reactor)


async def overtakeScenario(
    client: JsonRpcClient, workdir: str, path: Callable[[str], str], waitMs: int
) -> list[Any]:
    """A ``process/read`` that waits (up to ``waitMs``) and an ``fs/getMetadata`` sent after it:
    the ids in the order their replies arrived. ``path`` spells a path (0.171: a file: URI).

    Once ``getMetadata`` is answered the process is terminated, which ends the wait: with
    concurrent requests the read then answers at once, without the order depending on timing."""
    await bounded(Deferred.fromCoroutine(client.handshake()))
    env = {"PATH": "/usr/bin:/bin"}
    start = {"processId": "slow", "argv": ["sleep", "30"], "cwd": path(workdir), "env": env}
    await bounded(client.call("process/start", {**start, "tty": False}))
    order: list[Any] = []
    read = client.call("process/read", {"processId": "slow", "afterSeq": None, "waitMs": waitMs})
    meta = client.call("fs/getMetadata", {"path": path(workdir)})
    read.addCallback(lambda _: order.append("read"))
    meta.addCallback(lambda _: order.append("getMetadata"))
    await bounded(meta)
    terminated = client.call("process/terminate", {"processId": "slow"})
    await bounded(read)
    await bounded(terminated)
    return order


class OverLoopbackTests(TestCase):
    """The same scenario against ours (in-process, real websocket and processes) and 0.171."""

    timeout = 60

    def setUp(self) -> None:
        self.workdir = os.path.abspath(self.mktemp())
        os.makedirs(self.workdir)

    async def ours(self, concurrent: int) -> list[Any]:
        executor = Executor(reactor, limits=ExecutorLimits(concurrentRequests=concurrent))
        self.addCleanup(executor.shutdown)
        service = serveExecutor(self, executor)
        assert service.url is not None
        client = await connectClient(self, service.url, TIMEOUT)
        waitMs = 300 if concurrent == 1 else 10_000
        return await overtakeScenario(client, self.workdir, lambda p: p, waitMs)

    async def test_oursDefaultKeepsOrder(self) -> None:
        self.assertEqual(await self.ours(1), ["read", "getMetadata"])

    async def test_oursWithFourOvertakes(self) -> None:
        self.assertEqual(await self.ours(4), ["getMetadata", "read"])

    async def reference(self, *extra: str) -> list[Any]:
        url = await listeningReference(self, *extra, timeout=TIMEOUT)
        client = await connectClient(self, url, TIMEOUT)
        waitMs = 10_000 if extra else 300
        return await overtakeScenario(client, self.workdir, lambda p: Path(p).as_uri(), waitMs)

    async def test_reference171DefaultKeepsOrder(self) -> None:
        self.assertEqual(await self.reference(), ["read", "getMetadata"])

    async def test_reference171WithFourOvertakes(self) -> None:
        order = await self.reference("--concurrent-requests", "4")
        self.assertEqual(order, ["getMetadata", "read"])
