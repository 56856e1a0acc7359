"""The Codex 0.171 end-to-end loop over Noise, for its tests: our rendezvous in this process
(with a capture of every relay frame), a 0.171-style executor registered under an environment
id (the 0.171 binary or ours under ``twistd``), and the 0.171 CLI sent to that environment by
``CODEX_EXEC_SERVER_NOISE_*`` with a fake Responses API scripting the model."""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.trial import unittest

from tests.support.codex_processes import (
    OURS_LAUNCHER,
    ROOT,
    ChildProcess,
    CliRun,
    Collector,
    childEnv,
    firstOf,
    freshBaseDir,
    runCodexExec,
)
from tests.support.codex_scenario import EXEC_CMD, PATCH, prepareWorkdir
from tests.support.reference import NOT_FOUND, binary171, findCodex171
from twisted_exec.testing.environments import EnvironmentRendezvous, reaching
from twisted_exec.testing.fake_responses import (
    API_KEY_ENV,
    FakeResponsesAPI,
    Turn,
    assistantMessage,
    codexConfigToml,
    customToolCall,
    functionCall,
)

MODEL = "gpt-5.5"  # offers exec_command and apply_patch in 0.171
EXECUTOR_TOKEN = "sk-envreg-executor-token"
HARNESS_TOKEN = "sk-envreg-harness-token"
OTHER_TOKEN = "sk-envreg-other-tenant"
START_TIMEOUT = 30.0
EXIT_TIMEOUT = 20.0
FINAL_TEXT = "noise e2e done"


@dataclass
class Executor(ChildProcess):
    """A 0.171-style executor serving an environment of the rendezvous remotely."""

    async def exited(self, reactor: Any) -> int | None:
        return await firstOf(self.proto.ended, EXIT_TIMEOUT, reactor)  # type: ignore[no-any-return]


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
        argv = [sys.executable, "-c", OURS_LAUNCHER, str(ROOT / "twistd_plugins"), "-n"]
        argv += ["--pidfile=", "codex-executor", "--remote", rendezvousUrl]
        argv += ["--environment-id", environmentId]
        env = childEnv(
            home,
            PYTHONPATH=str(ROOT),
            CODEX_API_KEY=token,
            CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN=token,
        )
    proto = Collector()
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


class NoiseCloudCase(unittest.TestCase):
    """Our rendezvous in this process, with two tenants' tokens, and a scratch directory;
    skipped without the 0.171 binary. No tests of its own."""

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
            await sleep(self.reactor, 0.1)
        raise AssertionError(f"{call} -> {status} not seen: {self.rendezvous.registry.answers}")


def sleep(reactor: Any, seconds: float) -> Deferred[None]:
    d: Deferred[None] = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d
