"""The full loop as a user runs it: ``twistd -n codex-rendezvous``, ``twistd -n codex-executor
--remote ...`` and ``codex-exec`` as real subprocesses on loopback, plus the harness client
waiting through an executor that is killed (SIGKILL) and started again."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from typing import Any

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest, TestCase

from tests.support.children import ChildOutput
from tests.support.twistd import TWISTD, pluginInstalled, spawnFromTree
from tests.test_full_loop import closedPortUrl
from twisted_exec.executor.transports.relay.service import defaultHttpClient
from twisted_exec.harness import HarnessConnection, StreamError, connectHarness, listExecutors
from twisted_exec.wire.reasons import EXECUTOR_DISCONNECTED

TOKEN = "tok-TWISTD-LOOP-s3cret"


class _Spawner:
    def __init__(self, test: TestCase) -> None:
        self.test = test

    def spawn(
        self, argv: list[str], env: dict[str, str], stdin: bytes | None = None
    ) -> ChildOutput:
        transport, proto = spawnFromTree(self.test, argv, env)
        if stdin is not None:
            transport.write(stdin)
        transport.closeStdin()
        return proto

    def twistd(self, *args: str, env: dict[str, str]) -> ChildOutput:
        return self.spawn([sys.executable, "-c", TWISTD, "-n", "--pidfile=", *args], env)


class TwistdFullLoopTests(TestCase):
    timeout = 90

    def setUp(self) -> None:
        if not pluginInstalled("codex-executor", "codex-rendezvous"):
            raise SkipTest("the twistd plugins are not installed (pip install .)")
        self.spawner = _Spawner(self)

    async def startRendezvous(self) -> str:
        proto = self.spawner.twistd(
            "codex-rendezvous",
            "--listen",
            "http://127.0.0.1:0",
            env={"CODEX_RENDEZVOUS_TOKENS": TOKEN},
        )
        self.rendezvousProcess = proto
        url: str = await proto.firstLine.addTimeout(20, reactor)
        self.assertRegex(url, r"^http://127\.0\.0\.1:\d+$")
        return url

    def startExecutor(self, url: str, executorId: str = "box") -> ChildOutput:
        return self.spawner.twistd(
            "codex-executor",
            "--remote",
            url,
            "--executor-id",
            executorId,
            env={"CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN": TOKEN},
        )

    async def waitConnected(self, url: str, executorId: str = "box", connections: int = 1) -> None:
        for _ in range(200):
            executors = await listExecutors(reactor, url, TOKEN)
            for e in executors:
                if (
                    e["executor_id"] == executorId
                    and e["connected"]
                    and e["connections"] >= connections
                ):
                    return
            await deferLater(reactor, 0.1, lambda: None)
        self.fail(f"executor {executorId} did not connect")

    def cli(
        self, url: str, *args: str, token: str = TOKEN, stdin: bytes | None = None
    ) -> ChildOutput:
        return self.spawner.spawn(
            [sys.executable, "-m", "twisted_exec.cli", *args],
            {"CODEX_RENDEZVOUS_URL": url, "CODEX_RENDEZVOUS_TOKEN": token},
            stdin=stdin,
        )

    async def ran(self, proto: ChildOutput) -> tuple[int, str, str]:
        code = await proto.ended.addTimeout(30, reactor)
        return code, proto.stdout.decode(), proto.stderr.decode()

    async def test_cliAsAUserRunsIt(self) -> None:
        url = await self.startRendezvous()
        self.startExecutor(url)
        await self.waitConnected(url)
        tmp = tempfile.mkdtemp()

        code, out, err = await self.ran(
            self.cli(url, "run", "--", "sh", "-c", "echo out; echo err >&2; exit 7")
        )
        self.assertEqual((code, out, err), (7, "out\n", "err\n"))
        code, out, err = await self.ran(self.cli(url, "run", "--cwd", tmp, "--", "pwd"))
        self.assertEqual((code, out), (0, tmp + "\n"), err)
        code, out, err = await self.ran(
            self.cli(url, "run", "--tty", "--", "sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo tty")
        )
        self.assertEqual((code, out), (0, "tty\r\n"), err)
        # -i forwards stdin (no EOF reaches the remote side: head stops by itself)
        code, out, err = await self.ran(
            self.cli(url, "run", "-i", "--", "head", "-n", "1", stdin=b"typed\nmore\n")
        )
        self.assertEqual((code, out), (0, "typed\n"), err)

        local = os.path.join(tmp, "local.txt")
        with open(local, "wb") as f:
            f.write(b"payload\x00\x01\xc3\xa9\n")
        code, out, err = await self.ran(self.cli(url, "cp", local, f":{tmp}/remote.bin"))
        self.assertEqual(code, 0, err)
        code, out, err = await self.ran(self.cli(url, "cat", f"{tmp}/remote.bin"))
        self.assertEqual((code, out), (0, "payload\x00\x01\u00e9\n"), err)
        back = os.path.join(tmp, "back.bin")
        code, _, err = await self.ran(self.cli(url, "cp", f":{tmp}/remote.bin", back))
        self.assertEqual(code, 0, err)
        with open(back, "rb") as f:
            self.assertEqual(f.read(), b"payload\x00\x01\xc3\xa9\n")
        code, out, err = await self.ran(self.cli(url, "ls", tmp))
        self.assertEqual(out.split(), ["back.bin", "local.txt", "remote.bin"], err)
        code, out, err = await self.ran(self.cli(url, "ls-executors"))
        self.assertEqual(code, 0, err)
        # EXECUTOR NAME STATE STREAMS CONNECTIONS (harness websockets now) AGE
        self.assertRegex(out, r"(?m)^box\s+-\s+connected\s+\d+\s+0\s+\d+[smhd]$")

        # error messages
        code, out, err = await self.ran(self.cli(url, "cat", f"{tmp}/missing"))
        self.assertEqual(code, 1)
        self.assertEqual(
            err, f"codex-exec: error: {tmp}/missing: No such file or directory (os error 2)\n"
        )
        code, _, err = await self.ran(self.cli(url, "run", "-e", "nobody", "--", "true"))
        self.assertEqual(
            (code, err),
            (125, f"codex-exec: error: unknown executor 'nobody' at the rendezvous {url}\n"),
        )
        code, _, err = await self.ran(self.cli(url, "run", "--", "true", token="not-it"))
        self.assertEqual(code, 125)
        self.assertEqual(
            err,
            f"codex-exec: error: the rendezvous at {url} refused the bearer token (401): "
            "invalid bearer token\n",
        )
        closed = await closedPortUrl()
        code, _, err = await self.ran(self.cli(closed, "run", "-e", "box", "--", "true"))
        self.assertEqual(code, 125)
        self.assertRegex(
            err, rf"^codex-exec: error: cannot reach the rendezvous at {closed}: .*refused"
        )
        # known to the registry but not connected
        auth: Any = {"Authorization": f"Bearer {TOKEN}"}
        registered = await defaultHttpClient(reactor).post(
            f"{url}/cloud/executor/later/register", headers=auth
        )
        self.assertEqual(registered.code, 200)
        await registered.content()
        # (waited for up to --timeout, as it may be restarting)
        code, _, err = await self.ran(
            self.cli(url, "--timeout", "1", "run", "-e", "later", "--", "true")
        )
        self.assertEqual(
            (code, err),
            (
                125,
                f"codex-exec: error: executor 'later' did not connect to the rendezvous at {url} "
                "within 1 s\n",
            ),
        )
        # Ctrl-C: the remote command is terminated, and we exit 130
        running = self.cli(url, "run", "-e", "box", "--", "sh", "-c", "echo $$; exec sleep 30")
        pid = int(await running.firstLine.addTimeout(20, reactor))
        os.kill(running.transport.pid, signal.SIGINT)  # type: ignore[union-attr]
        code, _, err = await self.ran(running)
        self.assertEqual((code, err), (130, ""))
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            await deferLater(reactor, 0.05, lambda: None)
        else:
            self.fail("the remote command survived Ctrl-C")
        code, _, err = await self.ran(self.cli(url, "run"))
        self.assertEqual(code, 2)
        self.assertIn("run needs a command", err)
        serviceLog = self.rendezvousProcess.stderr.decode()
        self.assertNotIn(TOKEN, serviceLog)
        self.assertNotIn("sig=", serviceLog)
        self.assertIn("executor 'box' connected", serviceLog)

    async def test_executorKilledAndRestartedWhileHarnessWaits(self) -> None:
        url = await self.startRendezvous()
        first = self.startExecutor(url)
        await self.waitConnected(url)
        connection: HarnessConnection = await connectHarness(reactor, url, "box", TOKEN)
        self.addCleanup(connection.close)
        session = await connection.openSession()
        tmp = tempfile.mkdtemp()
        process = await session.spawn(["/bin/sleep", "3"], tmp)
        waiting = session.read(process.processId, afterSeq=0, waitMs=20_000)

        os.kill(first.transport.pid, signal.SIGKILL)  # type: ignore[union-attr]
        await first.ended.addTimeout(10, reactor)
        with self.assertRaises(StreamError) as caught:
            await waiting.addTimeout(5, reactor)
        self.assertEqual(caught.exception.reason, EXECUTOR_DISCONNECTED)
        self.assertEqual(str(caught.exception), "relay stream closed: executor disconnected")

        self.startExecutor(url)
        fresh = await connection.openSession(waitForExecutor=20)
        again = await fresh.spawn(["/bin/echo", "back"], tmp)
        self.assertEqual(await again.finished.addTimeout(10, reactor), 0)
        self.assertEqual(again.stdout(), b"back\n")

    async def test_missingTokensFailClearly(self) -> None:
        proto = self.spawner.twistd("codex-rendezvous", "--listen", "http://127.0.0.1:0", env={})
        code = await proto.ended.addTimeout(20, reactor)
        self.assertEqual(code, 1)
        self.assertIn(b"Error: no bearer tokens configured", proto.stderr)
