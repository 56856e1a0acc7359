"""Flow control: a slow websocket reader pauses process output at its source.

Unit tests drive the processor and the process table with fakes; the integration test pauses a
real client's reading over loopback while a real child writes 20 MB, and checks that the
executor's write buffer stays bounded and that every byte then arrives intact and in order.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from tests.support.fakes import PathOnlyFilesystem, StubResources
from tests.support.local import serveOnLoopback
from tests.support.waiting import pollUntil
from twisted_exec.compat.params import ExecParams
from twisted_exec.executor.core.processor import ExecProcessor
from twisted_exec.executor.core.session import SessionRegistry
from twisted_exec.executor.methods import buildRegistry
from twisted_exec.executor.resources.processes import ProcessTable
from twisted_exec.executor.service import ExecutorService, LocalWebSocketService
from twisted_exec.testing.soak.slow import WRITER  # writes patternBlock(0), patternBlock(1), ...
from twisted_exec.testing.wsclient import connectJsonRpc

from .helpers import RecordingSink, meterWriteBuffer

TIMEOUT = 60

#: Twisted's FileDescriptor.bufferSize: the transport pauses its producer above this.
HIGH_WATER = 64 * 1024
#: What the executor may hold in a connection's write buffer: the high-water mark plus the
#: messages written in the reactor turn that crossed it (one ~11 KB output notification per
#: process with pending output), with room to spare. Without flow control this test holds ~27 MB.
BOUND = 256 * 1024


def patternBlock(index: int) -> bytes:
    """64 KiB whose content says where it belongs, so reordering or loss is visible."""
    return index.to_bytes(4, "big") * 16384


class FakeResources(StubResources):
    """No processes, no HTTP: records the pauses and resumes the processor forwards."""

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self.processes = None
        self.http = None
        self.calls: list[str] = []

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")


class ProcessorFlowControlTests(TestCase):
    """The processor holds requests back while paused and forwards the pause to its session."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.registry = SessionRegistry(self.clock, FakeResources, ttl=10.0)
        self.filesystem = PathOnlyFilesystem()
        self.processor = ExecProcessor(
            self.registry, self.filesystem, "ctx", methods=buildRegistry()
        )
        self.sink = RecordingSink()
        self.processor.makeConnection(self.sink)
        self.processor.messageReceived(
            b'{"id":1,"method":"initialize","params":{"clientName":"t"}}'
        )
        self.processor.messageReceived(b'{"method":"initialized"}')
        self.resources: FakeResources = self.processor.session.resources  # type: ignore[union-attr]
        self.sink.take()

    def test_pauseHoldsRequestsBack(self) -> None:
        self.processor.pauseProducing()
        self.processor.messageReceived(b'{"id":2,"method":"fs/getMetadata","params":{"path":"/"}}')
        self.assertEqual(self.sink.take(), [])
        self.processor.resumeProducing()
        self.assertEqual(self.sink.take(), [{"id": 2, "result": {"path": "/"}}])

    def test_pauseForwardedOnce(self) -> None:
        self.processor.pauseProducing()
        self.processor.pauseProducing()
        self.processor.resumeProducing()
        self.processor.resumeProducing()
        self.assertEqual(self.resources.calls, ["pause", "resume"])

    def test_detachWhilePausedResumes(self) -> None:
        """A detached session's processes run on (output retained), as the reference's do."""
        self.processor.pauseProducing()
        self.processor.connectionLost()
        self.assertEqual(self.resources.calls, ["pause", "resume"])
        self.assertFalse(self.resources.closed)

    def test_sessionCreatedWhilePausedStartsPaused(self) -> None:
        processor = ExecProcessor(self.registry, self.filesystem, "ctx", methods=buildRegistry())
        processor.makeConnection(RecordingSink())
        processor.messageReceived(b'{"id":1,"method":"initialize","params":{"clientName":"t"}}')
        # initialize was handled; the transport pauses before the next request.
        processor.pauseProducing()
        resources: FakeResources = processor.session.resources  # type: ignore[union-attr]
        self.assertEqual(resources.calls, ["pause"])


