"""ExecProcessor and SessionRegistry driven directly, with fakes behind the method table."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests.support.fakes import PathOnlyFilesystem, StubProcesses, StubResources
from twisted_exec.executor.core.interfaces import (
    IJsonRpcProcessor,
    IMessageSink,
    IProcessorFactory,
)
from twisted_exec.executor.core.processor import ExecProcessor
from twisted_exec.executor.core.processor_factory import ExecProcessorFactory
from twisted_exec.executor.core.session import Session, SessionRegistry
from twisted_exec.executor.methods import buildRegistry

from .helpers import RecordingSink


class FakeProcesses(StubProcesses):
    """Reads never answer (the test fires them), writes fail."""

    def __init__(self) -> None:
        super().__init__()
        self.pendingReads: list[Deferred[dict[str, Any]]] = []

    def read(self, p: Any, dialect: Any = None) -> Deferred[dict[str, Any]]:
        d: Deferred[dict[str, Any]] = Deferred()
        self.pendingReads.append(d)
        return d

    def write(self, p: Any, writeId: Any = None) -> dict[str, Any]:
        raise RuntimeError("boom")


class FakeResources(StubResources):
    """:class:`FakeProcesses` and no HTTP."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.processes = FakeProcesses()
        self.http = None


def req(id: Any, method: str, params: Any = None) -> bytes:
    message: dict[str, Any] = {"id": id, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode()


INIT = req(1, "initialize", {"clientName": "t"})
INITIALIZED = b'{"method":"initialized"}'


class ProcessorTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.registry = SessionRegistry(self.clock, FakeResources, ttl=10.0)
        self.factory = ExecProcessorFactory(
            self.registry, PathOnlyFilesystem(), methods=buildRegistry()
        )

    def connect(self, context: str | None = "test message") -> tuple[ExecProcessor, RecordingSink]:
        processor = self.factory.buildProcessor(context)
        sink = RecordingSink()
        processor.makeConnection(sink)
        return processor, sink

    def resume(self, sessionId: str) -> tuple[ExecProcessor, RecordingSink]:
        """A new connection whose first message asks to resume ``sessionId``."""
        processor, sink = self.connect()
        processor.messageReceived(
            req(1, "initialize", {"clientName": "t", "resumeSessionId": sessionId})
        )
        return processor, sink

    def ready(self) -> tuple[ExecProcessor, RecordingSink, str]:
        processor, sink = self.connect()
        processor.messageReceived(INIT)
        processor.messageReceived(INITIALIZED)
        sessionId = sink.take()[0]["result"]["sessionId"]
        return processor, sink, sessionId

    def test_unknownMethodsAreTimedAsOther(self) -> None:
        """Request latency is reported per method, but every unknown method under one name:
        a peer inventing names would otherwise grow the metrics by one histogram each."""
        observed: list[str] = []
        self.factory.clock = self.clock
        self.factory.onRequestDone = lambda method, seconds: observed.append(method)
        processor, sink = self.connect()
        processor.messageReceived(INIT)
        processor.messageReceived(INITIALIZED)
        for n in range(3):
            processor.messageReceived(req(10 + n, f"fs/invented{n}", {}))
        self.assertEqual(observed, ["initialize", "other", "other", "other"])
        self.assertEqual(sink.messages[-1]["error"]["code"], -32601)

    def test_interfaces(self) -> None:
        self.assertTrue(verifyObject(IProcessorFactory, self.factory))
        processor, sink = self.connect()
        self.assertTrue(verifyObject(IJsonRpcProcessor, processor))
        self.assertTrue(verifyObject(IMessageSink, sink))

    def test_handshakeErrors(self) -> None:
        processor, sink = self.connect()
        processor.messageReceived(req(1, "process/terminate", {"processId": "a"}))
        processor.messageReceived(req(2, "fs/getMetadata", {"path": "/"}))
        processor.messageReceived(req(3, "initialize", {"clientName": "t"}))
        processor.messageReceived(req(4, "fs/getMetadata", {"path": "/"}))
        processor.messageReceived(req(5, "initialize", {"clientName": "t"}))
        processor.messageReceived(INITIALIZED)
        processor.messageReceived(INITIALIZED)  # a second one is ignored
        processor.messageReceived(req(6, "fs/getMetadata", {"path": "/"}))
        out = sink.take()
        self.assertEqual(
            out[0],
            {
                "error": {
                    "code": -32600,
                    "message": "client must call initialize before using exec methods",
                },
                "id": 1,
            },
        )
        self.assertEqual(
            out[1]["error"]["message"],
            "client must call initialize before using filesystem methods",
        )
        self.assertEqual(set(out[2]["result"]), {"sessionId"})
        self.assertEqual(
            out[3]["error"]["message"],
            "client must send initialized before using filesystem methods",
        )
        self.assertEqual(
            out[4]["error"],
            {"code": -32600, "message": "initialize may only be sent once per connection"},
        )
        self.assertEqual(out[5], {"id": 6, "result": {"path": "/"}})
        self.assertEqual(len(out), 6)

    def test_paramsCheckedBeforeInitializeState(self) -> None:
        processor, sink = self.connect()
        processor.messageReceived(req(1, "process/start", {}))
        self.assertEqual(
            sink.take(),
            [{"error": {"code": -32602, "message": "missing field `processId`"}, "id": 1}],
        )

    def test_unknownMethodAndInitializedAsRequest(self) -> None:
        processor, sink = self.connect()
        processor.messageReceived(req("s", "nope/x", {}))
        processor.messageReceived(req(-3, "initialized"))
        self.assertEqual(
            sink.take(),
            [
                {
                    "error": {
                        "code": -32601,
                        "message": "exec-server stub does not implement `nope/x` yet",
                    },
                    "id": "s",
                },
                {
                    "error": {
                        "code": -32601,
                        "message": "exec-server stub does not implement `initialized` yet",
                    },
                    "id": -3,
                },
            ],
        )

    def test_parseErrorReplyOrDrop(self) -> None:
        processor, sink = self.connect("websocket JSON-RPC message from x")
        processor.messageReceived(b"not json")
        self.assertEqual(
            sink.take(),
            [
                {
                    "error": {
                        "code": -32600,
                        "message": (
                            "failed to parse websocket JSON-RPC message from x: "
                            "expected ident at line 1 column 2"
                        ),
                    },
                    "id": -1,
                }
            ],
        )
        relay, relaySink = self.connect(None)
        relay.messageReceived(b"not json")
        self.assertEqual(relaySink.take(), [])

    def test_sessionKillersGetErrorsAndSessionSurvives(self) -> None:
        processor, sink, _ = self.ready()
        for raw in (
            b'{"id":null,"method":"fs/getMetadata"}',
            b'{"id":1.5,"method":"x"}',
            b'{"method":"bogus"}',
            b'{"id":1,"result":{}}',
            b"[1]",
        ):
            processor.messageReceived(raw)
        processor.messageReceived(req(9, "fs/getMetadata", {"path": "/x"}))
        out = sink.take()
        self.assertEqual([m["id"] for m in out], [-1, -1, -1, -1, -1, 9])
        self.assertEqual(out[2]["error"]["code"], -32601)
        self.assertEqual(out[-1], {"id": 9, "result": {"path": "/x"}})

    def test_initializedBeforeInitialize(self) -> None:
        processor, sink = self.connect()
        processor.messageReceived(INITIALIZED)
        processor.messageReceived(INIT)
        out = sink.take()
        self.assertEqual(out[0]["id"], -1)
        self.assertIn("sessionId", out[1]["result"])

    def test_repliesInRequestOrderBehindAPendingRead(self) -> None:
        processor, sink, sessionId = self.ready()
        processor.messageReceived(req(2, "process/read", {"processId": "a"}))
        processor.messageReceived(req(3, "fs/getMetadata", {"path": "/"}))
        self.assertEqual(sink.take(), [])
        resources = self.registry.get(sessionId).resources  # type: ignore[union-attr]
        resources.processes.pendingReads[0].callback({"chunks": []})
        self.assertEqual([m["id"] for m in sink.take()], [2, 3])

    def test_handlerExceptionIsInternalError(self) -> None:
        processor, sink, _ = self.ready()
        processor.messageReceived(req(2, "process/write", {"processId": "a", "chunk": ""}))
        self.assertEqual(sink.take(), [{"error": {"code": -32603, "message": "boom"}, "id": 2}])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_detachResumeAndExpiry(self) -> None:
        first, _, sessionId = self.ready()
        resources = self.registry.get(sessionId).resources  # type: ignore[union-attr]
        first.connectionLost()
        self.clock.advance(9.9)
        self.assertFalse(resources.closed)
        second, sink = self.resume(sessionId)
        self.assertEqual(sink.take(), [{"id": 1, "result": {"sessionId": sessionId}}])
        self.clock.advance(60)
        self.assertFalse(resources.closed)
        # attached elsewhere
        third, sink3 = self.resume(sessionId)
        self.assertEqual(
            sink3.take()[0]["error"],
            {
                "code": -32600,
                "message": f"session {sessionId} is already attached to another connection",
            },
        )
        # the failed resume leaves the stream free to initialize normally
        third.messageReceived(INIT)
        self.assertIn("sessionId", sink3.take()[0]["result"])
        second.connectionLost()
        self.clock.advance(10)
        self.assertTrue(resources.closed)
        _, sink4 = self.resume(sessionId)
        self.assertEqual(
            sink4.take()[0]["error"], {"code": -32600, "message": f"unknown session id {sessionId}"}
        )

    def test_notificationsFollowTheAttachedTransport(self) -> None:
        first, sink1, sessionId = self.ready()
        session = self.registry.get(sessionId)
        assert session is not None
        session.notify("process/output", {"seq": 1})
        self.assertEqual(sink1.take(), [{"method": "process/output", "params": {"seq": 1}}])
        first.connectionLost()
        session.notify("process/output", {"seq": 2})  # dropped while detached
        _, sink2 = self.resume(sessionId)
        sink2.take()
        session.notify("process/output", {"seq": 3})
        self.assertEqual(sink2.take(), [{"method": "process/output", "params": {"seq": 3}}])
        self.assertEqual(sink1.take(), [])

    def test_closeSessionKillsAtOnce(self) -> None:
        processor, _, sessionId = self.ready()
        resources = self.registry.get(sessionId).resources  # type: ignore[union-attr]
        processor.closeSession()
        self.assertTrue(resources.closed)
        self.assertEqual(len(self.registry), 0)

    def test_lateReplyAfterConnectionLostIsDropped(self) -> None:
        processor, sink, sessionId = self.ready()
        processor.messageReceived(req(2, "process/read", {"processId": "a"}))
        processor.connectionLost()
        resources = self.registry.get(sessionId).resources  # type: ignore[union-attr]
        resources.processes.pendingReads[0].callback({})
        self.assertEqual(sink.take(), [])
