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

Also here: how the 0.171 executor and harness behave on the registry's refusals (wrong token,
an id owned by another credential, a second executor for a served id, an offline environment).

Skipped when the 0.171 binary is absent (``scripts/fetch_codex.sh``).
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.trial import unittest

from tests.support.reference import NOT_FOUND, binary171, findCodex171
from tests.test_codex_cli_e2e import (
    _OURS_LAUNCHER,
    EXEC_CMD,
    PATCH,
    CliRun,
    _Collector,
    _firstOf,
    _stopProcess,
    childEnv,
    freshBaseDir,
    prepareWorkdir,
    runCodexExec,
)
from twisted_exec.testing.environments import (
    FROM_EXECUTOR,
    FROM_HARNESS,
    EnvironmentRendezvous,
    reaching,
)
from twisted_exec.testing.fake_responses import (
    API_KEY_ENV,
    FakeResponsesAPI,
    Turn,
    assistantMessage,
    codexConfigToml,
    customToolCall,
    functionCall,
)

ROOT = Path(__file__).resolve().parent.parent

MODEL = "gpt-5.5"  # offers exec_command and apply_patch in 0.171
EXECUTOR_TOKEN = "sk-envreg-executor-token"
HARNESS_TOKEN = "sk-envreg-harness-token"
OTHER_TOKEN = "sk-envreg-other-tenant"
START_TIMEOUT = 30.0
EXIT_TIMEOUT = 20.0
FINAL_TEXT = "noise e2e done"

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


@dataclass
class Executor:
    kind: str
    pid: int
    transport: Any
    proto: _Collector

    async def stop(self, reactor: Any) -> None:
        await _stopProcess(reactor, self.transport, self.proto)

    async def exited(self, reactor: Any) -> int | None:
        return await _firstOf(self.proto.ended, EXIT_TIMEOUT, reactor)  # type: ignore[no-any-return]


def startExecutor(
    case: unittest.TestCase,
    reactor: Any,
    kind: str,
    base: Path,
    rendezvousUrl: str,
    environmentId: str,
    token: str,
) -> Executor:
    home = Path(tempfile.mkdtemp(prefix=f"{kind}-executor-home-", dir=base))
    if kind == "reference":
        argv = [binary171(), "exec-server", "--remote", rendezvousUrl]
        argv += ["--environment-id", environmentId]
        env = childEnv(home, CODEX_API_KEY=token)
    else:
        argv = [sys.executable, "-c", _OURS_LAUNCHER, str(ROOT / "twistd_plugins"), "-n"]
        argv += ["--pidfile=", "codex-executor", "--remote", rendezvousUrl]
        argv += ["--environment-id", environmentId]
        env = childEnv(
            home,
            PYTHONPATH=str(ROOT),
            CODEX_API_KEY=token,
            CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN=token,
        )
    proto = _Collector()
    transport = reactor.spawnProcess(proto, argv[0], argv, env=env, path=str(base))
    executor = Executor(kind, transport.pid, transport, proto)
    case.addCleanup(lambda: defer.ensureDeferred(executor.stop(reactor)))
    return executor


def mainTurns() -> list[Turn]:
    return [
        [functionCall("call_exec", "exec_command", {"cmd": EXEC_CMD})],
        [customToolCall("call_patch", "apply_patch", PATCH)],
        [assistantMessage(FINAL_TEXT)],
    ]


@dataclass
class Run:
    workdir: Path
    cli: CliRun
    api: FakeResponsesAPI

    def toolOutput(self, callId: str) -> str:
        for body in self.api.responseBodies:
            for item in body.get("input", []):
                if item.get("call_id") == callId and item.get("type", "").endswith("_output"):
                    return str(item.get("output"))
        raise AssertionError(f"no output for {callId}; CLI stderr {self.cli.stderr[-3000:]}")


async def runCli(
    case: unittest.TestCase,
    reactor: Any,
    base: Path,
    rendezvousUrl: str,
    environmentId: str,
    turns: list[Turn],
    token: str = HARNESS_TOKEN,
) -> Run:
    workdir, home = base / "work", base / "cli-home"
    workdir.mkdir()
    home.mkdir()
    prepareWorkdir(workdir)
    api = FakeResponsesAPI(turns)
    api.listen(reactor)
    case.addCleanup(api.stopListening)
    (home / "config.toml").write_text(codexConfigToml(api.baseUrl, MODEL))
    env = childEnv(
        home,
        **{
            API_KEY_ENV: "sk-e2e-fake",
            "CODEX_EXEC_SERVER_NOISE_REGISTRY_URL": rendezvousUrl,
            "CODEX_EXEC_SERVER_NOISE_ENVIRONMENT_ID": environmentId,
            "CODEX_EXEC_SERVER_NOISE_AUTH_TOKEN": token,
        },
    )
    cli = await runCodexExec(
        reactor, Path(binary171()), env, workdir, "run the noise end-to-end script"
    )
    await api.stopListening()
    return Run(workdir, cli, api)


