"""One harness never hurts another (issue 15): a stalled harness on a relay, real sockets.

A harness runs ``yes`` and stops reading (its websocket stays open). Round 1's rendezvous then
stopped reading the executor's websocket, and every other stream of that executor stalled
within seconds. Now the stalled stream is paused at its source (delivery acks, per-stream
window) while another stream's RPCs keep their latency, and a stream stuck beyond the stall
deadline is reset, not the websocket.

``TWISTED_EXEC_FAIRNESS_SECONDS`` sets how long latency is measured (3 s here; the soak's
``hostile`` scenario runs 60 s against an executor process).
"""

from __future__ import annotations

import os
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from tests.support.relay import TestCloudMixin, startRemoteExecutor
from tests.test_processes import ENVIRON
from twisted_exec.executor.core.limits import Limits
from twisted_exec.executor.executor import Executor
from twisted_exec.harness.connection import HarnessConnection, connectHarness
from twisted_exec.testing.rendezvous import ExecutorConnection

TOKEN = "tok-FAIRNESS-s3cret"
EXECUTOR_ID = "fair"
SECONDS = float(os.environ.get("TWISTED_EXEC_FAIRNESS_SECONDS", "3"))


def bounded(d: Deferred[Any], seconds: float = 20) -> Deferred[Any]:
    return d.addTimeout(seconds, reactor)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


class StalledHarnessTests(TestCloudMixin, TestCase):
    timeout = 60 + SECONDS * 2
    cloudToken = TOKEN

    async def start(self, limits: Limits) -> tuple[Any, ExecutorConnection]:
        executor = Executor(reactor, limits=limits)
        self.addCleanup(executor.shutdown)
        service = startRemoteExecutor(self, executor, self.registry.baseUrl, EXECUTOR_ID, TOKEN)
        conn: ExecutorConnection = await bounded(self.rendezvous.waitForConnection(1))
        return service, conn

    async def stalledHarness(self) -> HarnessConnection:
        """A routed harness that runs ``yes`` and then stops reading its websocket."""
        harness = await bounded(connectHarness(reactor, self.rendezvous.httpUrl, EXECUTOR_ID, None))
        self.addCleanup(harness.abort)
        session = await bounded(harness.openSession())
        await bounded(
            session.call(
                "process/start",
                {
                    "processId": "flood",
                    "argv": ["yes", "a fairly long line of output to fill buffers quickly"],
                    "cwd": self.tmp,
                    "env": {"PATH": ENVIRON["PATH"]},
                    "tty": False,
                },
            )
        )
        protocol: Any = harness._protocol
        protocol.transport.pauseProducing()  # stop reading; the socket stays open
        return harness

    async def measure(self, stream: Any, seconds: float) -> list[float]:
        latencies: list[float] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            began = time.monotonic()
            reply = await bounded(stream.request("fs/getMetadata", {"path": self.tmp}), 10)
            latencies.append(time.monotonic() - began)
            self.assertTrue(reply["result"]["isDirectory"])
            await deferLater(reactor, 0.01, lambda: None)
        return latencies

    async def test_otherStreamKeepsItsLatency(self) -> None:
        """p99 under 50 ms; on a machine so loaded that the same stream alone needs more than a
        third of that, under three times its own p99 without the stalled harness. Round 1: the
        requests time out (10 s)."""
        service, conn = await self.start(Limits())
        fast = conn.stream("fast")
        fast.resume()
        await bounded(fast.initialize())
        baseline = percentile(await self.measure(fast, min(SECONDS, 1.0)), 0.99)
        await self.stalledHarness()
        demux = service.endpoint.current.demux
        # Steady state: the kernel's socket buffers are full and the stalled stream's window
        # closed (filling a few MB of buffers first costs this one process some CPU).
        # The stalled stream's window closed and all it sent reached the rendezvous: the
        # transient is bounded by one window (256 KiB) queued ahead on the shared connection.
        router = self.rendezvous.router
        for _ in range(2000):
            stalled = [s for s in demux._streams.values() if s.streamId != "fast"]
            window = stalled[0].window if stalled else None
            if window is not None and window.paused:
                outstanding = sum(router.acks.outstanding(h) for h in router._harnesses)
                if outstanding >= window.unackedBytes:
                    break
            await deferLater(reactor, 0.01, lambda: None)
        latencies = await self.measure(fast, SECONDS)
        p99 = percentile(latencies, 0.99)
        bound = max(0.050, 3 * baseline)
        self.assertLess(
            p99,
            bound,
            f"p99 {p99 * 1000:.1f} ms over {len(latencies)} RPCs (alone: {baseline * 1000:.1f} ms)",
        )
        # The stalled stream is paused at its source: its processes are not read.
        [stalled] = [s for s in demux._streams.values() if s.streamId != "fast"]
        self.assertTrue(stalled.window is not None and stalled.window.paused)
        self.assertIsNone(conn.closeInfo)  # the websocket is up
        self.assertEqual(len(self.rendezvous.connections), 1)

    async def test_stuckStreamIsResetNotTheWebsocket(self) -> None:
        service, conn = await self.start(Limits(relayStallSeconds=1.0))
        fast = conn.stream("fast")
        fast.resume()
        await bounded(fast.initialize())
        await self.stalledHarness()
        demux = service.endpoint.current.demux
        router = self.rendezvous.router
        for _ in range(1000):
            if demux.stalledStreams and router.streamCount(EXECUTOR_ID) == 0:
                break  # reset here, and the reset reached the rendezvous (route dropped)
            await deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(demux.stalledStreams, 1)
        self.assertEqual(router.streamCount(EXECUTOR_ID), 0)
        reply = await bounded(fast.request("fs/getMetadata", {"path": self.tmp}), 5)
        self.assertTrue(reply["result"]["isDirectory"])
        self.assertIsNone(conn.closeInfo)
        self.assertTrue(any("stream stalled" in line for line in self.logs))
