"""Clean shutdown in remote mode: SIGTERM to a real ``twistd codex-executor --remote`` kills
every process group, closes the relay websocket with a close frame (1000) and exits 0 within
5 s, also when the rendezvous has stopped reading."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SkipTest, TestCase

from tests.support.relay import startTestCloud
from tests.support.waiting import pidFromOutput
from twisted_exec.executor.transports.relay.protocol import CLOSE_TIMEOUT
from twisted_exec.testing.executorproc import TWISTD, ExecutorProcess, processesInSessions
from twisted_exec.testing.rendezvous import ExecutorConnection, HarnessStream
from twisted_exec.testing.soak import poll, startParams

TOKEN = "tok-SHUTDOWN-s3cret"


def bounded(d: Deferred[Any], seconds: float = 20) -> Deferred[Any]:
    return d.addTimeout(seconds, reactor)


def pidOf(stream: HarnessStream, processId: str) -> Awaitable[int]:
    return pidFromOutput(lambda: bounded(stream.notifications.get()), processId)


class RemoteSigtermTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        if not TWISTD.exists():
            raise SkipTest(f"no twistd at {TWISTD}")
        self.rendezvous, self.registry = startTestCloud(self, TOKEN)
        self.executor = ExecutorProcess(reactor, self.registry.baseUrl, "shut", TOKEN)
        self.addCleanup(self.executor.kill)

    async def connect(self) -> tuple[ExecutorConnection, HarnessStream]:
        conn: ExecutorConnection = await bounded(self.rendezvous.waitForConnection(1))
        for sig in self.rendezvous.signatures.values():
            self.executor.addSecret(sig)
        stream = conn.stream("s")
        stream.resume()
        await bounded(stream.initialize())
        return conn, stream

    async def sigterm(self, bound: float = 10) -> tuple[int | None, float]:
        began = time.monotonic()
        code = await bounded(self.executor.terminate(), bound)
        return code, time.monotonic() - began

    def assertCleanLog(self) -> None:
        scan = self.executor.scan
        self.assertEqual(scan.errorLines, [], list(scan.tail))
        self.assertEqual(scan.secretLines, 0)

    async def test_sigtermClosesWebsocketKillsGroupsExitsZero(self) -> None:
        conn, stream = await self.connect()
        starts = {
            "plain": (["sh", "-c", "echo pid=$$; exec sleep 1000"], False),
            "grand": (["sh", "-c", "sleep 1000 & echo pid=$!; wait"], False),
            "tty": (["sh", "-c", "echo pid=$$; exec sleep 1000"], True),
        }
        pids = {}
        for processId, (argv, tty) in starts.items():
            params = startParams(processId, argv, "/")
            params["tty"] = tty
            reply = await bounded(stream.request("process/start", params))
            self.assertEqual(reply["result"], {"processId": processId})
            pids[processId] = await pidOf(stream, processId)
        self.assertEqual(len(self.executor.children()), 3)

        code, elapsed = await self.sigterm()
        wasClean, closeCode, reason = await bounded(conn.whenClosed(), 5)
        self.assertEqual(code, 0, list(self.executor.scan.tail))
        self.assertLess(elapsed, 5.0)
        self.assertEqual((closeCode, reason), (1000, "executor shutting down"))
        self.assertTrue(wasClean)
        # every group got SIGKILL before twistd exited (the grandchild too)
        self.assertTrue(await poll(reactor, lambda: not processesInSessions(pids.values()), 5))
        self.assertCleanLog()

    async def test_sigtermWithAStalledRendezvousStillExitsInTime(self) -> None:
        """The close frame cannot leave (nobody reads): aborted after the close timeout."""
        conn, stream = await self.connect()
        reply = await bounded(
            stream.request(
                "process/start", startParams("yes", ["sh", "-c", "echo pid=$$; exec yes"], "/")
            )
        )
        self.assertEqual(reply["result"], {"processId": "yes"})
        pid = await pidOf(stream, "yes")
        transport: Any = conn._protocol.transport
        transport.pauseProducing()  # the rendezvous stops reading
        await poll(reactor, lambda: False, 1.0)  # let the executor's buffers fill up
        code, elapsed = await self.sigterm(bound=30)
        self.assertEqual(code, 0, list(self.executor.scan.tail))
        # A functional deadline: the close handshake is given its CLOSE_TIMEOUT (2 s), then the
        # connection is aborted; within 5x that, not left to the stalled writes.
        self.assertGreaterEqual(elapsed, CLOSE_TIMEOUT)
        self.assertLess(elapsed, 5 * CLOSE_TIMEOUT)
        self.assertTrue(await poll(reactor, lambda: not processesInSessions([pid]), 5))
        self.assertCleanLog()
