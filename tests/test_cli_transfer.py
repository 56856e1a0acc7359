"""``codex-exec cp`` in blocks (twisted_exec.cli.transfer) against the real Codex 0.171 executor.

The block methods' shapes are the 0.171 binary's (probed); the test runs it on a local
websocket (skipped when ``scripts/fetch_codex.sh`` has not fetched it). A session without
``fs/open`` makes ``download``/``upload`` answer False so the caller can fall back.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from tests.support.reference import listeningReference
from twisted_exec.cli import transfer
from twisted_exec.harness.errors import CallError
from twisted_exec.testing.wsclient import JsonRpcError, connectJsonRpc

ROOT = Path(__file__).resolve().parent.parent


class _Session:
    """The slice of ExecSession that transfer uses, over a local JSON-RPC websocket."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[str] = []
        self.inFlight = 0
        self.peakInFlight = 0

    def call(self, method: str, params: Any = None) -> Deferred[Any]:
        self.calls.append(method)
        self.inFlight += 1
        self.peakInFlight = max(self.peakInFlight, self.inFlight)

        def done(result: Any) -> Any:
            self.inFlight -= 1
            if isinstance(result, Failure) and result.check(JsonRpcError):
                error: Any = result.value
                raise CallError(method, error.code, error.message)
            return result

        d: Deferred[Any] = self.client.call(method, params)
        return d.addBoth(done)


def uri(path: str) -> str:
    return "file://" + path


def bounded(d: Any, seconds: float = 30) -> Any:
    if not isinstance(d, Deferred):
        d = Deferred.fromCoroutine(d)
    return d.addTimeout(seconds, reactor)


class BlockTransferAgainstReference(TestCase):
    timeout = 120

    async def startReference(self) -> _Session:
        url = await listeningReference(self, timeout=30)
        client = await bounded(connectJsonRpc(reactor, url))
        self.addCleanup(client.abort)
        await bounded(client.handshake())
        return _Session(client)

    async def test_uploadThenDownloadSameBytes(self) -> None:
        session = await self.startReference()
        size = 5 * transfer.BLOCK_BYTES + 12345  # several blocks and a short last one
        payload = os.urandom(size)
        source = io.BytesIO(payload)
        target = os.path.abspath(self.mktemp())

        async def read(n: int) -> bytes:
            return source.read(n)

        up = transfer.Progress(Clock(), "up", size, io.StringIO(), enabled=False)
        self.assertTrue(await bounded(transfer.upload(session, uri(target), read, up)))
        self.assertEqual(up.done, size)
        self.assertEqual(Path(target).read_bytes(), payload)
        self.assertEqual(session.calls.count("fs/writeBlock"), 6)
        self.assertGreater(session.peakInFlight, 2)  # pipelined, not one call at a time

        received: list[bytes] = []

        async def write(data: bytes) -> None:
            received.append(data)

        session.calls.clear()
        self.assertTrue(await bounded(transfer.download(session, uri(target), write)))
        got = b"".join(received)
        self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(payload).hexdigest())
        self.assertEqual(session.calls[0], "fs/open")
        self.assertEqual(session.calls[-1], "fs/close")

    async def test_emptyFileBothWays(self) -> None:
        session = await self.startReference()
        target = os.path.abspath(self.mktemp())
        Path(target).write_bytes(b"old content")

        async def nothing(n: int) -> bytes:
            return b""

        self.assertTrue(await bounded(transfer.upload(session, uri(target), nothing)))
        self.assertEqual(Path(target).read_bytes(), b"")  # replace truncates
        received: list[bytes] = []

        async def write(data: bytes) -> None:
            received.append(data)

        self.assertTrue(await bounded(transfer.download(session, uri(target), write)))
        self.assertEqual(received, [])
        self.assertEqual(session.calls.count("fs/readBlock"), 1)

    async def test_missingFileNamesTheError(self) -> None:
        session = await self.startReference()
        missing = os.path.abspath(self.mktemp())

        async def write(data: bytes) -> None:
            raise AssertionError("no data expected")

        with self.assertRaises(CallError) as caught:
            await bounded(transfer.download(session, uri(missing), write))
        self.assertEqual(caught.exception.code, -32004)


class _NoBlocks:
    def call(self, method: str, params: Any = None) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        d.errback(CallError(method, -32601, f"unknown method {method}"))
        return d


class FallbackAndProgressTests(TestCase):
    async def test_noOpenMeansFallback(self) -> None:
        async def write(data: bytes) -> None:
            raise AssertionError("nothing to write")

        async def read(n: int) -> bytes:
            raise AssertionError("nothing to read")

        self.assertFalse(await transfer.download(_NoBlocks(), "/x", write))
        self.assertFalse(await transfer.upload(_NoBlocks(), "/x", read))

    def test_progressBarOnATerminalOnly(self) -> None:
        clock = Clock()
        out = io.StringIO()
        bar = transfer.Progress(clock, "cp", 4 << 20, out, enabled=True)
        bar.advance(1 << 20)
        clock.advance(0.05)
        bar.advance(1 << 20)  # within 0.1 s of the last draw: not drawn
        clock.advance(0.1)
        bar.advance(2 << 20)
        bar.finish()
        lines = out.getvalue().split("\r")
        self.assertEqual(bar.drawn, 3)
        self.assertIn("100%", lines[-1])
        self.assertIn("4.0/4.0 MiB", lines[-1])
        self.assertTrue(out.getvalue().endswith("\n"))
        quiet = io.StringIO()
        silent = transfer.Progress(clock, "cp", 10, quiet, enabled=False)
        silent.advance(10)
        silent.finish()
        self.assertEqual(quiet.getvalue(), "")
        self.assertIsNotNone(succeed(None))
