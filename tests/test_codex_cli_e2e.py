"""End to end: the real Codex CLI 0.131.0 sends its tool calls to an exec-server.

The CLI runs ``codex exec`` against a fake Responses API on loopback (scripted model turns), with
``CODEX_EXEC_SERVER_URL`` pointing at a recording websocket proxy in front of the exec-server under
test: the reference (``codex exec-server --listen``) or ours (``twistd -n codex-executor
--listen``).  ``codex exec`` exits 0 even when the exec-server fails, so every check is on
effects: files the command and the patch wrote, the command's parent process, and what the CLI
reported back to the model.

Skipped when the CLI binary is absent (``scripts/fetch_codex.sh`` fetches it).  Set
``CODEX_E2E_TRANSCRIPT_DIR`` to keep the normalised websocket transcripts of each run.
"""

from __future__ import annotations

import difflib
import json
import os

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.trial import unittest

from tests.support import codex_scenario as scenario
from tests.support.codex_scenario import (
    AGENTS_TEXT,
    EXEC_CMD,
    FINAL_TEXT,
    MARKER,
    TTY_CMD,
    CodexScenarioMixin,
    Scenario,
)
from tests.support.codex_transcripts import Normaliser, semanticView
from tests.support.reference import binary131
from twisted_exec.testing.fake_responses import Turn, assistantMessage, functionCall
from twisted_exec.testing.ws_recorder import CLIENT_TO_SERVER


class _CodexCliE2EMixin(CodexScenarioMixin):
    """The scenarios, run against the exec-server named by ``kind``."""

    locate = staticmethod(binary131)

    async def _main(self) -> Scenario:
        case: unittest.TestCase = self  # type: ignore[assignment]
        return await scenario.runScenario(
            case,
            self.reactor,
            self.codex,
            self.kind,
            scenario.mainTurns(),
            prepare=scenario.prepareWorkdir,
        )

    def test_execCommandAndApplyPatch(self) -> Deferred[None]:
        """exec_command runs through the exec-server (its child writes the marker and is a child
        of the exec-server, leading its own session); apply_patch edits files through fs/*;
        AGENTS.md is read through fs/readFile."""
        return defer.ensureDeferred(self._checkMain())

    async def _checkMain(self) -> None:
        case: unittest.TestCase = self  # type: ignore[assignment]
        s = await self._main()
        scenario.assertCompleted(case, s)

        # (a) the command ran as a child of the exec-server, in its own process group.
        scenario.assertCommandRanInTheServer(case, s)

        # (b) apply_patch read and wrote the files through fs/*.
        case.assertRegex(
            s.toolOutput("call_patch"),
            r"^Exit code: 0\nWall time: [0-9.]+ seconds\nOutput:\n"
            r"Success\. Updated the following files:\nA e2e-added\.txt\nM e2e-edit\.txt\n$",
        )
        scenario.assertPatchWroteThroughFs(case, s, lambda path: path)

        # (a') an interactive command: tty on the exec-server, write_stdin is process/write.
        scenario.assertWriteStdinReachedTheTty(case, s, "typed\r\ngot:typed\r\n")
        requests = s.messages(CLIENT_TO_SERVER)
        ttyStart = next(
            m for m in requests if m.get("method") == "process/start" and m["params"]["tty"]
        )
        case.assertEqual(ttyStart["params"]["argv"][-1], TTY_CMD)
        writes_ = [m["params"] for m in requests if m.get("method") == "process/write"]
        case.assertEqual(
            writes_, [{"processId": ttyStart["params"]["processId"], "chunk": "dHlwZWQK"}]
        )

        # Project context comes from the exec-server's filesystem too.
        reads = [
            m["params"]["path"]
            for m in s.messages(CLIENT_TO_SERVER)
            if m.get("method") == "fs/readFile"
        ]
        case.assertIn(str(s.workdir / "AGENTS.md"), reads)
        case.assertIn(AGENTS_TEXT.strip(), json.dumps(s.api.responseBodies[0]["input"]))

    def test_unreachable(self) -> Deferred[None]:
        """With the exec-server gone, the command fails and the model is told why."""
        return defer.ensureDeferred(self._checkUnreachable())

    async def _checkUnreachable(self) -> None:
        case: unittest.TestCase = self  # type: ignore[assignment]
        turns: list[Turn] = [
            [functionCall("call_exec", "exec_command", {"cmd": EXEC_CMD})],
            [assistantMessage(FINAL_TEXT)],
        ]
        s = await scenario.runScenario(
            case, self.reactor, self.codex, self.kind, turns, reachable=False
        )
        assert s.server is not None
        # It still exits 0: judge by effects.
        case.assertEqual(s.cli.exitCode, 0, s.cli.stderr)
        case.assertFalse((s.workdir / MARKER).exists())
        failure = (
            f"failed to connect to exec-server websocket `{s.server.url}`: "
            "IO error: Connection refused (os error 111)"
        )
        out = s.toolOutput("call_exec")
        case.assertTrue(out.startswith("exec_command failed for `"), out)
        case.assertIn(f"Failed to create unified exec process: {failure}", out)
        case.assertIn(f"error trying to find AGENTS.md docs: {failure}", s.cli.stderr)


class ReferenceExecServerTests(_CodexCliE2EMixin, unittest.TestCase):
    """The scenarios against ``codex exec-server --listen`` (shows the test itself works)."""

    kind = "reference"


class OurExecutorTests(_CodexCliE2EMixin, unittest.TestCase):
    """The scenarios against ``twistd -n codex-executor --listen``."""

    kind = "ours"

    def test_sameConversationAsReference(self) -> Deferred[None]:
        """Everything the CLI sent gets the same answers from ours as from the reference
        (up to timing: see :func:`semanticView`)."""
        return defer.ensureDeferred(self._compare())

    async def _compare(self) -> None:
        # CODEX_E2E_COMPARE=reference,reference checks that the comparison tolerates the
        # reference's own run-to-run variation.
        left, right = os.environ.get("CODEX_E2E_COMPARE", "reference,ours").split(",")
        views = []
        for kind in (left, right):
            s = await scenario.runScenario(
                self,
                self.reactor,
                self.codex,
                kind,
                scenario.mainTurns(),
                prepare=scenario.prepareWorkdir,
            )
            assert s.server is not None
            views.append(semanticView(s.events, Normaliser(s.base, s.server.pid)))
        if views[0] != views[1]:
            diff = "\n".join(
                difflib.unified_diff(views[0], views[1], left, right, lineterm="", n=1)
            )
            self.fail(f"our executor answered the CLI differently:\n{diff}")
