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
from twisted.trial.unittest import TestCase

from tests.support.children import ChildOutput, spawnChild
from tests.support.reference import codexHome, spawnReference
from twisted_exec.executor.executor import Executor
from twisted_exec.executor.transports.relay.environment_registry import EnvironmentConfig
from twisted_exec.executor.transports.relay.environment_service import EnvironmentExecutorService
from twisted_exec.harness import connectEnvironment
from twisted_exec.testing.environments import FROM_EXECUTOR, EnvironmentRendezvous

ROOT = Path(__file__).resolve().parent.parent
EXECUTOR_TOKEN = "sk-noise-e2e-executor"
HARNESS_TOKEN = "sk-noise-e2e-harness"
COMMAND_MARK = b"noise-e2e-ppid="


def bounded(d: Deferred[Any], seconds: float = 30.0) -> Deferred[Any]:
    return d.addTimeout(seconds, reactor)


class NoiseHarnessEndToEndTests(TestCase):
    timeout = 90

    def setUp(self) -> None:
        # The double gives every token reach=* (tenancy has tests of its own).
        self.rendezvous = EnvironmentRendezvous(reactor, [EXECUTOR_TOKEN, HARNESS_TOKEN])
        self.url = self.rendezvous.listen()
        self.addCleanup(self.rendezvous.stop)
        self.home = codexHome(self)

    def startReference(self, environmentId: str) -> int:
        argv = ["--remote", self.url, "--environment-id", environmentId]
        env = {"CODEX_API_KEY": EXECUTOR_TOKEN}
        transport = spawnReference(self, ChildOutput(), self.home, *argv, env=env)
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

    async def codexExecNoise(self, environmentId: str, *command: str) -> tuple[ChildOutput, int]:
        """``codex-exec --noise -e ENV COMMAND...`` until it ends (bounded): it and its code."""
        proto = ChildOutput()
        argv = [sys.executable, "-m", "twisted_exec.cli", "--rendezvous", self.url, "--noise"]
        argv += ["-e", environmentId, *command]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)}
        env["CODEX_RENDEZVOUS_TOKEN"] = HARNESS_TOKEN
        spawnChild(self, proto, argv, env, path=self.home)
        code: int = await bounded(proto.ended, 60)
        return proto, code

    async def codexExec(self, environmentId: str) -> tuple[bytes, int]:
        script = f"printf '{COMMAND_MARK.decode()}%s\\n' $PPID; exit 7"
        proto, code = await self.codexExecNoise(environmentId, "run", "--", "/bin/sh", "-c", script)
        self.assertEqual(code, 7, proto.stderr)
        return proto.stdout, code

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
            proto, code = await self.codexExecNoise("fs-env", *command)
            self.assertEqual(code, 0, proto.stderr)
            self.assertIn(expected, proto.stdout)
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
