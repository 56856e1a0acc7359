"""What an operator reads: the log of a whole remote session of a real ``twistd codex-executor``.

The session: register, connect, three commands on three streams, the rendezvous drops the
websocket, the executor reconnects, a fourth command, SIGTERM. At info level that is at most
:data:`MAX_INFO_LINES` lines (why: see the constant), none with an object address (``0x``),
none about single streams or sessions; ``--log-format json`` gives one parseable object per line
with the same messages. The executor's ``--metrics-listen`` is scraped with prometheus_client's
text parser before and after, and the counters moved as the session did.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase
from twisted.web.client import Agent

from tests.support.twistd import SOURCE_ROOT, TWISTD, pluginInstalled
from tests.test_full_loop import TOKEN, FullLoop, bounded
from twisted_exec.net.quietweb import QuietConnectionPool
from twisted_exec.rendezvous.websocket import ExecutorLink

#: twistd's own start (2: "twistd ... starting up", "reactor class") and stop (3: "Received
#: SIGTERM", "Main loop terminated", "Server Shut Down") lines, ours: "metrics on", registered,
#: connected, then per drop "reconnecting in 1 s: why", registered, connected, then "stopped:
#: shutting down" and "closed N session(s)": 2 + 1 + 2 + 3 + 2 + 3 = 13, plus one spare for a
#: slow machine where a second reconnect happens. Commands add nothing at info.
MAX_INFO_LINES = 14


class _Executor(ProcessProtocol):
    def __init__(self) -> None:
        self.stderr = b""
        self.stdout = b""
        self.ended: Deferred[int] = Deferred()
        self.metricsUrl: Deferred[str] = Deferred()

    def errReceived(self, data: bytes) -> None:
        self.stderr += data
        match = re.search(rb"metrics on (http://\S+?/metrics)", self.stderr)
        if match and not self.metricsUrl.called:
            self.metricsUrl.callback(match.group(1).decode())

    def outReceived(self, data: bytes) -> None:
        self.stdout += data

    def processEnded(self, reason: Failure) -> None:
        code = getattr(reason.value, "exitCode", None)
        self.ended.callback(-1 if code is None else code)


def metricValues(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


class LogSnapshotTests(TestCase):
    timeout = 120

    def setUp(self) -> None:
        if not pluginInstalled():
            raise SkipTest("the codex-executor twistd plugin is not installed (pip install .)")
        self.loop = FullLoop(self)
        self.tmp = os.path.abspath(self.mktemp())
        os.makedirs(self.tmp)
        self.http = HTTPClient(Agent(reactor, pool=QuietConnectionPool(reactor, persistent=False)))

    def spawn(self, *extra: str) -> _Executor:
        proto = _Executor()
        env = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": SOURCE_ROOT,
            "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN": TOKEN,
        }
        argv = [
            sys.executable,
            "-c",
            TWISTD,
            "-n",
            "--pidfile=",
            "codex-executor",
            "--remote",
            self.loop.url,
            "--executor-id",
            "box",
            "--name",
            "Snapshot box",
            "--metrics-listen",
            "http://127.0.0.1:0",
            *extra,
        ]
        transport = reactor.spawnProcess(proto, sys.executable, argv, env=env, path=self.tmp)

        def stop() -> Any:
            if not proto.ended.called:
                transport.signalProcess("KILL")
            return proto.ended

        self.addCleanup(stop)
        self.transport = transport
        return proto

    async def scrape(self, url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        response = await bounded(self.http.get(url))
        self.assertEqual(response.code, 200)
        return metricValues((await bounded(response.text())).strip() + "\n")

    async def session(self, proto: _Executor) -> tuple[dict[Any, float], dict[Any, float]]:
        """The whole session; returns the metrics scraped after connecting and at the end."""
        await bounded(self.loop.server.router.waitForExecutor("box", 1), 30)
        metricsUrl = await bounded(proto.metricsUrl)
        before = await self.scrape(metricsUrl)
        connection = await self.loop.harness("box")
        for n in range(3):
            session = await bounded(connection.openSession())
            process = await bounded(session.spawn(["/bin/echo", f"command {n}"], self.tmp))
            self.assertEqual(await bounded(process.finished), 0)
            self.assertEqual(process.stdout(), f"command {n}\n".encode())
            session.close()
        await connection.close()
        # the rendezvous drops the executor's websocket; the executor reconnects
        for protocol in list(self.loop.server.protocols):
            if isinstance(protocol.link, ExecutorLink):
                protocol.transport.abortConnection()  # type: ignore[union-attr]
        await bounded(self.loop.server.router.waitForExecutor("box", 2), 30)
        again = await self.loop.harness("box")
        session = await bounded(again.openSession(waitForExecutor=10))
        process = await bounded(session.spawn(["/bin/true"], self.tmp))
        self.assertEqual(await bounded(process.finished), 0)
        await again.close()
        after = await self.scrape(metricsUrl)
        self.transport.signalProcess(signal.SIGTERM)
        self.assertEqual(await bounded(proto.ended, 20), 0, proto.stderr.decode())
        return before, after

    async def test_infoLogOfAWholeSession(self) -> None:
        proto = self.spawn()
        before, after = await self.session(proto)
        lines = proto.stderr.decode().splitlines()
        self.assertLessEqual(len(lines), MAX_INFO_LINES, "\n".join(lines))
        text = "\n".join(lines)
        self.assertNotIn("0x", text)
        for noise in (
            "Starting factory",
            "Stopping factory",
            "Scheduling retry",
            "stream",
            "#debug",
        ):
            self.assertNotIn(noise, text)
        self.assertEqual(text.count("registered with executor_id box"), 2, text)
        self.assertEqual(text.count("connected to the rendezvous at"), 2, text)
        self.assertRegex(text, r"reconnecting in 1 s: lost the relay websocket to ws://")
        self.assertIn("remote executor stopped: shutting down", text)
        self.assertNotIn(TOKEN, text)
        self.assertNotIn("sig=", text)
        # the metrics moved as the session did
        started = ("codex_exec_processes_started_total", ())
        self.assertEqual(after[started] - before[started], 4)
        ok = ("codex_exec_registrations_total", (("outcome", "ok"),))
        self.assertEqual((before[ok], after[ok]), (1, 2))
        opened = ("codex_exec_relay_connections_total", (("outcome", "open"),))
        self.assertEqual(after[opened], 2)
        starts = ("codex_exec_request_duration_seconds_count", (("method", "process/start"),))
        self.assertEqual(after[starts], 4)
        received = ("codex_exec_received_bytes_total", (("transport", "relay"),))
        sent = ("codex_exec_sent_bytes_total", (("transport", "relay"),))
        self.assertGreater(after[received], before.get(received, 0))
        self.assertGreater(after[sent], before.get(sent, 0))
        self.assertEqual(after[("codex_exec_processes_running", ())], 0)

    async def test_jsonLogParses(self) -> None:
        proto = self.spawn("--log-format", "json")
        await self.session(proto)
        lines = proto.stderr.decode().splitlines()
        self.assertLessEqual(len(lines), MAX_INFO_LINES)
        records = [json.loads(line) for line in lines]
        texts = [r["text"] for r in records]
        self.assertTrue(any("registered with executor_id box" in t for t in texts), texts)
        self.assertTrue(all(r["level"] in ("info", "warn") for r in records), records)
        self.assertTrue(all("log_time" in r and "log_namespace" in r for r in records))
        self.assertNotIn("0x", "\n".join(texts))
