"""Our Noise harness side end to end through the real rendezvous (helper envreg's registry).

``codex-exec --noise -e ENV run`` and :func:`connectEnvironment` against the **0.171 binary**
(``codex exec-server --remote URL --environment-id ENV``, ``CODEX_API_KEY`` its bearer) and
against **our executor** (``--environment-id``): the command runs in the executor (its parent
is the executor's pid) and the relay capture between rendezvous and executor holds no JSON-RPC
in clear. The 0.171 CLI as the harness is ``tests/test_codex_noise_e2e.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase

from twisted_exec.executor.executor import Executor
from twisted_exec.executor.transports.relay.environment_registry import EnvironmentConfig
from twisted_exec.executor.transports.relay.environment_service import EnvironmentExecutorService
from twisted_exec.harness import connectEnvironment
from twisted_exec.testing.environments import FROM_EXECUTOR, EnvironmentRendezvous

ROOT = Path(__file__).resolve().parent.parent
EXECUTOR_TOKEN = "sk-noise-e2e-executor"
HARNESS_TOKEN = "sk-noise-e2e-harness"
COMMAND_MARK = b"noise-e2e-ppid="


def binary171() -> str:
    for candidate in (
        Path(os.environ.get("CODEX_171_BIN", ROOT / "vendor/codex-0.171.0/codex")),
        Path("/work/main/vendor/codex-0.171.0/codex"),
    ):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise SkipTest("Codex CLI 0.171.0 not found; run scripts/fetch_codex.sh")


def bounded(d: Deferred[Any], seconds: float = 30.0) -> Deferred[Any]:
    return d.addTimeout(seconds, reactor)


class _Collect(ProcessProtocol):
    def __init__(self) -> None:
        self.out = b""
        self.err = b""
        self.ended: Deferred[int] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def errReceived(self, data: bytes) -> None:
        self.err += data

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(getattr(reason.value, "exitCode", -1))


class NoiseHarnessEndToEndTests(TestCase):
    timeout = 90

    def setUp(self) -> None:
        # The double gives every token reach=* (tenancy has tests of its own).
        self.rendezvous = EnvironmentRendezvous(reactor, [EXECUTOR_TOKEN, HARNESS_TOKEN])
        self.url = self.rendezvous.listen()
        self.addCleanup(self.rendezvous.stop)
        self.home = os.path.abspath(self.mktemp())
        os.makedirs(self.home)

    def startReference(self, environmentId: str) -> int:
        binary = binary171()
        proto = _Collect()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home}
        env.update(CODEX_HOME=self.home, CODEX_API_KEY=EXECUTOR_TOKEN)
        argv = [binary, "exec-server", "--remote", self.url, "--environment-id", environmentId]
        transport = reactor.spawnProcess(proto, binary, argv, env=env, path=self.home)

        def stop() -> Deferred[int]:
            if not proto.ended.called:
                transport.signalProcess("KILL")
            return proto.ended

        self.addCleanup(stop)
        pid: int = transport.pid
        return pid

    def startOurs(self, environmentId: str) -> int:
        executor = Executor(reactor)
        self.addCleanup(executor.shutdown)
        config = EnvironmentConfig.fromInputs(
            self.url, environmentId, environ={"CODEX_API_KEY": EXECUTOR_TOKEN}
        )
        service = EnvironmentExecutorService(reactor, executor.processorFactory, config)
        service.startService()
        self.addCleanup(lambda: service.stopService() if service.running else None)
        return os.getpid()

    async def codexExec(self, environmentId: str) -> tuple[bytes, int]:
        proto = _Collect()
        argv = [sys.executable, "-m", "twisted_exec.cli", "--rendezvous", self.url, "--noise"]
        argv += ["-e", environmentId, "run", "--", "/bin/sh", "-c"]
        argv += [f"printf '{COMMAND_MARK.decode()}%s\\n' $PPID; exit 7"]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)}
        env["CODEX_RENDEZVOUS_TOKEN"] = HARNESS_TOKEN
        reactor.spawnProcess(proto, sys.executable, argv, env=env, path=self.home)
        code = await bounded(proto.ended, 60)
        self.assertEqual(code, 7, proto.err)
        return proto.out, code

    def assertNoPlaintext(self) -> None:
        capture = self.rendezvous.capture
        self.assertGreater(len(capture.of("data", FROM_EXECUTOR)), 0)
        self.assertEqual(capture.plaintextLeaks([COMMAND_MARK, b"/bin/sh"]), [])

    async def test_codexExecAgainstReference(self) -> None:
        pid = self.startReference("ref-env")
        await bounded(self.rendezvous.waitForExecutor("ref-env"))
        out, _ = await self.codexExec("ref-env")
        self.assertEqual(out, COMMAND_MARK + str(pid).encode() + b"\n")
        self.assertNoPlaintext()

    async def test_codexExecAgainstOurs(self) -> None:
        pid = self.startOurs("our-env")
        await bounded(self.rendezvous.waitForExecutor("our-env"))
        out, _ = await self.codexExec("our-env")
        self.assertEqual(out, COMMAND_MARK + str(pid).encode() + b"\n")
        self.assertNoPlaintext()

    async def test_codexExecCatAndLsAgainstReference(self) -> None:
        self.startReference("fs-env")
        await bounded(self.rendezvous.waitForExecutor("fs-env"))
        target = Path(self.home) / "hello.txt"
        target.write_bytes(b"hello over noise\n")
        for command, expected in (
            (["cat", str(target)], b"hello over noise\n"),
            (["ls", self.home], b"hello.txt"),
        ):
            proto = _Collect()
            argv = [sys.executable, "-m", "twisted_exec.cli", "--rendezvous", self.url]
            argv += ["--noise", "-e", "fs-env", *command]
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)}
            env["CODEX_RENDEZVOUS_TOKEN"] = HARNESS_TOKEN
            reactor.spawnProcess(proto, sys.executable, argv, env=env, path=self.home)
            self.assertEqual(await bounded(proto.ended, 60), 0, proto.err)
            self.assertIn(expected, proto.out)
        self.assertNoPlaintext()

    async def test_libraryAgainstReference(self) -> None:
        pid = self.startReference("lib-env")
        await bounded(self.rendezvous.waitForExecutor("lib-env"))
        connection = await bounded(connectEnvironment(reactor, self.url, "lib-env", HARNESS_TOKEN))
        self.addCleanup(connection.close)
        session = await bounded(connection.openSession("codex-environment"))
        process = await bounded(session.spawn(["/bin/sh", "-c", "echo $PPID"], self.home))
        self.assertEqual(await bounded(process.finished), 0)
        self.assertEqual(process.stdout(), f"{pid}\n".encode())
        self.assertNoPlaintext()
