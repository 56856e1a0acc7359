"""fs/* never hangs or runs away: FIFOs, devices, growing files, a per-session cap (issue 15).

Round 1 blocked a worker thread on a FIFO forever (ten of them took the whole pool), read
``/dev/zero`` without end (its ``stat`` size is 0) and read a growing file past the limit.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, cast

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList, DeferredSemaphore
from twisted.internet.interfaces import IReactorThreads
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import SynchronousTestCase, TestCase

from twisted_exec.compat import params
from twisted_exec.executor.resources.filesystem import FileSystem
from twisted_exec.executor.resources.fsguard import readRegularFile, writeWholeFile
from twisted_exec.executor.resources.offload import OffloadPool
from twisted_exec.wire.errors import RpcError

REACTOR = cast(IReactorThreads, reactor)


def notAFile(path: str) -> dict[str, Any]:
    return {"code": -32600, "message": f"path `{path}` is not a file"}


def tooLarge(limit: int) -> dict[str, Any]:
    return {"code": -32600, "message": f"file is too large to read: limit is {limit} bytes"}


def asError(err: RpcError) -> dict[str, Any]:
    return {"code": err.code, "message": err.message}


class GuardTests(SynchronousTestCase):
    """The blocking functions, called directly (each bounded: none of them may block)."""

    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp()
        self.fifo = os.path.join(self.tmp, "fifo")
        os.mkfifo(self.fifo)

    def test_fifoReadRefusedAtOnce(self) -> None:
        # Round 1: open() blocks until a writer appears (this test would hang).
        with self.assertRaises(RpcError) as caught:
            readRegularFile(self.fifo, 100)
        self.assertEqual(asError(caught.exception), notAFile(self.fifo))

    def test_devZeroRefused(self) -> None:
        # stat says 0 bytes; round 1 read it until memory ran out.
        with self.assertRaises(RpcError) as caught:
            readRegularFile("/dev/zero", 1 << 20)
        self.assertEqual(asError(caught.exception), notAFile("/dev/zero"))

    def test_fifoWriteRefusedAtOnce(self) -> None:
        with self.assertRaises(RpcError) as caught:
            writeWholeFile(self.fifo, b"x")
        self.assertEqual(asError(caught.exception), notAFile(self.fifo))

    def test_devNullWritable(self) -> None:
        writeWholeFile("/dev/null", b"x")  # as 0.171 (probed)

    def test_directoryKeepsReferenceError(self) -> None:
        with self.assertRaises(IsADirectoryError):
            readRegularFile(self.tmp, 100)

    def test_exactLimitReads(self) -> None:
        path = os.path.join(self.tmp, "f")
        with open(path, "wb") as f:
            f.write(b"x" * 100)
        self.assertEqual(readRegularFile(path, 100), b"x" * 100)
        with self.assertRaises(RpcError) as caught:
            readRegularFile(path, 99)
        self.assertEqual(asError(caught.exception), tooLarge(99))

    def test_growingFileStopsAtLimitPlusOne(self) -> None:
        """A file that grows after the size check is read at most limit + 1 bytes, then refused."""
        path = os.path.join(self.tmp, "grow")
        with open(path, "wb") as f:
            f.write(b"a" * 10)
        reads: list[int] = []
        realRead = os.read

        def growingRead(fd: int, n: int) -> bytes:
            reads.append(n)
            with open(path, "ab") as g:  # it grows by more than it is read, for ever
                g.write(b"b" * (2 * n))
            return realRead(fd, n)

        self.patch(os, "read", growingRead)
        with self.assertRaises(RpcError) as caught:
            readRegularFile(path, 1000)
        self.assertEqual(asError(caught.exception), tooLarge(1000))
        self.assertLessEqual(sum(reads), 1001)


class PoolTests(TestCase):
    """Through FileSystem on the real pool: FIFO reads never take the threads."""

    timeout = 20

    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp()
        self.fifo = os.path.join(self.tmp, "fifo")
        os.mkfifo(self.fifo)
        self.pool = OffloadPool(maxThreads=10)
        self.addCleanup(self._unblock)
        self.fs = FileSystem(REACTOR, threadpool=cast(ThreadPool, self.pool))

    def _unblock(self) -> None:
        # Round 1 leaves ten threads in open(): give each a writer so the test process exits.
        for _ in range(self.pool.threadCount):
            try:
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                break
            os.close(fd)
        self.pool.stop(timeout=1.0)

    async def test_tenFifoReadsLeaveOthersAnswered(self) -> None:
        reads = [
            self.fs.readFile(params.parse(params.FsReadFileParams, {"path": self.fifo}))
            for _ in range(10)
        ]
        outcomes = await DeferredList(reads, consumeErrors=True).addTimeout(5, reactor)
        for ok, value in outcomes:
            self.assertFalse(ok)
            self.assertEqual(asError(cast(Any, value).value), notAFile(self.fifo))
        meta = await self.fs.getMetadata(
            params.parse(params.FsGetMetadataParams, {"path": self.tmp})
        ).addTimeout(5, reactor)
        self.assertTrue(meta["isDirectory"])


class _GatedFileSystem:
    """Records the fs calls that reached the pool (``getMetadata`` never answers by itself)."""

    def __init__(self) -> None:
        self.calls: list[Deferred[dict[str, Any]]] = []

    def getMetadata(self, p: Any) -> Deferred[dict[str, Any]]:
        d: Deferred[dict[str, Any]] = Deferred()
        self.calls.append(d)
        return d


class SessionGateTests(TestCase):
    """A session's fs calls pass its gate: at most ``maxFsInFlight`` reach the pool at once."""

    def test_fsCallsWaitForTheSessionsGate(self) -> None:
        from tests.helpers import RecordingSink
        from twisted_exec.executor.core.limits import Limits
        from twisted_exec.executor.executor import Executor

        executor = Executor(reactor, limits=Limits(maxFsInFlight=2))
        self.addCleanup(executor.shutdown)
        fs = _GatedFileSystem()
        executor.processorFactory.filesystem = fs
        processor = executor.processorFactory.buildProcessor(None)
        processor.makeConnection(RecordingSink())
        self.addCleanup(processor.connectionLost)
        processor.messageReceived(b'{"id":1,"method":"initialize","params":{"clientName":"t"}}')
        processor.messageReceived(b'{"method":"initialized"}')
        assert processor.session is not None
        gate: DeferredSemaphore = cast(Any, processor.session.resources).fsGate
        self.assertEqual(gate.limit, 2)
        # Two calls of this session already hold the pool (e.g. concurrent requests).
        gate.acquire()
        gate.acquire()
        processor.messageReceived(b'{"id":2,"method":"fs/getMetadata","params":{"path":"/"}}')
        self.assertEqual(fs.calls, [])  # waits for the session's gate, not for the pool
        gate.release()
        self.assertEqual(len(fs.calls), 1)
        fs.calls[0].callback({})
        gate.release()
