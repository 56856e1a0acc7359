"""One Codex CLI end-to-end scenario: the scripted model turns, the exec-server, the recording
proxy and the fake Responses API around one ``codex exec`` run, and the checks on its effects
that every CLI generation shares."""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.trial import unittest

from tests.support.codex_processes import (
    CliRun,
    ExecServer,
    childEnv,
    freshBaseDir,
    runCodexExec,
    startExecServer,
)
from tests.support.codex_transcripts import PIDS_LINE, Normaliser, transcript
from twisted_exec.testing.fake_responses import (
    API_KEY_ENV,
    FakeResponsesAPI,
    JsonObject,
    Turn,
    assistantMessage,
    codexConfigToml,
    customToolCall,
    functionCall,
)
from twisted_exec.testing.ws_recorder import CLIENT_TO_SERVER, RecordedEvent, WebSocketRecorder

MODEL = "gpt-5.2-codex"  # offers both exec_command and apply_patch
AGENTS_TEXT = "e2e: project instructions read through the exec-server\n"
MARKER = "e2e-marker.txt"
# POSIX sh (the CLI runs it with the user's login shell): records the shell's parent and prints
# its own pid, parent, process group and session from /proc.
EXEC_CMD = (
    f'echo "$PPID" > {MARKER}; set -- $(cat /proc/$$/stat); echo "pid=$1 ppid=$4 pgid=$5 sid=$6"'
)
PATCH = (
    "*** Begin Patch\n"
    "*** Add File: e2e-added.txt\n"
    "+added by apply_patch\n"
    "*** Update File: e2e-edit.txt\n"
    "@@\n"
    "-before\n"
    "+after\n"
    "*** End Patch\n"
)
TTY_CMD = 'read -r line; echo "got:$line"'
FINAL_TEXT = "e2e done"


@dataclass
class Scenario:
    """Everything one CLI run left behind."""

    base: Path
    workdir: Path
    server: ExecServer | None
    cli: CliRun
    api: FakeResponsesAPI
    events: list[RecordedEvent] = field(default_factory=list)

    def toolOutput(self, callId: str) -> str:
        """The text the CLI sent back to the model for ``callId``."""
        for body in self.api.responseBodies:
            for item in body.get("input", []):
                if item.get("call_id") == callId and item.get("type", "").endswith("_output"):
                    output = item.get("output")
                    return output if isinstance(output, str) else json.dumps(output)
        raise AssertionError(f"no output for {callId} in {len(self.api.requests)} model requests")

    def messages(self, direction: str | None = None) -> list[JsonObject]:
        return [
            json.loads(e.payload)
            for e in self.events
            if e.kind == "text" and (direction is None or e.direction == direction)
        ]


async def runScenario(
    case: unittest.TestCase,
    reactor: Any,
    codex: Path,
    kind: str,
    turns: Iterable[Turn],
    *,
    reachable: bool = True,
    prepare: Callable[[Path], None] = lambda workdir: None,
    model: str = MODEL,
    transcriptName: str | None = None,
) -> Scenario:
    """Start the exec-server (``kind``), the proxy and the fake API; run ``codex exec`` once.

    With ``reachable=False`` the exec-server is started and stopped again before the CLI runs, so
    the CLI is pointed at a port where nobody listens any more. ``model`` is the one the CLI's
    config names (it decides which tools the CLI offers); the transcript kept under
    ``CODEX_E2E_TRANSCRIPT_DIR`` is named ``transcriptName`` (``kind`` unless given).
    """
    base = freshBaseDir(case)
    workdir, cliHome = base / "work", base / "cli-home"
    workdir.mkdir()
    cliHome.mkdir()
    prepare(workdir)

    server = await startExecServer(reactor, kind, codex, base)
    case.addCleanup(lambda: defer.ensureDeferred(server.stop(reactor)))
    api = FakeResponsesAPI(turns)
    api.listen(reactor)
    case.addCleanup(api.stopListening)
    recorder: WebSocketRecorder | None = None
    if reachable:
        recorder = WebSocketRecorder(reactor, server.url)
        recorder.listen()
        case.addCleanup(recorder.stop)
        url = recorder.url
    else:
        await server.stop(reactor)
        url = server.url

    (cliHome / "config.toml").write_text(codexConfigToml(api.baseUrl, model))
    env = childEnv(cliHome, **{API_KEY_ENV: "sk-e2e-fake", "CODEX_EXEC_SERVER_URL": url})
    cli = await runCodexExec(reactor, codex, env, workdir, "run the end-to-end script")
    if recorder is not None:
        await recorder.stop()
    await api.stopListening()
    scenario = Scenario(base, workdir, server, cli, api, list(recorder.events) if recorder else [])
    _keepTranscript(scenario, transcriptName or kind, case)
    return scenario