class _Base(unittest.TestCase):
    timeout = 180

    def setUp(self) -> None:
        if findCodex171() is None:
            raise unittest.SkipTest(NOT_FOUND)
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.base = freshBaseDir(self)
        # Two tokens are two tenants: the CLI's token reaches every environment (reach=*).
        self.rendezvous = EnvironmentRendezvous(
            reactor, [EXECUTOR_TOKEN, reaching(HARNESS_TOKEN), OTHER_TOKEN], reach=None
        )
        self.url = self.rendezvous.listen()
        self.addCleanup(self.rendezvous.stop)

    def executor(self, kind: str, environmentId: str, token: str = EXECUTOR_TOKEN) -> Executor:
        return startExecutor(self, self.reactor, kind, self.base, self.url, environmentId, token)

    async def connected(self, environmentId: str, connections: int = 1) -> None:
        waiting = self.rendezvous.waitForExecutor(environmentId, connections)
        await waiting.addTimeout(START_TIMEOUT, self.reactor)

    async def answered(self, call: str, status: int, count: int = 1) -> None:
        """Wait (bounded) until the registry has answered ``call`` with ``status`` ``count``
        times."""
        for _ in range(int(START_TIMEOUT / 0.1)):
            if self.rendezvous.registry.answers[call, status] >= count:
                return
            await _sleep(self.reactor, 0.1)
        raise AssertionError(f"{call} -> {status} not seen: {self.rendezvous.registry.answers}")


def _sleep(reactor: Any, seconds: float) -> Deferred[None]:
    d: Deferred[None] = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


class NoiseLoopTests(_Base):
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


class CodexExecTests(_Base):
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
            proto = _Collector()
            transport = self.reactor.spawnProcess(
                proto, argv[0], argv, env=env, path=str(self.base)
            )
            transport.closeStdin()
            code = await _firstOf(proto.ended, START_TIMEOUT, self.reactor)
            self.assertEqual(code, 3, proto.stderr[-2000:])
            self.assertEqual(proto.stdout, f"ppid={executor.pid}\n".encode())
            capture = self.rendezvous.capture
            self.assertEqual(len(capture.of("handshake", FROM_EXECUTOR)), 1)
            self.assertEqual(capture.plaintextLeaks([b"ppid", b"exit 3"]), [])
            self.assertEqual(self.rendezvous.registry.answers["valid", 200], 1)

        return defer.ensureDeferred(run())


