"""Limits with clear errors: streams per relay connection, processes per session, inbound
message size, ``process/read`` response size, ``fs/readFile`` size; and their twistd options."""

from __future__ import annotations

import json
import os
from typing import Any, cast

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import TestCase

from tests.support.local import serveOnLoopback
from tests.support.processes import ProcessTestCase, execParams
from tests.test_relay_demux import EchoFactory, captureLogs, request
from twisted_exec.compat.params import ReadParams, TerminateParams, WriteParams
from twisted_exec.executor.executor import MAX_PROCESSES, Executor, ExecutorLimits
from twisted_exec.executor.methods import buildRegistry
from twisted_exec.executor.options import ExecutorOptions, makeService
from twisted_exec.executor.service import ExecutorService, LocalWebSocketService
from twisted_exec.executor.transports.local_ws import DEFAULT_MAX_MESSAGE_BYTES
from twisted_exec.executor.transports.relay.demux import MAX_STREAMS, RelayDemux
from twisted_exec.executor.transports.relay.registry import TOKEN_ENV
from twisted_exec.testing.wsclient import connectJsonRpc
from twisted_exec.wire.errors import INVALID_REQUEST, RpcError
from twisted_exec.wire.frames import Data, Reset, decodeFrame, encodeData

STREAMS_MESSAGE = "too many streams on this relay connection (limit 2; see --max-streams)"


class OptionTests(TestCase):
    """Every limit is a twistd option with a documented default; nonsense is a usage error."""

    def parse(self, *args: str) -> ExecutorOptions:
        options = ExecutorOptions()
        options.parseOptions(list(args))
        return options

    def test_defaults(self) -> None:
        options = self.parse()
        self.assertEqual(options["max-streams"], MAX_STREAMS)
        self.assertEqual(options["max-processes"], MAX_PROCESSES)
        self.assertEqual(options["max-message-bytes"], DEFAULT_MAX_MESSAGE_BYTES)
        self.assertEqual(options["max-read-bytes"], 0)
        self.assertEqual(options["max-read-file-bytes"], 512 * 1024 * 1024)
        self.assertEqual((MAX_STREAMS, MAX_PROCESSES), (4096, 128))
        self.assertEqual(DEFAULT_MAX_MESSAGE_BYTES, 64 * 1024 * 1024)  # issue 15: one limit

    def test_negativeRefused(self) -> None:
        for name in ("max-streams", "max-processes", "max-read-bytes", "max-read-file-bytes"):
            with self.assertRaises(usage.UsageError) as caught:
                self.parse(f"--{name}", "-1")
            self.assertEqual(str(caught.exception), f"--{name} must be 0 or more, got -1")

    def test_zeroMessageSizeRefused(self) -> None:
        with self.assertRaises(usage.UsageError):
            self.parse("--max-message-bytes", "0")

    def test_notANumber(self) -> None:
        with self.assertRaises(usage.UsageError):
            self.parse("--max-streams", "many")

    def test_localWiring(self) -> None:
        options = self.parse(
            "--max-processes",
            "3",
            "--max-read-bytes",
            "4096",
            "--max-read-file-bytes",
            "0",
            "--max-message-bytes",
            "2048",
        )
        top = makeService(options, MemoryReactorClock())
        assert isinstance(top, ExecutorService)
        limits = top.executor.limits
        self.assertEqual(
            (limits.maxProcesses, limits.maxReadBytes, limits.maxReadFileBytes), (3, 4096, None)
        )
        # 0: no limit of its own; the reply must still fit the message size (issue 15).
        self.assertEqual(top.executor.filesystem.maxReadBytes, limits.readFileLimit())
        (local,) = list(cast(Any, top))
        assert isinstance(local, LocalWebSocketService)
        self.assertEqual(local.factory.maxMessagePayloadSize, 2048)
        self.assertEqual(local.factory.maxFramePayloadSize, 2048)

    def test_stdioWiring(self) -> None:
        options = self.parse("--listen", "stdio", "--max-message-bytes", "999")
        top = makeService(options, MemoryReactorClock())
        (stdio,) = list(cast(Any, top))
        self.assertEqual(stdio.maxLineBytes, 999)  # type: ignore[attr-defined]

    def test_remoteWiring(self) -> None:
        self.patch(os, "environ", {**os.environ, TOKEN_ENV: "tok-LIMITS-secret"})
        options = self.parse(
            "--remote",
            "http://127.0.0.1:1",
            "--executor-id",
            "x",
            "--max-streams",
            "7",
            "--max-message-bytes",
            "4096",
        )
        top = makeService(options, MemoryReactorClock())
        (remote,) = list(cast(Any, top))
        factory = remote.relayFactory  # type: ignore[attr-defined]
        self.assertEqual(factory.maxStreams, 7)
        self.assertEqual(factory.maxMessagePayloadSize, 4096)

    def test_zeroMeansNoLimit(self) -> None:
        self.patch(os, "environ", {**os.environ, TOKEN_ENV: "tok-LIMITS-secret"})
        options = self.parse(
            "--remote", "http://127.0.0.1:1", "--executor-id", "x", "--max-streams", "0"
        )
        top = makeService(options, MemoryReactorClock())
        (remote,) = list(cast(Any, top))
        self.assertIsNone(remote.relayFactory.maxStreams)  # type: ignore[attr-defined]


