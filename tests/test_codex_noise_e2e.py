"""End to end over Noise: the real Codex CLI 0.171.0, our rendezvous, a 0.171-style executor.

The CLI (``codex exec``, offline: a fake Responses API on loopback scripts the model) is pointed
at our rendezvous with ``CODEX_EXEC_SERVER_NOISE_REGISTRY_URL`` / ``_ENVIRONMENT_ID`` /
``_AUTH_TOKEN``. It calls ``/cloud/environment/{id}/connect``, opens the harness websocket,
runs the Noise handshake with the executor registered under that id, and sends its tool calls
(``exec_command``, ``apply_patch``) there. The executor is the 0.171 binary (``codex
exec-server --remote URL --environment-id ID``, ``CODEX_API_KEY`` its bearer) or ours
(``twistd -n codex-executor --remote URL --environment-id ID``, once it has that option).

The rendezvous is the real one, in this process, with a capture of every relay frame it
routes: what an observer between rendezvous and executor sees must hold no JSON-RPC in clear.

How the 0.171 executor and harness behave on the registry's refusals is
``tests/test_codex_noise_refusals.py``.

Skipped when the 0.171 binary is absent (``scripts/fetch_codex.sh``).
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.trial import unittest

from tests.support.codex_noise import (
    EXECUTOR_TOKEN,
    FINAL_TEXT,
    HARNESS_TOKEN,
    START_TIMEOUT,
    NoiseCloudCase,
    mainTurns,
    runCli,
    startExecutor,
)
from tests.support.codex_processes import ROOT, Collector, childEnv, firstOf, freshBaseDir
from tests.support.reference import NOT_FOUND, findCodex171
from twisted_exec.testing.environments import FROM_EXECUTOR, FROM_HARNESS

# Noise_hybridIK message sizes (docs: shared/spec/noise-0.171.md §2), checked on the binary.
MESSAGE_1_FIXED = 3568  # plus the UTF-8 authorization
MESSAGE_2 = 3424


def oursMissing() -> str | None:
    """Why our executor cannot serve the 0.171 CLI yet, or None: it needs ``--environment-id``
    (helper noise's part of issue 13) and the 0.171 method dialect (issue 12, helper dialect)."""
    try:
        from twisted_exec.executor.options import ExecutorOptions
    except ImportError:
        return "no twisted_exec.executor.options"
    if not any(p[0] == "environment-id" for p in ExecutorOptions.optParameters):
        return "our executor has no --environment-id yet (helper noise)"
    if importlib.util.find_spec("twisted_exec.executor.core.dialect") is None:
        return "our executor does not speak the 0.171 dialect yet (helper dialect)"
    return None


class NoiseLoopTests(NoiseCloudCase):
    """The 0.171 CLI's tools run in the executor registered under the environment id."""

    async def _loop(self, kind: str) -> None:
        environmentId = f"env-{kind}"
        executor = self.executor(kind, environmentId)
        await self.connected(environmentId)
        run = await runCli(self, self.reactor, self.base, self.url, environmentId, mainTurns())

        # exec_command ran in the executor: the shell's parent is the executor process.
        marker = run.workdir / "e2e-marker.txt"
        self.assertTrue(marker.exists(), run.cli.stderr[-3000:])
        self.assertEqual(marker.read_text().strip(), str(executor.pid))
        output = run.toolOutput("call_exec")
        self.assertIn("Process exited with code 0", output)
        self.assertIn(f"ppid={executor.pid} ", output)
        # apply_patch went through the executor's filesystem methods.
        self.assertEqual((run.workdir / "e2e-added.txt").read_text(), "added by apply_patch\n")
        self.assertEqual((run.workdir / "e2e-edit.txt").read_text(), "after\n")
        self.assertIn("Success", run.toolOutput("call_patch"))
        self.assertIn(FINAL_TEXT, run.cli.stdout)

        # The registry: one registration, and every authorization it minted was validated.
        registry = self.rendezvous.registry
        self.assertEqual(registry.answers["register", 200], 1)
        self.assertGreaterEqual(registry.answers["connect", 200], 1)
        self.assertEqual(registry.answers["valid", 200], registry.answers["connect", 200])
        self.assertEqual(registry.answers["invalid", 200], 0)
        self.assertEqual(registry.pendingAuthorizations(), 0)

        # The relay: a Noise handshake per stream, then ciphertext only.
        capture = self.rendezvous.capture
        hello = capture.of("handshake", FROM_HARNESS)
        answer = capture.of("handshake", FROM_EXECUTOR)
        self.assertGreaterEqual(len(hello), 1)
        self.assertEqual(len(answer), len(hello))
        for frame in hello:
            self.assertGreater(len(frame.payload), MESSAGE_1_FIXED)
            self.assertLessEqual(len(frame.payload), MESSAGE_1_FIXED + 4096)
        self.assertEqual({len(f.payload) for f in answer}, {MESSAGE_2})
        self.assertGreater(capture.kinds(FROM_HARNESS)["data"], 2)
        self.assertGreater(capture.kinds(FROM_EXECUTOR)["data"], 2)
        leaks = capture.plaintextLeaks(
            [b"e2e-marker", b"added by apply_patch", b"AGENTS.md", b"/proc/", b"ppid="]
        )
        self.assertEqual(leaks, [])

    def test_referenceExecutor(self) -> Deferred[None]:
        """The acceptance run: 0.171 CLI → our rendezvous → the 0.171 executor."""
        return defer.ensureDeferred(self._loop("reference"))

    def test_oursExecutor(self) -> Deferred[None]:
        """The same with our executor (``--environment-id``, helper noise's Noise responder)."""
        missing = oursMissing()
        if missing is not None:
            raise unittest.SkipTest(missing)
        return defer.ensureDeferred(self._loop("ours"))


def codexExecMissing() -> str | None:
    """Why ``codex-exec`` cannot reach an environment yet (helper noise's harness), or None."""
    if importlib.util.find_spec("twisted_exec.harness.environment") is None:
        return "codex-exec has no --noise harness yet (helper noise)"
    return None


class CodexExecTests(NoiseCloudCase):
    """``codex-exec --noise -e ID`` (our harness, Noise initiator) → our rendezvous → the 0.171
    executor."""

    def test_codexExecRunsInThe171Executor(self) -> Deferred[None]:
        missing = codexExecMissing()
        if missing is not None:
            raise unittest.SkipTest(missing)

        async def run() -> None:
            executor = self.executor("reference", "env-cli")
            await self.connected("env-cli")
            argv = [sys.executable, "-m", "twisted_exec.cli", "--noise", "-r", self.url]
            # The 0.171 executor takes the working directory as a file: URI (issue 12).
            argv += ["-e", "env-cli", "run", "-C", f"file://{self.base}", "--"]
            argv += ["sh", "-c", 'echo "ppid=$PPID"; exit 3']
            env = childEnv(self.base, PYTHONPATH=str(ROOT), CODEX_RENDEZVOUS_TOKEN=HARNESS_TOKEN)
            proto = Collector()
            transport = self.reactor.spawnProcess(
                proto, argv[0], argv, env=env, path=str(self.base)
            )
            transport.closeStdin()
            code = await firstOf(proto.ended, START_TIMEOUT, self.reactor)
            self.assertEqual(code, 3, proto.stderr[-2000:])
            self.assertEqual(proto.stdout, f"ppid={executor.pid}\n".encode())
            capture = self.rendezvous.capture
            self.assertEqual(len(capture.of("handshake", FROM_EXECUTOR)), 1)
            self.assertEqual(capture.plaintextLeaks([b"ppid", b"exit 3"]), [])
            self.assertEqual(self.rendezvous.registry.answers["valid", 200], 1)

        return defer.ensureDeferred(run())


class TwistdRendezvousTests(unittest.TestCase):
    """The same loop as a user runs it: ``twistd -n codex-rendezvous`` as its own process."""

    timeout = 180

    def setUp(self) -> None:
        from tests.support.twistd import pluginInstalled

        if findCodex171() is None:
            raise unittest.SkipTest(NOT_FOUND)
        if not pluginInstalled("codex-executor", "codex-rendezvous"):
            raise unittest.SkipTest("the twistd plugins are not installed (pip install .)")
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.base = freshBaseDir(self)

    def test_twistdRendezvousServesThe171Loop(self) -> Deferred[None]:
        from tests.test_rendezvous_twistd import _Spawner

        async def run() -> None:
            tokens = self.base / "tokens"
            tokens.write_text(f"{EXECUTOR_TOKEN} name=executor\n{HARNESS_TOKEN} name=cli reach=*\n")
            tokens.chmod(0o600)
            rendezvous = _Spawner(self).twistd(
                "codex-rendezvous",
                "--listen",
                "http://127.0.0.1:0",
                "--tokens-file",
                str(tokens),
                env={},
            )
            url = await rendezvous.firstLine.addTimeout(START_TIMEOUT, self.reactor)
            self.assertRegex(url, r"^http://127\.0\.0\.1:\d+$")
            executor = startExecutor(
                self, self.reactor, "reference", self.base, url, "env-twistd", EXECUTOR_TOKEN
            )
            # No wait: the harness retries `409 environment_offline` while the executor starts.
            result = await runCli(self, self.reactor, self.base, url, "env-twistd", mainTurns())
            marker = result.workdir / "e2e-marker.txt"
            self.assertTrue(marker.exists(), result.cli.stderr[-3000:])
            self.assertEqual(marker.read_text().strip(), str(executor.pid))
            self.assertEqual((result.workdir / "e2e-edit.txt").read_text(), "after\n")
            for secret in (EXECUTOR_TOKEN, HARNESS_TOKEN, "sig="):
                self.assertNotIn(secret.encode(), rendezvous.stderr + rendezvous.stdout)
            self.assertIn(b"environment 'env-twistd': executor connected", rendezvous.stderr)

        return defer.ensureDeferred(run())
