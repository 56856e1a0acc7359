"""``codex-exec`` as a user runs it: a child process against a real rendezvous and executor.

The rendezvous service and the remote executor service run in the test process on loopback;
``codex-exec`` is ``python -m twisted_exec.cli`` in a child with its own stdin, stdout, stderr
and exit status, as in a shell.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase

from tests.support.children import ChildOutput, spawnChild
from tests.support.twistd import SOURCE_ROOT
from tests.test_full_loop import TOKEN, FullLoop, bounded, closedPortUrl

CLI = [sys.executable, "-m", "twisted_exec.cli"]


class _Cli(ChildOutput):
    """A ``codex-exec`` child: given stdin (then EOF), and a shell's exit status (128 + signal)."""

    def __init__(self, stdin: bytes | None) -> None:
        super().__init__()
        self.stdin = stdin

    def connectionMade(self) -> None:
        assert self.transport is not None
        if self.stdin is not None:
            self.transport.write(self.stdin)
            self.transport.closeStdin()

    def processEnded(self, reason: Failure) -> None:
        value: Any = reason.value
        code = value.exitCode if value.exitCode is not None else 128 + (value.signal or 0)
        self.ended.callback(code)


class Result:
    def __init__(self, code: int, out: bytes, err: bytes) -> None:
        self.code = code
        self.out = out
        self.err = err.decode(errors="replace")

    def __repr__(self) -> str:
        return f"<exit {self.code} out={self.out[:200]!r} err={self.err[:400]!r}>"


class CliCase(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.loop = FullLoop(self)
        self.tmp = os.path.abspath(self.mktemp())
        os.makedirs(self.tmp)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/"),
            "PYTHONPATH": SOURCE_ROOT,  # this tree, also under trial (whose cwd is _trial_temp)
            "CODEX_RENDEZVOUS_URL": self.loop.url,
            "CODEX_RENDEZVOUS_TOKEN": TOKEN,
        }
        env.update(extra)
        return {k: v for k, v in env.items() if v != ""}

    async def cli(
        self,
        *args: str,
        stdin: bytes | None = b"",
        env: dict[str, str] | None = None,
        seconds: float = 30,
    ) -> Result:
        proto = self.spawnCli(*args, stdin=stdin, env=env)
        code = await bounded(proto.ended, seconds)
        return Result(code, proto.stdout, proto.stderr)

    def spawnCli(
        self, *args: str, stdin: bytes | None, env: dict[str, str] | None = None, **options: Any
    ) -> _Cli:
        """``codex-exec ARGS`` in the test's directory, killed at cleanup if still running."""
        proto = _Cli(stdin)
        spawnChild(self, proto, [*CLI, *args], env or self.env(), path=self.tmp, **options)
        return proto

    async def ready(self, executorId: str = "box") -> None:
        self.loop.startExecutor(executorId)
        await bounded(self.loop.server.router.waitForExecutor(executorId, 1))


class RunTests(CliCase):
    async def test_pipedStdinEnds(self) -> None:
        await self.ready()
        result = await self.cli("run", "-i", "--", "cat", stdin=b"hi\nthere\n", seconds=20)
        self.assertEqual((result.code, result.out), (0, b"hi\nthere\n"), result)
        counted = await self.cli("run", "-i", "--", "wc", "-c", stdin=b"x" * 300_000)
        self.assertEqual((counted.code, counted.out.strip()), (0, b"300000"), counted)

    async def test_exitCodesLikeAShell(self) -> None:
        await self.ready()
        self.assertEqual((await self.cli("run", "--", "sh", "-c", "exit 3")).code, 3)
        missing = await self.cli("run", "--", "no-such-command-xyz")
        self.assertEqual(missing.code, 127, missing)
        self.assertIn("no-such-command-xyz: command not found", missing.err)
        notExecutable = os.path.join(self.tmp, "data.txt")
        with open(notExecutable, "w") as f:
            f.write("not a program\n")
        denied = await self.cli("run", "--", notExecutable)
        self.assertEqual(denied.code, 126, denied)
        self.assertIn(f"{notExecutable}: permission denied", denied.err)
        badDir = os.path.join(self.tmp, "nowhere")
        noDir = await self.cli("run", "-C", badDir, "--", "ls")
        self.assertEqual(noDir.code, 1, noDir)
        self.assertIn(f"-C {badDir}: no such directory on the executor", noDir.err)

    async def test_signalStatus(self) -> None:
        await self.ready()
        killed = await self.cli("run", "--", "sh", "-c", "kill -TERM $$")
        # 128+15 where the executor says which signal (0.171 dialect); 255 and a note where it
        # cannot (0.131 reports exitCode -1).
        if killed.code == 255:
            self.assertIn("killed by a signal", killed.err)
        else:
            self.assertEqual(killed.code, 143, killed)

    async def test_waitsForTheExecutor(self) -> None:
        # known (registered with our token, which then owns the id), but not connected yet
        from treq.client import HTTPClient
        from twisted.web.client import Agent

        from twisted_exec.net.quietweb import QuietConnectionPool

        http = HTTPClient(Agent(reactor, pool=QuietConnectionPool(reactor, persistent=False)))
        auth: dict[bytes | str, bytes | str] = {"Authorization": f"Bearer {TOKEN}"}
        registered = await bounded(
            http.post(f"{self.loop.url}/cloud/executor/box/register", headers=auth)
        )
        self.assertEqual(registered.code, 200)
        await bounded(registered.content())
        # Bounded by the CLI's own deadline, not a clock here: with ``--timeout 10`` it gives
        # up with 125 (test_waitGivesUpAtTheTimeout), so exit 0 means it saw the executor
        # connect within it.
        running = Deferred.fromCoroutine(
            self.cli("--timeout", "10", "run", "-e", "box", "--", "echo", "late")
        )
        await deferLater(reactor, 1.0, lambda: None)
        self.assertFalse(running.called)
        self.loop.startExecutor("box")
        result = await running
        self.assertEqual((result.code, result.out), (0, b"late\n"), result)

    async def test_waitGivesUpAtTheTimeout(self) -> None:
        result = await self.cli("--timeout", "1", "run", "--", "true")
        self.assertEqual(result.code, 125, result)
        self.assertIn("no executor connected", result.err)
        self.assertIn("within 1 s", result.err)