class StreamLimitTests(TestCase):
    """One stream too many gets an error and a reset; the others never notice."""

    def setUp(self) -> None:
        self.sent: list[bytes] = []
        self.factory = EchoFactory()
        self.demux = RelayDemux(self.factory, self.sent.append, maxStreams=2)
        self.logs = captureLogs(self)

    def take(self) -> list[Any]:
        out: list[Any] = []
        for raw in self.sent:
            event = decodeFrame(raw)
            if isinstance(event, Data):
                out.append((event.streamId, event.seq, json.loads(event.payload)))
            else:
                out.append(event)
        self.sent.clear()
        return out

    def test_refusedWithErrorAndReset(self) -> None:
        self.demux.frameReceived(request("a", 1))
        self.demux.frameReceived(request("b", 1))
        self.take()
        self.demux.frameReceived(request("c", 7))
        error = {"error": {"code": INVALID_REQUEST, "message": STREAMS_MESSAGE}, "id": 7}
        self.assertEqual(self.take(), [("c", 0, error), Reset("c", STREAMS_MESSAGE)])
        self.assertEqual(len(self.factory.built), 2)
        self.assertEqual(self.demux.streamIds, {"a", "b"})
        self.assertEqual(self.demux.refusedStreams, 1)
        self.assertTrue(any("relay stream 'c' refused" in line for line in self.logs))
        # the live streams carry on
        self.demux.frameReceived(request("a", 2, seq=1))
        self.assertEqual([r[0] for r in self.take()], ["a"])

    def test_notificationGetsOnlyTheReset(self) -> None:
        self.demux.frameReceived(request("a", 1))
        self.demux.frameReceived(request("b", 1))
        self.take()
        self.demux.frameReceived(encodeData("c", 0, b'{"method":"initialized"}'))
        self.assertEqual(self.take(), [Reset("c", STREAMS_MESSAGE)])

    def test_roomAgainAfterAReset(self) -> None:
        from twisted_exec.wire.frames import encodeReset

        self.demux.frameReceived(request("a", 1))
        self.demux.frameReceived(request("b", 1))
        self.demux.frameReceived(encodeReset("a", "done"))
        self.take()
        self.demux.frameReceived(request("c", 1))
        [(streamId, seq, reply)] = self.take()
        self.assertEqual((streamId, seq, reply["id"]), ("c", 0, 1))
        self.assertIn("result", reply)

    def test_noLimit(self) -> None:
        demux = RelayDemux(self.factory, self.sent.append, maxStreams=None)
        for i in range(300):
            demux.frameReceived(request(f"s{i}", 1))
        self.assertEqual(len(demux.streamIds), 300)


class ProcessLimitTests(ProcessTestCase):
    async def test_tooManyProcesses(self) -> None:
        table = self.newTable(maxProcesses=2)
        await table.start(execParams("a", ["sleep", "30"]))
        await table.start(execParams("b", ["sleep", "30"]))
        with self.assertRaises(RpcError) as caught:
            await table.start(execParams("c", ["sleep", "30"]))
        self.assertEqual(
            (caught.exception.code, caught.exception.message),
            (
                INVALID_REQUEST,
                "too many processes: this session already runs 2 (limit 2; see --max-processes)",
            ),
        )
        self.assertNotIn("c", table._entries)
        # a process that ended makes room again
        table.terminate(TerminateParams(processId="a"))
        await self.notes.closed("a")
        await table.start(execParams("c", ["true"]))
        await self.notes.closed("c")

    async def test_executorWiresTheLimits(self) -> None:
        executor = Executor(reactor, limits=ExecutorLimits(maxProcesses=5, maxReadBytes=99))
        self.addCleanup(executor.shutdown)
        session = executor.registry.create(lambda method, params: None)
        processes = session.resources.processes  # type: ignore[attr-defined]
        self.assertEqual((processes.maxProcesses, processes.maxReadBytes), (5, 99))


class ReadLimitTests(ProcessTestCase):
    async def test_readCappedByMaxReadBytes(self) -> None:
        table = self.newTable(maxReadBytes=10)
        script = "printf aaaa; sleep 0.1; printf bbbb; sleep 0.1; printf cccc"
        await table.start(execParams("p", ["sh", "-c", script]))
        await self.notes.closed("p")
        self.assertEqual(self.notes.output("p"), b"aaaabbbbcccc")
        first = await table.read(ReadParams(processId="p"))
        self.assertEqual(len(first["chunks"]), 2)  # 8 bytes; a third chunk would pass 10
        rest = await table.read(ReadParams(processId="p", afterSeq=first["nextSeq"] - 1))
        self.assertEqual(len(rest["chunks"]), 1)
        # a larger maxBytes asked by the harness is capped too; a smaller one is honoured
        capped = await table.read(ReadParams(processId="p", maxBytes=1 << 20))
        self.assertEqual(len(capped["chunks"]), 2)
        small = await table.read(ReadParams(processId="p", maxBytes=4))
        self.assertEqual(len(small["chunks"]), 1)


