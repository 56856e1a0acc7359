"""Every entry point as an operator meets it: ``--version``, a busy port, ``/metrics`` on the
local listener and on the rendezvous (parsed by prometheus_client's text parser), and what
``codex-exec --help`` loads (what keeps it fast)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ServerFactory
from twisted.trial.unittest import SkipTest, TestCase
from twisted.web.client import Agent

from tests.support.children import ChildOutput
from tests.support.twistd import SOURCE_ROOT, pluginInstalled, spawnTwistd
from tests.test_full_loop import TOKEN, FullLoop, bounded
from twisted_exec.executor.executor import Executor
from twisted_exec.executor.service import LocalWebSocketService
from twisted_exec.net.quietweb import QuietConnectionPool
from twisted_exec.testing.wsclient import connectJsonRpc

#: Modules the ``--help`` path may load beyond ``import argparse`` (29 today): the count that
#: stands in for its 150 ms budget (``bench/cli_help.py`` times it).
HELP_MODULES = 40
#: Of ours, besides ``twisted_exec.cli.*``.
OUR_HELP_MODULES = {"twisted_exec", "twisted_exec.cli", "twisted_exec.net", "twisted_exec.net.urls"}
#: Standard-library packages that cost milliseconds each or more (asyncio alone ~15 ms).
HEAVY_STDLIB = {
    "asyncio",
    "concurrent",
    "ctypes",
    "email",
    "http",
    "logging",
    "multiprocessing",
    "sqlite3",
    "ssl",
    "subprocess",
    "unittest",
    "xml",
}


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


class TwistdEntryPointTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        if not pluginInstalled():
            raise SkipTest("the twistd plugins are not installed (pip install .)")

    def spawn(self, *args: str) -> ChildOutput:
        return spawnTwistd(self, *args, env={"CODEX_RENDEZVOUS_TOKENS": TOKEN})[1]

    async def test_versionIsOursOnEveryEntryPoint(self) -> None:
        for plugin in ("codex-executor", "codex-rendezvous"):
            proto = self.spawn(plugin, "--version")
            self.assertEqual(await bounded(proto.ended), 0, proto.stderr)
            self.assertRegex(
                proto.stdout.decode(), rf"^twistd {plugin} \d+\.\d+\.\d+ \(twisted-exec; Twisted "
            )
        cli = subprocess.run(
            [sys.executable, "-m", "twisted_exec.cli", "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=SOURCE_ROOT,
        )
        self.assertEqual(cli.returncode, 0, cli.stderr)
        self.assertRegex(cli.stdout, r"^codex-exec \d+\.\d+\.\d+ \(twisted-exec harness")

    async def test_busyPortIsOneLineExit2(self) -> None:
        port: Any = reactor.listenTCP(0, ServerFactory(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        busy = port.getHost().port
        for plugin, url in (
            ("codex-executor", f"ws://127.0.0.1:{busy}"),
            ("codex-rendezvous", f"http://127.0.0.1:{busy}"),
        ):
            proto = self.spawn(plugin, "--listen", url)
            self.assertEqual(await bounded(proto.ended), 2, proto.stderr)
            lines = proto.stderr.decode().strip().splitlines()
            self.assertEqual(len(lines), 1, lines)
            self.assertTrue(
                lines[0].startswith(f"Error: cannot listen on {url}: address already in use"),
                lines,
            )

    async def test_localModeLogsNoProbesOrScrapes(self) -> None:
        """``/readyz`` probes and ``/metrics`` scrapes leave no access lines; SIGTERM exits 0."""
        import signal

        transport, proto = spawnTwistd(self, "codex-executor", "--listen", "ws://127.0.0.1:0")
        url = (await bounded(proto.firstLine)).replace("ws://", "http://")
        http = HTTPClient(Agent(reactor, pool=QuietConnectionPool(reactor, persistent=False)))
        for path in ("/readyz", "/metrics", "/readyz"):
            response = await bounded(http.get(url + path))
            self.assertEqual(response.code, 200)
            await bounded(response.content())
        transport.signalProcess(signal.SIGTERM)
        self.assertEqual(await bounded(proto.ended), 0)
        text = proto.stderr.decode()
        for noise in ("readyz", "metrics", "GET", "Starting factory", "starting on", "Closed)"):
            self.assertNotIn(noise, text)
        self.assertIn("listening on ws://127.0.0.1:", text)

    async def test_usageErrorOfTheRendezvous(self) -> None:
        proto = self.spawn("codex-rendezvous", "--listen", "ws://x:1")
        self.assertEqual(await bounded(proto.ended), 2)
        lines = proto.stderr.decode().strip().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("Error: --listen expects http://IP:PORT"), lines)


class MetricsEndpointTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.http = HTTPClient(Agent(reactor, pool=QuietConnectionPool(reactor, persistent=False)))

    async def scrape(self, url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        response = await bounded(self.http.get(url))
        self.assertEqual(response.code, 200)
        kind = response.headers.getRawHeaders(b"content-type") or [b""]
        self.assertTrue(kind[0].startswith(b"text/plain"), kind)
        return values(await bounded(response.text()))

    async def test_localListenerMetricsMove(self) -> None:
        executor = Executor(reactor)
        self.addCleanup(executor.shutdown)
        service = LocalWebSocketService(
            reactor, executor.processorFactory, "ws://127.0.0.1:0", metrics=executor.metrics
        )
        service.startService()
        self.addCleanup(service.stopService)
        assert service.url is not None
        metricsUrl = service.url.replace("ws://", "http://") + "/metrics"
        before = await self.scrape(metricsUrl)
        self.assertEqual(before[("codex_exec_sessions", ())], 0)
        client = await bounded(Deferred.fromCoroutine(connectJsonRpc(reactor, service.url)))
        self.addCleanup(client.abort)
        await bounded(Deferred.fromCoroutine(client.handshake()))
        tmp = os.path.abspath(self.mktemp())
        os.makedirs(tmp)
        params = {"argv": ["/bin/sleep", "30"], "cwd": tmp, "env": {}, "tty": False}
        await bounded(client.call("process/start", {"processId": "p1", **params}))
        await bounded(client.call("fs/getMetadata", {"path": tmp}))
        during = await self.scrape(metricsUrl)
        self.assertEqual(during[("codex_exec_sessions", ())], 1)
        self.assertEqual(during[("codex_exec_processes_running", ())], 1)
        self.assertEqual(during[("codex_exec_processes_started_total", ())], 1)
        count = "codex_exec_request_duration_seconds_count"
        self.assertEqual(during[(count, (("method", "process/start"),))], 1)
        self.assertEqual(during[(count, (("method", "fs/getMetadata"),))], 1)
        await bounded(client.call("process/terminate", {"processId": "p1"}))
        for _ in range(50):
            after = await self.scrape(metricsUrl)
            if after[("codex_exec_processes_running", ())] == 0:
                break
        self.assertEqual(after[("codex_exec_processes_running", ())], 0)
        self.assertEqual(after[(count, (("method", "process/terminate"),))], 1)

    async def test_rendezvousMetricsMove(self) -> None:
        loop = FullLoop(self)
        url = loop.url + "/metrics"
        before = await self.scrape(url)
        self.assertEqual(before[("codex_rendezvous_executors_connected", ())], 0)
        loop.startExecutor("box")
        await bounded(loop.server.router.waitForExecutor("box", 1))
        connection = await loop.harness("box")
        session = await bounded(connection.openSession())
        await bounded(session.getMetadata("/"))
        during = await self.scrape(url)
        self.assertEqual(during[("codex_rendezvous_executors_connected", ())], 1)
        self.assertEqual(during[("codex_rendezvous_harnesses_connected", ())], 1)
        self.assertEqual(during[("codex_rendezvous_streams", ())], 1)
        self.assertEqual(during[("codex_rendezvous_registrations_total", (("outcome", "ok"),))], 1)
        toExecutor = ("codex_rendezvous_frames_total", (("direction", "to_executor"),))
        toHarness = ("codex_rendezvous_frames_total", (("direction", "to_harness"),))
        self.assertGreaterEqual(during[toExecutor], 3)  # resume, initialize, initialized, ...
        self.assertGreaterEqual(during[toHarness], 2)
        admitted = (
            "codex_rendezvous_websockets_total",
            (("outcome", "admitted"), ("role", "harness")),
        )
        self.assertEqual(during[admitted], 1)


class FastHelpTests(TestCase):
    def runHelpProbe(self, probe: str) -> str:
        """Run ``probe`` (it prints ``--help`` to stdout, then a module list to stderr) in a
        fresh interpreter from the source root; check the help was printed, return stderr."""
        result = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=SOURCE_ROOT,
        )
        self.assertIn("ls-executors", result.stdout)
        return result.stderr

    def test_helpAndVersionImportNoTwisted(self) -> None:
        probe = (
            "import sys, runpy; sys.argv = ['codex-exec', '--help']\n"
            "try:\n    runpy.run_module('twisted_exec.cli', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('twisted', 'autobahn', 'treq', 'prometheus_client')), file=sys.stderr)\n"
        )
        stderr = self.runHelpProbe(probe)
        self.assertEqual(stderr.strip(), "[]")

    def test_helpLoadsOnlyTheStandardLibraryAndTheCli(self) -> None:
        """What keeps ``--help`` inside its 150 ms budget, checked without a clock (the timing is
        ``bench/cli_help.py``): beyond ``python -c 'import argparse'``, the console script's
        ``--help`` loads only standard-library modules that are cheap to import, and of ours
        only the package roots, ``cli`` and ``net.urls``; at most :data:`HELP_MODULES` in all
        (29 today). Round 1 imported Twisted, treq and autobahn first: 300 ms."""
        probe = (
            "import sys; import argparse; floor = set(sys.modules)\n"
            "sys.argv = ['codex-exec', '--help']\n"
            "from twisted_exec.cli.main import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(set(sys.modules) - floor), file=sys.stderr)\n"
        )
        stderr = self.runHelpProbe(probe)
        loaded: list[str] = ast.literal_eval(stderr.strip().splitlines()[-1])
        ours = [m for m in loaded if m.split(".")[0] == "twisted_exec"]
        others = [m for m in loaded if m.split(".")[0] != "twisted_exec"]
        self.assertEqual(
            [m for m in others if m.split(".")[0] not in sys.stdlib_module_names], [], loaded
        )
        self.assertEqual([m for m in others if m.split(".")[0] in HEAVY_STDLIB], [], loaded)
        self.assertEqual(
            [
                m
                for m in ours
                if m not in OUR_HELP_MODULES and not m.startswith("twisted_exec.cli.")
            ],
            [],
        )
        self.assertLessEqual(len(loaded), HELP_MODULES, loaded)
