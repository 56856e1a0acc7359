"""``--concurrent-requests N``: up to N requests of one connection in flight (0.171's option).

With the default (1) a connection's requests are handled one at a time, in arrival order, so a
long-polling ``process/read`` holds back everything behind it. With N, up to N are in flight and
replies leave as they complete, out of order, as the 0.171 reference does (checked on the
binary: with ``--concurrent-requests 4`` an ``fs/getMetadata`` sent after a waiting
``process/read`` is answered first; with the default it waits).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from tests.test_processor import INIT, INITIALIZED, FakeFileSystem, FakeResources, req
from twisted_exec.executor.core.processor import ExecProcessor, ExecProcessorFactory
from twisted_exec.executor.core.session import SessionRegistry
from twisted_exec.executor.options import ExecutorOptions

from .helpers import RecordingSink


class ConcurrentRequestsTests(SynchronousTestCase):
    def ready(self, concurrent: int) -> tuple[ExecProcessor, RecordingSink, Any]:
        registry = SessionRegistry(Clock(), FakeResources, ttl=10.0)
        factory = ExecProcessorFactory(
            registry, FakeFileSystem(), concurrentRequests=concurrent
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
        self.assertEqual([m["id"] for m in sink.take()], [2, 4])
        processes.pendingReads[3].callback({"chunks": []})
        self.assertEqual([m["id"] for m in sink.take()], [5, 6])

    def test_pausedConnectionStartsNothingNew(self) -> None:
        processor, sink, processes = self.ready(4)
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