class LocalMessageSizeTests(TestCase):
    """An inbound websocket message over the limit closes that connection with 1009."""

    timeout = 30

    async def test_oversizedMessageClosesWith1009(self) -> None:
        _, local = serveOnLoopback(self, ExecutorService(reactor), maxMessageBytes=1024)
        assert local.url is not None
        client = await connectJsonRpc(reactor, local.url)
        await client.handshake()
        client.sendRaw(json.dumps({"id": 5, "method": "x", "params": "y" * 2000}))
        code = await client.closed.addTimeout(10, reactor)
        self.assertEqual(code, 1009)
        # other connections are unaffected
        other = await connectJsonRpc(reactor, local.url)
        await other.handshake()
        reply = await other.call("fs/getMetadata", {"path": "/"})
        self.assertTrue(reply["isDirectory"])
        await other.close()


class ClosedProcessRetentionTests(ProcessTestCase):
    """Old closed processes shrink to tombstones, so a long session does not grow forever."""

    async def test_oldClosedProcessesTombstoned(self) -> None:
        table = self.newTable(retainClosed=2, maxTombstones=2)
        for n in range(4):
            await table.start(execParams(f"p{n}", ["sh", "-c", f"echo out{n}; exit {n}"]))
            await self.notes.closed(f"p{n}")
            await deferLater(reactor, 0, lambda: None)  # retired right after the notification
        self.assertEqual(sorted(table._entries), ["p2", "p3"])
        self.assertEqual(table.tombstoneCount, 2)
        # the newest keep their output
        kept = await table.read(ReadParams(processId="p3"))
        self.assertEqual(kept["exitCode"], 3)
        self.assertEqual(len(kept["chunks"]), 1)
        # an old one answers as closed, its output gone, seq past its last event
        old = await table.read(ReadParams(processId="p1"))
        self.assertEqual(
            old,
            {
                "chunks": [],
                "nextSeq": 4,  # output 1, exited 2, closed 3
                "exited": True,
                "exitCode": 1,
                "closed": True,
                "failure": None,
            },
        )
        self.assertEqual(
            table.write(WriteParams(processId="p1", chunk=b"")), {"status": "stdinClosed"}
        )
        self.assertEqual(table.terminate(TerminateParams(processId="p1")), {"running": False})
        with self.assertRaises(RpcError) as caught:
            await table.start(execParams("p1", ["true"]))
        self.assertEqual(caught.exception.message, "process p1 already exists")
        # beyond maxTombstones the oldest id is forgotten (and could be used again)
        await table.start(execParams("p4", ["true"]))
        await self.notes.closed("p4")
        await deferLater(reactor, 0, lambda: None)
        self.assertEqual(table.tombstoneCount, 2)
        with self.assertRaises(RpcError) as caught:
            await table.read(ReadParams(processId="p0"))
        self.assertEqual(caught.exception.message, "unknown process id p0")


class QueueLimitTests(TestCase):
    """Messages piling up behind a slow request are bounded per session."""

    def test_requestsBeyondTheQueueGetAnError(self) -> None:
        from twisted.internet.defer import Deferred
        from twisted.internet.task import Clock

        from tests.helpers import RecordingSink
        from tests.support.fakes import StubResources
        from twisted_exec.executor.core.processor import ExecProcessor
        from twisted_exec.executor.core.session import SessionRegistry

        pending: list[Deferred[dict[str, Any]]] = []

        class SlowFilesystem:
            def getMetadata(self, p: Any, withSize: bool = False) -> Deferred[dict[str, Any]]:
                d: Deferred[dict[str, Any]] = Deferred()
                pending.append(d)
                return d

        logs = captureLogs(self)
        registry = SessionRegistry(Clock(), StubResources, ttl=10.0)
        processor = ExecProcessor(
            registry, SlowFilesystem(), "ctx", maxQueued=3, methods=buildRegistry()
        )
        sink = RecordingSink()
        processor.makeConnection(sink)
        processor.messageReceived(b'{"id":0,"method":"initialize","params":{"clientName":"q"}}')
        processor.messageReceived(b'{"method":"initialized"}')
        sink.take()
        for ident in range(1, 6):  # 1 runs, 2-4 wait, 5 is one too many
            body = {"id": ident, "method": "fs/getMetadata", "params": {"path": "/"}}
            processor.messageReceived(json.dumps(body).encode())
        processor.messageReceived(b'{"method":"initialized"}')  # a notification too many
        message = "too many pending messages on this session (limit 3)"
        self.assertEqual(
            sink.take(), [{"error": {"code": INVALID_REQUEST, "message": message}, "id": 5}]
        )
        self.assertTrue(any(f"message dropped: {message}" in line for line in logs))
        while pending:
            pending.pop(0).callback({"ok": True})
        self.assertEqual([m["id"] for m in sink.take()], [1, 2, 3, 4])
