"""End to end: the real Codex CLI 0.171.0 sends its tool calls to an exec-server.

The same scenario as ``test_codex_cli_e2e`` (the 0.131 CLI), with today's CLI: ``codex exec``
against the fake Responses API (model ``gpt-5.5``, which offers ``exec_command``, ``write_stdin``
and ``apply_patch``), ``CODEX_EXEC_SERVER_URL`` pointing at a recording websocket proxy in front
of the exec-server under test: the 0.171 reference (``codex exec-server --listen``) or ours
(``twistd -n codex-executor --listen``). This CLI speaks the 0.171 dialect: every path is a
``file:`` URI, ``process/write`` carries a ``writeId``, and it asks ``environment/info``.

Skipped when the 0.171 binary is absent (``scripts/fetch_codex.sh`` fetches both generations).
Set ``CODEX_E2E_TRANSCRIPT_DIR`` to keep the normalised websocket transcripts of each run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.trial import unittest

from tests.support.codex_scenario import (
    AGENTS_TEXT,
    CodexScenarioMixin,
    Scenario,
    assertCommandRanInTheServer,
    assertCompleted,
    assertPatchWroteThroughFs,
    assertWriteStdinReachedTheTty,
    mainTurns,
    prepareWorkdir,
    runScenario,
)
from tests.support.reference import binary171
from twisted_exec.testing.fake_responses import Turn
from twisted_exec.testing.ws_recorder import CLIENT_TO_SERVER

MODEL = "gpt-5.5"  # offers exec_command, write_stdin and apply_patch in 0.171


def uriPath(uri: str) -> str:
    """The host path of a ``file:`` URI as the CLI sends it (the test's own small decoder)."""
    parts = urlsplit(uri)
    assert parts.scheme == "file" and parts.netloc == "", uri
    return unquote(parts.path)


async def runScenario171(
    case: unittest.TestCase,
    reactor: Any,
    codex: Path,
    kind: str,
    turns: Iterable[Turn],
    *,
    prepare: Callable[[Path], None] = lambda workdir: None,
) -> Scenario:
    """Start the exec-server (``kind``), the proxy and the fake API; run ``codex exec`` once."""
    return await runScenario(
        case,
        reactor,
        codex,
        kind,
        turns,
        prepare=prepare,
        model=MODEL,
        transcriptName=f"{kind}-v171",
    )


class _Codex171E2EMixin(CodexScenarioMixin):
    """The scenario, run against the exec-server named by ``kind``."""

    locate = staticmethod(binary171)

    def test_execCommandWriteStdinApplyPatchAgents(self) -> Deferred[None]:
        """exec_command runs in the exec-server (its parent PID is the server's); write_stdin
        reaches a running command; apply_patch edits files through fs/*; AGENTS.md is read
        through the exec-server."""
        return defer.ensureDeferred(self._check())

    async def _check(self) -> None:
        case: unittest.TestCase = self  # type: ignore[assignment]
        s = await runScenario171(
            case, self.reactor, self.codex, self.kind, mainTurns(), prepare=prepareWorkdir
        )
        assertCompleted(case, s)
        requests = s.messages(CLIENT_TO_SERVER)

        # (a) the command ran as a direct child of the exec-server, leading its own session.
        starts = assertCommandRanInTheServer(case, s)
        case.assertEqual(uriPath(starts[0]["params"]["cwd"]), str(s.workdir))

        # (b) apply_patch read and wrote the files through fs/* (paths as file: URIs).
        case.assertIn("Success. Updated the following files:", s.toolOutput("call_patch"))
        assertPatchWroteThroughFs(case, s, uriPath)

        # (c) write_stdin to the running tty command is process/write with a writeId.
        assertWriteStdinReachedTheTty(case, s, "got:typed")
        writes_ = [m["params"] for m in requests if m.get("method") == "process/write"]
        case.assertTrue(writes_, requests)
        case.assertEqual({w["chunk"] for w in writes_}, {"dHlwZWQK"})
        case.assertTrue(all(isinstance(w["writeId"], str) for w in writes_), writes_)

        # (d) project instructions came from the exec-server's filesystem.
        readPaths = [
            uriPath(m["params"]["path"])
            for m in requests
            if m.get("method") in ("fs/readFile", "fs/open")
        ]
        case.assertIn(str(s.workdir / "AGENTS.md"), readPaths)
        case.assertIn(AGENTS_TEXT.strip(), json.dumps(s.api.responseBodies[0]["input"]))

        # Every reply was a result or an error the CLI could live with: no -32601 for a method
        # the CLI needed, no params errors.
        replies = [m for m in s.messages() if "id" in m and "method" not in m]
        bad = [m for m in replies if m.get("error", {}).get("code") in (-32601, -32602, -32603)]
        case.assertEqual(bad, [], json.dumps(bad))
        # (e) fsWatchMissing, which we advertise, is used: the CLI's watch of the missing
        # project files is accepted (the CLI reads AGENTS.md with fs/readFile, not fs/open).
        called = {m["id"]: m["method"] for m in requests if "id" in m and "method" in m}
        watches = [m for m in replies if called.get(m["id"]) == "fs/watchMissing"]
        case.assertTrue(watches, sorted(set(called.values())))
        case.assertEqual([m.get("result") for m in watches][:1], [{"watching": True}])
        # Every path the CLI sent is a file: URI.
        for m in requests:
            for key in ("path", "cwd"):
                value = (m.get("params") or {}).get(key)
                if isinstance(value, str):
                    case.assertTrue(re.match(r"^file:///", value), m)


class Reference171ExecServerTests(_Codex171E2EMixin, unittest.TestCase):
    """Against ``codex exec-server --listen`` 0.171.0 (shows the test itself works)."""

    kind = "reference"


class OurExecutor171Tests(_Codex171E2EMixin, unittest.TestCase):
    """Against ``twistd -n codex-executor --listen``."""

    kind = "ours"