class ErrorTextTests(CliCase):
    async def test_missingToken(self) -> None:
        result = await self.cli("ls-executors", env=self.env(CODEX_RENDEZVOUS_TOKEN=""))
        self.assertEqual(result.code, 2, result)
        self.assertIn("CODEX_RENDEZVOUS_TOKEN", result.err)
        self.assertEqual(len(result.err.strip().splitlines()), 1, result)

    async def test_rendezvousUrlIsAUsageError(self) -> None:
        result = await self.cli("-r", "notaurl", "ls-executors")
        self.assertEqual(result.code, 2, result)
        self.assertTrue(result.err.startswith("codex-exec: error: --rendezvous"), result)
        self.assertIn("'notaurl'", result.err)

    async def test_tlsAgainstPlainHttpSaysSo(self) -> None:
        https = self.loop.url.replace("http://", "https://")
        result = await self.cli("-r", https, "--timeout", "2", "ls-executors")
        self.assertEqual(result.code, 125, result)
        self.assertIn("TLS", result.err)
        self.assertNotIn("reason: \n", result.err)
        named = await self.cli("-r", https, "--timeout", "2", "run", "-e", "box", "--", "true")
        self.assertEqual(named.code, 125, named)
        self.assertIn("plain http", named.err)

    async def test_unreachableNamesTheUrl(self) -> None:
        url = await closedPortUrl()
        result = await self.cli("-r", url, "--timeout", "2", "ls-executors")
        self.assertEqual(result.code, 125, result)
        self.assertIn(url, result.err)
        self.assertIn("refused", result.err)

    async def test_versionAndFastHelp(self) -> None:
        version = await self.cli("--version")
        self.assertEqual(version.code, 0, version)
        self.assertRegex(version.out.decode(), r"^codex-exec \d+\.\d+")
        help = await self.cli("--help")
        self.assertEqual(help.code, 0, help)
        self.assertIn(b"ls-executors", help.out)


class ListingTests(CliCase):
    async def test_lsExecutorsNameConnectionsAge(self) -> None:
        self.loop.startExecutor("box", name="My box")
        await bounded(self.loop.server.router.waitForExecutor("box", 1))
        result = await self.cli("ls-executors")
        self.assertEqual(result.code, 0, result)
        header, row = result.out.decode().splitlines()[:2]
        self.assertEqual(
            header.split(), ["EXECUTOR", "NAME", "STATE", "STREAMS", "CONNECTIONS", "AGE"]
        )
        self.assertRegex(row, r"^box\s+My box\s+connected\s+0\s+0\s+\d+s$")
        # a harness connected now counts; the age is the connection's
        connection = await self.loop.harness("box")
        await bounded(connection.openSession())
        again = await self.cli("ls-executors")
        self.assertRegex(again.out.decode(), r"(?m)^box\s+My box\s+connected\s+1\s+1\s+\d+s$")


