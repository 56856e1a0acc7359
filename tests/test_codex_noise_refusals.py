"""End to end over Noise, the registry's refusals: how the real Codex 0.171.0 executor and CLI
behave when our rendezvous refuses them (an unknown token, an id owned by another credential, a
second executor for a served id, an offline or unknown environment, a refused upgrade or key
authorization, another tenant's harness).

Skipped when the 0.171 binary is absent (``scripts/fetch_codex.sh``).
"""

from __future__ import annotations

from typing import Any

from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet import defer
from twisted.internet.defer import Deferred

from tests.support.codex_noise import (
    FINAL_TEXT,
    OTHER_TOKEN,
    NoiseCloudCase,
    Run,
    mainTurns,
    runCli,
)
from twisted_exec.testing.environments import FROM_EXECUTOR
from twisted_exec.testing.fake_responses import Turn, assistantMessage, functionCall


class RegistryRefusalTests(NoiseCloudCase):
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
