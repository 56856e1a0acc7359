"""Hardening acceptance, small: fuzzed frames, dropped websockets, load and a slow consumer
against a real ``twistd codex-executor --remote`` child (``twisted_exec.testing.soak``).

The same scenarios at the issue's sizes: ``python scripts/soak.py --full`` (about 10 minutes),
or these tests with ``TWISTED_EXEC_SOAK=full``.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.trial.unittest import SkipTest, TestCase

from twisted_exec.testing.executorproc import TWISTD
from twisted_exec.testing.soak import FULL, QUICK, SCENARIOS, verdict

FULL_SIZE = os.environ.get("TWISTED_EXEC_SOAK") == "full"


class SoakTests(TestCase):
    timeout = 1800 if FULL_SIZE else 120

    def setUp(self) -> None:
        if not TWISTD.exists():
            raise SkipTest(f"no twistd at {TWISTD}")

    def run_(self, name: str) -> Any:
        params = (FULL if FULL_SIZE else QUICK)[name]

        async def go() -> None:
            result = await SCENARIOS[name](reactor, **params)
            # the latency goals are scripts/soak.py's (benchmarks are not tests)
            self.assertEqual(verdict(name, result, timed=False), [], result.asDict())

        return ensureDeferred(go())

    def test_fuzzedFramesOverARealWebsocket(self) -> Any:
        """Random and mutated frames: 0 unhandled errors, every valid request answered."""
        return self.run_("frames")

    def test_droppedWebsocketsReconnectResumeLeakNothing(self) -> Any:
        """Drops while processes run: reconnect and resume each time, 0 leaked fds/processes."""
        return self.run_("faults")

    def test_manyStreamsNoCrossTalk(self) -> Any:
        """Streams running token-printing commands: no cross-talk, the executor's RSS flat."""
        return self.run_("load")

    def test_slowConsumerBoundedAndIntact(self) -> Any:
        """A rendezvous reading slowly: bounded executor memory, every byte in order."""
        return self.run_("slow")

    def test_hostileHarnessesHurtNoOne(self) -> Any:
        """Stalled harness, 50 MiB/FIFO/dev-zero reads, stdin flood, setsid grandchildren:
        another stream never starved (its p99 < 50 ms is scripts/soak.py's goal), websocket
        up, all refused, nothing left, RSS bounded."""
        return self.run_("hostile")
