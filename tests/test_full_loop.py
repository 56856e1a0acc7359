"""The full loop in one process, over loopback sockets: the real rendezvous service (registry +
router), the real remote executor service with the real processor, and the harness client."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import ServerFactory
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from tests.support.relay import startRemoteExecutor, startRendezvous
from tests.test_relay_demux import captureLogs
from twisted_exec.executor.executor import Executor
from twisted_exec.executor.transports.relay.service import RemoteExecutorService
from twisted_exec.harness import (
    AuthenticationError,
    CallError,
    ExecSession,
    ExecutorNotConnectedError,
    HarnessConnection,
    RendezvousUnreachableError,
    StreamError,
    UnknownExecutorError,
    connectHarness,
    listExecutors,
)
from twisted_exec.rendezvous.auth import TokenSet
from twisted_exec.rendezvous.interfaces import IRelayPeer
from twisted_exec.wire.reasons import EXECUTOR_DISCONNECTED

TOKEN = "tok-FULL-LOOP-s3cret"
TIMEOUT = 15
#: Relay frames one way for a 10 MiB writeFile + readFile: each message is one frame (the
#: relay carries messages up to 64 MiB whole), and a few small ones (replies, initialize).
FRAMES_PER_BULK_CALLS = 8


def bounded(d: Deferred[Any], seconds: float = TIMEOUT) -> Deferred[Any]:
    return d.addTimeout(seconds, reactor)


class FullLoop:
    """A rendezvous service and remote executors on loopback, torn down by the test."""

    def __init__(self, test: TestCase) -> None:
        self.test = test
        self.server, self.service, self.url = startRendezvous(test, TokenSet([TOKEN]))

    def startExecutor(
        self, executorId: str = "box", name: str | None = None
    ) -> tuple[RemoteExecutorService, Executor]:
        executor = Executor(reactor)
        self.test.addCleanup(executor.shutdown)
        service = startRemoteExecutor(
            self.test, executor, self.url, executorId, TOKEN, name, retryPolicy=lambda attempt: 0.05
        )
        return service, executor

    async def harness(self, executorId: str = "box", token: str = TOKEN) -> HarnessConnection:
        connection: HarnessConnection = await connectHarness(reactor, self.url, executorId, token)
        self.test.addCleanup(connection.close)
        return connection


async def closedPortUrl() -> str:
    """An ``http://`` URL on which nothing listens (a port just released)."""
    port: Any = reactor.listenTCP(0, ServerFactory(), interface="127.0.0.1")
    url = f"http://127.0.0.1:{port.getHost().port}"
    await port.stopListening()
    return url


def shParams(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]


class FullLoopTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.logs = captureLogs(self)
        self.tmp = tempfile.mkdtemp()
        self.loop = FullLoop(self)

    def tearDown(self) -> None:
        self.assertNotIn(TOKEN, "\n".join(self.logs))
        self.assertFalse([line for line in self.logs if "sig=" in line], "a signature leaked")

    async def ready(self, executorId: str = "box", connections: int = 1) -> None:
        await bounded(self.loop.server.router.waitForExecutor(executorId, connections))

    async def test_runCommandOutputAndExitCode(self) -> None:
        self.loop.startExecutor()
        await self.ready()
        connection = await self.loop.harness()
        session = await bounded(connection.openSession())
        self.assertRegex(session.streamId, r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-")
        process = await bounded(
            session.spawn(shParams("echo out; echo err >&2; printf tail; exit 3"), self.tmp)
        )
        code = await bounded(process.finished)
        self.assertEqual(code, 3)
        self.assertEqual(process.stdout(), b"out\ntail")
        self.assertEqual(process.stderr(), b"err\n")
        # the async-iterator view of notifications
        notes = session.notifications()
        again = await bounded(session.spawn(["/bin/echo", "iter"], self.tmp))
        methods = []
        async for note in notes:
            if note["params"]["processId"] == again.processId:
                methods.append(note["method"])
                if note["method"] == "process/closed":
                    break
        self.assertEqual(methods, ["process/output", "process/exited", "process/closed"])
        notes.close()
        # JSON-RPC errors are CallErrors with the executor's code and message
        with self.assertRaises(CallError) as caught:
            await bounded(session.readFile(os.path.join(self.tmp, "missing")))
        self.assertEqual(caught.exception.code, -32004)
        # the real links are the router's peers, and their producers are push producers
        for protocol in self.loop.server.protocols:
            verifyObject(IRelayPeer, protocol.link)
            verifyObject(IPushProducer, protocol.transport.producer)  # type: ignore[union-attr]
        listing = await bounded(
            Deferred.fromCoroutine(listExecutors(reactor, self.loop.url, TOKEN))
        )
        [entry] = listing
        self.assertEqual(
            (entry["executor_id"], entry["connected"], entry["streams"]), ("box", True, 1)
        )

    async def test_tenMegabyteFileRoundTrip(self) -> None:
        """10 MiB written and read back through the relay, each byte crossing it once, in bulk:
        counted, not timed (``scripts/full_loop_timing.py`` times it)."""
        self.loop.startExecutor()
        await self.ready()
        session = await bounded((await self.loop.harness()).openSession())
        data = os.urandom(10 * 1024 * 1024)
        path = os.path.join(self.tmp, "big.bin")
        routed: dict[str, list[int]] = {"to_executor": [], "to_harness": []}
        router = self.loop.server.router
        metrics = router.onRouted

        def counting(direction: str, size: int) -> None:
            routed[direction].append(size)
            if metrics is not None:
                metrics(direction, size)

        router.onRouted = counting
        self.addCleanup(setattr, router, "onRouted", metrics)
        await bounded(session.writeFile(path, data))
        back = await bounded(session.readFile(path))
        self.assertEqual(len(back), len(data))
        self.assertTrue(back == data)
        with open(path, "rb") as f:
            self.assertTrue(f.read() == data)
        # base64 once each way (4/3), plus JSON and frame headers: no byte sent twice, and in
        # frames of megabytes, not kilobytes (a regression to 64 KiB pieces would be 200+).
        encoded = len(data) * 4 // 3
        for direction, sizes in routed.items():
            self.assertLess(sum(sizes), encoded + 64 * 1024, direction)
            self.assertGreater(sum(sizes), encoded, direction)
            self.assertLessEqual(len(sizes), FRAMES_PER_BULK_CALLS, (direction, len(sizes)))

    async def test_twoHarnessesOnOneExecutorNoCrossTalk(self) -> None:
        self.loop.startExecutor()
        await self.ready()
        connectionA = await self.loop.harness()
        a = await bounded(connectionA.openSession(clientName="a"))
        b = await bounded((await self.loop.harness()).openSession(clientName="b"))
        self.assertNotEqual(a.sessionId, b.sessionId)

        async def work(session: ExecSession, word: str) -> tuple[bytes, bytes]:
            # the same processId in both sessions: they are independent
            process = await session.spawn(
                shParams(f"for i in 1 2 3 4 5; do echo {word}$i; done"), self.tmp, processId="p1"
            )
            self.assertEqual(await process.finished, 0)
            path = os.path.join(self.tmp, f"{word}.txt")
            await session.writeFile(path, word.encode() * 1000)
            return process.stdout(), await session.readFile(path)

        (outA, fileA), (outB, fileB) = await bounded(
            gatherResults(
                [
                    Deferred.fromCoroutine(work(a, "alpha")),
                    Deferred.fromCoroutine(work(b, "beta")),
                ]
            )
        )
        self.assertEqual(outA.split(), [f"alpha{i}".encode() for i in range(1, 6)])
        self.assertEqual(outB.split(), [f"beta{i}".encode() for i in range(1, 6)])
        self.assertEqual((fileA, fileB), (b"alpha" * 1000, b"beta" * 1000))

        # One harness leaving resets its streams at the executor; the other carries on.
        self.assertEqual(self.loop.server.router.streamCount("box"), 2)
        await bounded(connectionA.close())
        error = await bounded(a.whenEnded())
        self.assertIn("harness connection closed", error.reason)
        meta = await bounded(b.getMetadata(self.tmp))
        self.assertTrue(meta["isDirectory"])

    async def test_executorLostWhileHarnessWaitsThenBack(self) -> None:
        service, _ = self.loop.startExecutor()
        await self.ready()
        connection = await self.loop.harness()
        session = await bounded(connection.openSession())
        process = await bounded(session.spawn(["/bin/sleep", "30"], self.tmp))
        waiting = session.read(process.processId, afterSeq=0, waitMs=20_000)
        # the executor's websocket drops (a crash looks the same to the rendezvous)
        relay = service.endpoint.current
        assert relay is not None
        relay.transport.abortConnection()  # type: ignore[union-attr]
        with self.assertRaises(StreamError) as caught:
            await bounded(waiting, 5)
        self.assertEqual(caught.exception.reason, EXECUTOR_DISCONNECTED)
        self.assertIn("executor disconnected", str(caught.exception))
        with self.assertRaises(StreamError):
            await bounded(session.getMetadata("/"))  # the stream stays ended
        with self.assertRaises(StreamError):
            await bounded(process.finished)
        # the executor reconnects by itself; the same harness connection opens a new stream
        fresh = await bounded(connection.openSession(waitForExecutor=10))
        meta = await bounded(fresh.getMetadata(self.tmp))
        self.assertTrue(meta["isDirectory"])
        # and the old session can be resumed there: its sleeper is still alive
        resumed = await bounded(connection.openSession(resumeSessionId=session.sessionId))
        self.assertEqual(resumed.sessionId, session.sessionId)
        notes = resumed.notifications()
        self.assertTrue(await bounded(resumed.terminate(process.processId)))
        # wait for it to close, so no pipe reader outlives the test
        async for note in notes:
            if note["method"] == "process/closed":
                self.assertEqual(note["params"]["processId"], process.processId)
                break
        notes.close()

    async def test_slowHarnessPausesItsStreamNotTheExecutorNorRendezvousMemory(self) -> None:
        """Issue 15: a harness that stops reading stops its own stream at the executor (delivery
        acks, per-stream window); the executor's websocket is read on, memory stays bounded."""
        self.loop.startExecutor()
        await self.ready()
        connection = await self.loop.harness()
        session = await bounded(connection.openSession())
        received: list[int] = []
        total = 20_000_000
        harnessTransport: Any = connection._protocol.transport  # type: ignore[union-attr]
        process = await bounded(
            session.spawn(
                ["/bin/sh", "-c", f"head -c {total} /dev/zero"],
                self.tmp,
                onOutput=lambda stream, data: received.append(len(data)),
                keepOutput=False,
            )
        )
        harnessTransport.pauseProducing()  # the harness stops reading its socket
        router = self.loop.server.router
        executorLink = router.record("box").link  # type: ignore[union-attr]
        for _ in range(200):
            if any(router.acks.isSlow(peer) for peer in router._harnesses):
                break
            await deferLater(reactor, 0.05, lambda: None)
        self.assertTrue(
            any(router.acks.isSlow(peer) for peer in router._harnesses), "harness never slow"
        )
        await deferLater(reactor, 0.5, lambda: None)  # the executor's window closes meanwhile
        self.assertFalse(router.isPaused(executorLink), "the executor's websocket was paused")
        harnessSide: list[Any] = [
            p.transport
            for p in self.loop.server.protocols
            if p.link is not None and p.link is not executorLink
        ]
        [harnessLink] = harnessSide
        buffered = len(harnessLink.dataBuffer) - harnessLink.offset + harnessLink._tempDataLen
        self.assertLess(buffered, 4 * 1024 * 1024)
        self.assertLess(sum(received), total)
        harnessTransport.resumeProducing()
        self.assertEqual(await bounded(process.finished, 30), 0)
        self.assertEqual(sum(received), total)

    async def test_silentHarnessDroppedAndItsStreamsReset(self) -> None:
        self.loop.server.pingInterval = 0.05
        self.loop.server.idleTimeout = 0.4
        self.loop.startExecutor()
        await self.ready()
        alive = await bounded((await self.loop.harness()).openSession())
        silent = await self.loop.harness()
        await bounded(silent.openSession())
        self.assertEqual(self.loop.server.router.streamCount("box"), 2)
        transport: Any = silent._protocol.transport  # type: ignore[union-attr]
        transport.pauseProducing()  # half-open, as far as the rendezvous can tell: no pongs
        for _ in range(100):
            if self.loop.server.router.streamCount("box") == 1:
                break
            await deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(self.loop.server.router.streamCount("box"), 1)
        self.assertTrue(any("silent for 0.4 s" in line for line in self.logs), self.logs)
        transport.resumeProducing()
        await bounded(silent.whenLost())
        # the live harness and the executor (which answer pings) stay connected
        self.assertTrue((await bounded(alive.getMetadata("/")))["isDirectory"])
        self.assertTrue(self.loop.server.router.record("box").connected)  # type: ignore[union-attr]

    async def test_connectErrorsAreTyped(self) -> None:
        self.loop.startExecutor()
        await self.ready()
        with self.assertRaises(AuthenticationError) as auth:
            await self.loop.harness(token="wrong")
        self.assertIn("refused the bearer token (401)", str(auth.exception))
        self.assertNotIn("wrong", str(auth.exception))
        with self.assertRaises(UnknownExecutorError) as unknown:
            await self.loop.harness("nobody")
        self.assertIn("unknown executor 'nobody'", str(unknown.exception))
        with self.assertRaises(AuthenticationError):
            await Deferred.fromCoroutine(listExecutors(reactor, self.loop.url, "wrong"))
        # known but not connected
        self.loop.server.router.registered("later")
        tokens = self.loop.server.tokens
        assert tokens is not None  # "later" is this token's own id, registered earlier
        self.loop.server.tenancy.claim(tokens.principal(TOKEN), "executor", "later")
        with self.assertRaises(ExecutorNotConnectedError):
            await self.loop.harness("later")
        # nothing listening
        closedUrl = await closedPortUrl()
        with self.assertRaises(RendezvousUnreachableError) as unreachable:
            await connectHarness(reactor, closedUrl, "box", TOKEN)
        self.assertIn(f"cannot reach the rendezvous at {closedUrl}", str(unreachable.exception))


class TestRendezvousHarnessRouteTests(TestCase):
    """The test rendezvous (``twisted_exec.testing``) is the real router: the harness client
    works through its ``/harness/{id}`` route, which needs no token there."""

    timeout = 30

    async def test_harnessClientThroughTheTestRendezvous(self) -> None:
        from tests.support.relay import startRemoteExecutor, startTestCloud

        captureLogs(self)
        rendezvous, registry = startTestCloud(self, TOKEN)
        executor = Executor(reactor)
        self.addCleanup(executor.shutdown)
        startRemoteExecutor(self, executor, registry.baseUrl, "tbox", TOKEN)
        connection = await bounded(rendezvous.waitForConnection(1))
        harness = await bounded(connectHarness(reactor, rendezvous.httpUrl, "tbox", None))
        self.addCleanup(harness.close)
        session = await bounded(harness.openSession())
        self.assertTrue((await bounded(session.getMetadata("/")))["isDirectory"])
        # the in-process harness of the same executor connection still works alongside
        inProcess = connection.stream("in-process")
        self.assertTrue(await bounded(inProcess.initialize()))
        self.assertEqual(connection.orphans, [])