def _execParams(processId: str, argv: list[str]) -> ExecParams:
    return ExecParams(
        processId=processId,
        argv=argv,
        cwd=os.getcwd(),
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        tty=False,
    )


class ProcessTablePauseTests(TestCase):
    """Real processes: a paused table reads nothing; its processes exit in order after resume."""

    timeout = 30

    def setUp(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.waiters: list[tuple[Any, Deferred[None]]] = []
        self.table = ProcessTable(reactor, self._notify)
        self.addCleanup(self.table.killAll)

    def _notify(self, method: str, params: dict[str, Any]) -> None:
        self.events.append((method, params))
        for predicate, d in list(self.waiters):
            if predicate():
                self.waiters.remove((predicate, d))
                d.callback(None)

    def until(self, predicate: Any) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        if predicate():
            d.callback(None)
        else:
            self.waiters.append((predicate, d))
        return d.addTimeout(20, reactor)

    def poll(self, predicate: Any) -> Deferred[None]:
        """Bounded poll of state that produces no notification."""
        return pollUntil(predicate, 0.01, 20)

    def test_startedWhilePausedReadsNothingUntilResumed(self) -> Any:
        async def go() -> None:
            self.table.pauseAll()
            await self.table.start(_execParams("p", ["sh", "-c", "printf hello; exit 4"]))
            entry = self.table._entries["p"]
            # The child exits; while paused its output stays in the pipe and no event is sent.
            await self.poll(lambda: entry.isReaped)
            await self.poll(lambda: entry.state == "drainHeld")
            self.assertEqual(self.events, [])
            self.table.resumeAll()
            await self.until(lambda: any(m == "process/closed" for m, _ in self.events))
            methods = [m for m, _ in self.events]
            self.assertEqual(methods, ["process/output", "process/exited", "process/closed"])
            self.assertEqual(base64.b64decode(self.events[0][1]["chunk"]), b"hello")
            self.assertEqual(self.events[1][1]["exitCode"], 4)

        return ensureDeferred(go())

    def test_killAllWhilePausedEndsTheProcess(self) -> Any:
        """A paused pipe never sees EOF; killAll resumes so the process ends and its fds close."""

        async def go() -> None:
            await self.table.start(_execParams("p", ["sh", "-c", "yes"]))
            self.table.pauseAll()
            self.table.killAll()
            await self.until(lambda: any(m == "process/closed" for m, _ in self.events))
            self.assertFalse(self.table.paused)
            self.assertEqual(self.table.runningCount, 0)

        return ensureDeferred(go())


class SlowReaderTests(TestCase):
    """A real websocket client that stops reading while a child writes 20 MB."""

    timeout = TIMEOUT

    def setUp(self) -> None:
        self.top, self.local = serveOnLoopback(self)

    def test_slowReaderBoundsExecutorBuffer(self) -> Any:
        blocks = 320  # 20 MiB
        expected = hashlib.sha256(b"".join(patternBlock(i) for i in range(blocks))).hexdigest()

        async def go() -> None:
            assert self.local.url is not None
            client = await connectJsonRpc(reactor, self.local.url)
            self.addCleanup(lambda: client.abort() if not client.closed.called else None)
            await client.handshake()
            (server,) = self.local.factory.connections
            transport: Any = server.transport
            peak = meterWriteBuffer(self, transport)

            client.protocol.transport.pauseProducing()  # the slow reader: stop reading
            client.send(
                {
                    "id": 100,
                    "method": "process/start",
                    "params": {
                        "processId": "flood",
                        "argv": [sys.executable, "-c", WRITER, str(blocks)],
                        "cwd": os.getcwd(),
                        "env": {"PATH": os.environ.get("PATH", "")},
                        "tty": False,
                    },
                }
            )
            session = next(iter(self.top.executor.registry._sessions.values()))
            table = session.resources.processes

            # Wait until the executor paused the child and its output stopped moving.
            await _poll(_pausedAndStalled(table, "flood"), 0.01)
            entry = table._entries["flood"]
            self.assertFalse(entry.isReaped, "the child finished: it was never held back")
            self.assertLess(peak[0], BOUND)
            assert server.backpressure is not None
            self.assertGreaterEqual(server.backpressure.pauses, 1)

            received = hashlib.sha256()
            total = [0]
            nextSeq = [1]
            done: Deferred[None] = Deferred()

            def onNote(note: Any) -> None:
                if note.get("id") == 100:
                    return
                params = note["params"]
                self.assertEqual(params["seq"], nextSeq[0])
                nextSeq[0] += 1
                if note["method"] == "process/output":
                    self.assertEqual(params["stream"], "stdout")
                    data = base64.b64decode(params["chunk"])
                    received.update(data)
                    total[0] += len(data)
                elif note["method"] == "process/closed":
                    done.callback(None)

            # Take every message as it arrives, in arrival order (the queue would hold 20 MB).
            client.notifications.put = onNote  # type: ignore[method-assign,assignment]
            client.protocol.transport.resumeProducing()
            await done
            self.assertEqual(total[0], blocks * 65536)
            self.assertEqual(received.hexdigest(), expected)
            self.assertLess(peak[0], BOUND)
            self.assertFalse(table.paused)

        return ensureDeferred(go()).addTimeout(TIMEOUT, reactor)


class StalledPeerShutdownTests(TestCase):
    """Stopping the service does not wait forever for a peer that stopped reading."""

    timeout = TIMEOUT

    def test_stopAbortsAStalledConnection(self) -> Any:
        top = ExecutorService(reactor, ttl=10.0)
        local = LocalWebSocketService(reactor, top.executor.processorFactory, "ws://127.0.0.1:0")
        local.closeTimeout = 0.5
        local.setServiceParent(top)
        top.startService()

        async def go() -> None:
            assert local.url is not None
            client = await connectJsonRpc(reactor, local.url)
            self.addCleanup(lambda: client.abort() if not client.closed.called else None)
            await client.handshake()
            client.protocol.transport.pauseProducing()
            client.send(
                {
                    "id": 100,
                    "method": "process/start",
                    "params": {
                        "processId": "yes",
                        "argv": ["yes"],
                        "cwd": os.getcwd(),
                        "env": {"PATH": os.environ.get("PATH", "")},
                        "tty": False,
                    },
                }
            )
            (server,) = local.factory.connections
            table = next(iter(top.executor.registry._sessions.values())).resources.processes
            await _poll(_pausedAndStalled(table, "yes"), 0.01)
            began = reactor.seconds()  # type: ignore[attr-defined]
            await top.stopService()
            # Whether the kernel still took the close frame or we aborted after closeTimeout
            # depends on its buffers; either way the stop must not hang.
            self.assertLess(reactor.seconds() - began, 5.0)  # type: ignore[attr-defined]
            # An aborted transport reports disconnected one reactor turn after abortConnection().
            await _poll(lambda: bool(server.transport.disconnected), 0.01)  # type: ignore[union-attr]
            self.assertEqual(len(top.executor.registry), 0)
            # killed while paused: resumed, so its pipes reach EOF and the process ends
            await _poll(lambda: table.runningCount == 0, 0.01)

        return ensureDeferred(go()).addTimeout(TIMEOUT, reactor)


def _poll(predicate: Any, interval: float) -> Deferred[None]:
    return pollUntil(predicate, interval, 30)


def _pausedAndStalled(table: Any, processId: str) -> Callable[[], bool]:
    """A predicate: the executor paused ``processId`` and its output stopped moving (the same
    last sequence number over 20 checks)."""
    progress: list[int] = []

    def stalled() -> bool:
        entry = table._entries.get(processId)
        if entry is None or not table.paused:
            return False
        progress.append(entry.buffer.lastSeq)
        return len(progress) >= 20 and progress[-1] == progress[-20]

    return stalled