class CopyTests(CliCase):
    async def test_copyBothWays(self) -> None:
        await self.ready()
        payload = os.urandom(3 << 20)
        local = os.path.join(self.tmp, "local.bin")
        with open(local, "wb") as f:
            f.write(payload)
        remote = os.path.join(self.tmp, "remote.bin")
        up = await self.cli("cp", local, ":" + remote)
        self.assertEqual(up.code, 0, up)
        back = os.path.join(self.tmp, "back.bin")
        down = await self.cli("cp", ":" + remote, back)
        self.assertEqual(down.code, 0, down)
        with open(back, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).digest(), hashlib.sha256(payload).digest())


#: ``cp`` size; the executor's metrics show it went in 1 MiB blocks. ``TWISTED_EXEC_CP_MB=200``
#: runs the issue's full 200 MB (past the relay's 64 MiB message limit; ~3 minutes here).
BIG_MB = int(os.environ.get("TWISTED_EXEC_CP_MB", "24"))


class BigCopyTests(CliCase):
    timeout = 600

    async def test_bigCopyBothWaysWhileAnotherStreamRuns(self) -> None:
        from twisted_exec.harness.errors import CallError

        _, executor = self.loop.startExecutor("box")
        await bounded(self.loop.server.router.waitForExecutor("box", 1))
        connection = await self.loop.harness("box")
        probe = await bounded(connection.openSession())
        try:
            await bounded(probe.call("fs/close", {"handleId": "probe"}))
        except CallError as e:
            if e.code == -32601:
                raise SkipTest("this executor has no fs/open yet (issue 12)") from None
        other = await bounded(connection.openSession())
        ticks: list[bytes] = []
        ticker = await bounded(
            other.spawn(
                ["/bin/sh", "-c", "while :; do echo tick; sleep 0.05; done"],
                self.tmp,
                onOutput=lambda stream, data: ticks.append(data),
                keepOutput=False,
            )
        )
        local = os.path.join(self.tmp, "big.bin")
        digest = hashlib.sha256()
        with open(local, "wb") as f:
            for _ in range(BIG_MB):
                block = os.urandom(1 << 20)
                digest.update(block)
                f.write(block)
        remote = os.path.join(self.tmp, "remote-big.bin")
        before = len(ticks)
        up = await self.cli("cp", local, ":" + remote, seconds=300)
        self.assertEqual(up.code, 0, up)
        back = os.path.join(self.tmp, "back-big.bin")
        down = await self.cli("cp", ":" + remote, back, seconds=300)
        self.assertEqual(down.code, 0, down)
        for path in (remote, back):
            check = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    check.update(chunk)
            self.assertEqual(check.hexdigest(), digest.hexdigest(), path)
        # in blocks of 1 MiB both ways (the executor counted them)
        assert executor.metrics is not None
        text = executor.metrics.render().decode()
        for method in ("fs/writeBlock", "fs/readBlock"):
            match = re.search(
                rf'codex_exec_request_duration_seconds_count{{method="{method}"}} (\S+)', text
            )
            self.assertIsNotNone(match, method)
            assert match is not None
            self.assertGreaterEqual(float(match.group(1)), BIG_MB, method)
        # the other stream's command kept running and streaming all along
        self.assertFalse(ticker.done)
        self.assertGreater(len(ticks) - before, 10)
        await bounded(ticker.terminate())


class TerminalTests(CliCase):
    async def runOnTerminal(self, rows: int, cols: int, script: str) -> tuple[int, _Cli]:
        """``codex-exec run --tty -- sh -c SCRIPT`` on a local pty of ``rows`` x ``cols``, once
        the executor is there: the pty's master side (to resize) and the child."""
        import fcntl
        import struct
        import termios

        await self.ready()
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        argv = ("run", "--tty", "--", "sh", "-c", script)
        pty = (master, slave, os.ttyname(slave))
        return master, self.spawnCli(*argv, stdin=None, usePTY=pty)

    async def test_ttyStartsAtTheLocalSize(self) -> None:
        _, proto = await self.runOnTerminal(41, 97, "stty size; exit 4")
        code = await bounded(proto.ended, 30)
        self.assertEqual(code, 4, proto.stdout)
        self.assertIn(b"41 97", proto.stdout)

    async def test_resizeFollowsTheLocalTerminal(self) -> None:
        import fcntl
        import struct
        import termios

        script = "trap 'stty size; exit 5' WINCH; echo ready; while :; do sleep 0.05; done"
        master, proto = await self.runOnTerminal(30, 90, script)
        for _ in range(300):
            if b"ready" in proto.stdout:
                break
            await deferLater(reactor, 0.05, lambda: None)
        self.assertIn(b"ready", proto.stdout)
        # the local terminal changes size: the kernel signals SIGWINCH to codex-exec, which
        # sends process/resize; the remote pty's kernel signals the remote shell in turn
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 132, 0, 0))
        code = await bounded(proto.ended, 30)
        self.assertEqual(code, 5, proto.stdout)
        self.assertIn(b"50 132", proto.stdout)