def _writeToSession(body: JsonObject) -> Sequence[JsonObject]:
    """write_stdin to the session the interactive command left running (its id is in the text
    the CLI sent back for ``call_tty``, and is the exec-server's processId)."""
    outputs = [i for i in body["input"] if i.get("call_id") == "call_tty" and "output" in i]
    match = re.search(r"session ID (\d+)", str(outputs[-1]["output"]) if outputs else "")
    if match is None:
        return [assistantMessage(f"no session in {outputs!r}")]
    arguments = {"session_id": int(match.group(1)), "chars": "typed\n", "yield_time_ms": 5000}
    return [functionCall("call_write", "write_stdin", arguments)]


def mainTurns() -> list[Turn]:
    return [
        [functionCall("call_exec", "exec_command", {"cmd": EXEC_CMD})],
        [customToolCall("call_patch", "apply_patch", PATCH)],
        # An interactive command on a pty, still waiting for input when the call returns.
        [
            functionCall(
                "call_tty", "exec_command", {"cmd": TTY_CMD, "tty": True, "yield_time_ms": 250}
            )
        ],
        _writeToSession,
        [assistantMessage(FINAL_TEXT)],
    ]


def prepareWorkdir(workdir: Path) -> None:
    (workdir / "AGENTS.md").write_text(AGENTS_TEXT)
    (workdir / "e2e-edit.txt").write_text("before\n")


def _keepTranscript(scenario: Scenario, kind: str, case: unittest.TestCase) -> None:
    where = os.environ.get("CODEX_E2E_TRANSCRIPT_DIR")
    if not where or not scenario.events:
        return
    pid = scenario.server.pid if scenario.server else None
    lines = transcript(scenario.events, Normaliser(scenario.base, pid))
    name = f"codex-cli-transcript-{kind}-{case._testMethodName}.jsonl"
    Path(where).mkdir(parents=True, exist_ok=True)
    with open(Path(where) / name, "w") as f:
        for line in lines:
            f.write(json.dumps(line, sort_keys=False) + "\n")


def assertCompleted(case: unittest.TestCase, s: Scenario) -> None:
    """The CLI ran the whole conversation: exit 0, the final text, every turn asked for."""
    assert s.server is not None
    case.assertEqual(s.cli.exitCode, 0, s.cli.stderr)
    case.assertIn(FINAL_TEXT, s.cli.stdout)
    case.assertEqual(s.api.unexpected, [])
    case.assertEqual(len(s.api.requests), len(mainTurns()), s.cli.stderr)


def assertCommandRanInTheServer(case: unittest.TestCase, s: Scenario) -> list[Any]:
    """exec_command's child wrote the marker and is a direct child of the exec-server leading
    its own session (setsid, hence its own process group), as the reference's is. Returns the
    ``process/start`` requests (the command's first)."""
    assert s.server is not None
    case.assertEqual((s.workdir / MARKER).read_text().strip(), str(s.server.pid))
    out = s.toolOutput("call_exec")
    case.assertIn("Process exited with code 0", out)
    match = PIDS_LINE.search(out)
    case.assertIsNotNone(match, out)
    assert match is not None
    pid, ppid, pgid, sid = (int(match.group(i)) for i in range(1, 5))
    case.assertEqual((ppid, pgid, sid), (s.server.pid, pid, pid), out)
    starts = [m for m in s.messages(CLIENT_TO_SERVER) if m.get("method") == "process/start"]
    case.assertEqual(len(starts), 2)
    case.assertEqual(starts[0]["params"]["argv"][-1], EXEC_CMD)
    return starts


def assertPatchWroteThroughFs(
    case: unittest.TestCase, s: Scenario, hostPath: Callable[[str], str]
) -> None:
    """apply_patch's two files have their new text, written with ``fs/writeFile`` (whose
    ``path`` ``hostPath`` turns into a host path: 0.171 sends ``file:`` URIs)."""
    case.assertEqual((s.workdir / "e2e-added.txt").read_text(), "added by apply_patch\n")
    case.assertEqual((s.workdir / "e2e-edit.txt").read_text(), "after\n")
    writes = {
        hostPath(m["params"]["path"]): base64.b64decode(m["params"]["dataBase64"]).decode()
        for m in s.messages(CLIENT_TO_SERVER)
        if m.get("method") == "fs/writeFile"
    }
    case.assertEqual(
        writes,
        {
            str(s.workdir / "e2e-added.txt"): "added by apply_patch\n",
            str(s.workdir / "e2e-edit.txt"): "after\n",
        },
    )


def assertWriteStdinReachedTheTty(case: unittest.TestCase, s: Scenario, echoed: str) -> None:
    """The tty command started, and write_stdin's text came back in its output as ``echoed``."""
    case.assertIn("Process running with session ID", s.toolOutput("call_tty"))
    written = s.toolOutput("call_write")
    case.assertIn("Process exited with code 0", written)
    case.assertIn(echoed, written)


class CodexScenarioMixin:
    """Scenarios run against the exec-server named by ``kind`` (``reference`` or ``ours``),
    driven by the Codex CLI that ``locate`` finds (skipping the test when it finds none)."""

    kind: str
    locate: Callable[[], str]

    def setUp(self) -> None:
        self.codex = Path(type(self).locate())
        from twisted.internet import reactor

        self.reactor: Any = reactor