class RegistryRefusalTests(_Base):
    """How the 0.171 executor and harness react to what the registry refuses."""

    def test_executorWithAnUnknownTokenExits(self) -> Deferred[None]:
        async def run() -> None:
            executor = self.executor("reference", "env-x", token="sk-not-accepted")
            self.assertEqual(await executor.exited(self.reactor), 1)
            self.assertIn(b"authentication failed (401 Unauthorized)", executor.proto.stderr)
            self.assertIn(b"invalid bearer token", executor.proto.stderr)
            self.assertIsNone(self.rendezvous.registry.environment("env-x"))

        return defer.ensureDeferred(run())

    def test_anotherCredentialNeverDisplacesTheHolder(self) -> Deferred[None]:
        async def run() -> None:
            self.executor("reference", "env-owned")
            await self.connected("env-owned")
            intruder = self.executor("reference", "env-owned", token=OTHER_TOKEN)
            self.assertEqual(await intruder.exited(self.reactor), 1)
            self.assertIn(b"(409 Conflict, environment_id_taken)", intruder.proto.stderr)
            record = self.rendezvous.server.environments.router.record("env-owned")
            assert record is not None
            self.assertEqual((record.connected, record.connections), (True, 1))

        return defer.ensureDeferred(run())

    def test_secondExecutorWaitsForTheFirst(self) -> Deferred[None]:
        """Same credential, another process (another key) while the first is connected:
        ``503 registration_conflict``, which the 0.171 executor retries until it is free."""

        async def run() -> None:
            first = self.executor("reference", "env-busy")
            await self.connected("env-busy")
            self.executor("reference", "env-busy")
            await self.answered("register", 503, 2)
            record = self.rendezvous.server.environments.router.record("env-busy")
            assert record is not None
            self.assertEqual(record.connections, 1)
            await first.stop(self.reactor)
            await self.connected("env-busy", 2)
            env = self.rendezvous.registry.environment("env-busy")
            assert env is not None
            self.assertEqual(env.registrations, self.rendezvous.registry.answers["register", 200])

        return defer.ensureDeferred(run())

    def test_harnessRetriesAnOfflineEnvironment(self) -> Deferred[None]:
        """``409 environment_offline`` is retried by the 0.171 harness: an executor that comes
        back during its retries serves the tool calls."""

        async def run() -> None:
            first = self.executor("reference", "env-late")
            await self.connected("env-late")
            await first.stop(self.reactor)
            cli: Deferred[Run] = defer.ensureDeferred(
                runCli(self, self.reactor, self.base, self.url, "env-late", mainTurns())
            )
            await self.answered("connect", 409)
            second = self.executor("reference", "env-late")
            result = await cli
            self.assertEqual(
                (result.workdir / "e2e-marker.txt").read_text().strip(), str(second.pid)
            )
            self.assertGreaterEqual(self.rendezvous.registry.answers["valid", 200], 1)

        return defer.ensureDeferred(run())

    def test_harnessFetchesAFreshBundleAfterA401Upgrade(self) -> Deferred[None]:
        """A harness URL refused with 401 (spent, expired): 0.171 calls ``connect`` again."""

        async def run() -> None:
            environments: Any = self.rendezvous.server.environments
            admit = environments.admit
            refused: list[str] = []

            def refuseFirstHarness(protocol: Any, request: ConnectionRequest) -> Any:
                if request.params.get("role") == ["harness"] and not refused:
                    refused.append(request.path)
                    raise ConnectionDeny(401, "refused once by the test")
                return admit(protocol, request)

            environments.admit = refuseFirstHarness
            executor = self.executor("reference", "env-401")
            await self.connected("env-401")
            result = await runCli(self, self.reactor, self.base, self.url, "env-401", mainTurns())
            self.assertEqual(len(refused), 1)
            self.assertEqual(
                (result.workdir / "e2e-marker.txt").read_text().strip(), str(executor.pid)
            )
            registry = self.rendezvous.registry
            self.assertEqual(registry.answers["connect", 200], 2)
            self.assertEqual(registry.answers["valid", 200], 1)

        return defer.ensureDeferred(run())

    def test_executorRejectsAHarnessTheRegistryDoesNotVouchFor(self) -> Deferred[None]:
        """``validate`` answering ``{"valid": false}``: the 0.171 executor resets the stream
        without its handshake reply, and the harness's tools fail."""

        async def run() -> None:
            registry: Any = self.rendezvous.registry
            validate = registry.validate

            def refuse(credential: str, environmentId: str, body: bytes) -> Any:
                validate(credential, environmentId, body)
                return 200, {"valid": False}

            registry.validate = refuse
            self.executor("reference", "env-refused")
            await self.connected("env-refused")
            turns: list[Turn] = [
                [functionCall("call_exec", "exec_command", {"cmd": "true"})],
                [assistantMessage(FINAL_TEXT)],
            ]
            result = await runCli(self, self.reactor, self.base, self.url, "env-refused", turns)
            capture = self.rendezvous.capture
            self.assertEqual(capture.of("handshake", FROM_EXECUTOR), [])
            resets = capture.of("reset", FROM_EXECUTOR)
            self.assertEqual(
                {f.decode().reset.reason for f in resets}, {"noise_relay_protocol_error"}
            )
            # One reset per attempt; the harness asked for a fresh bundle each time (0.171 made
            # three attempts here), then gave the tools up.
            self.assertGreaterEqual(len(resets), 2)
            self.assertEqual(len(resets), registry.answers["connect", 200])
            self.assertEqual(len(resets), registry.answers["validate", 200])
            self.assertIn("No usable execution environment", result.toolOutput("call_exec"))

        return defer.ensureDeferred(run())

    def test_harnessOfAnotherTenantIsRefused(self) -> Deferred[None]:
        """A CLI token that neither registered the environment nor reaches it: ``403``, and the
        0.171 harness gives up at once (no retry)."""

        async def run() -> None:
            self.executor("reference", "env-private")
            await self.connected("env-private")
            turns: list[Turn] = [
                [functionCall("call_exec", "exec_command", {"cmd": "true"})],
                [assistantMessage(FINAL_TEXT)],
            ]
            result = await runCli(
                self, self.reactor, self.base, self.url, "env-private", turns, token=OTHER_TOKEN
            )
            registry = self.rendezvous.registry
            self.assertEqual(registry.answers["connect", 200], 0)
            self.assertEqual(self.rendezvous.capture.frames, [])
            self.assertIn("No usable execution environment", result.toolOutput("call_exec"))

        return defer.ensureDeferred(run())

    def test_harnessGivesUpOnAnUnknownEnvironment(self) -> Deferred[None]:
        async def run() -> None:
            turns: list[Turn] = [
                [functionCall("call_exec", "exec_command", {"cmd": "true"})],
                [assistantMessage(FINAL_TEXT)],
            ]
            result = await runCli(self, self.reactor, self.base, self.url, "env-none", turns)
            self.assertEqual(self.rendezvous.registry.answers["connect", 404], 1)
            self.assertIn("No usable execution environment", result.toolOutput("call_exec"))

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
