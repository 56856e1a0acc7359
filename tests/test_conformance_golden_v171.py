"""Our executor against Codex 0.171.0's own transcripts of the 0.171-dialect sessions.

``conformance/golden/v171/NAME.txt`` is what the 0.171.0 binary answered to
``conformance/v171/NAME.json`` (recorded with ``python scripts/conformance.py --v171 --record
conformance/golden/v171 --only NAME``). Each test plays the script against an in-process executor
over a real loopback websocket, with real processes and files, and asserts the same transcript
line by line, as ``test_conformance_golden`` does for 0.131. The same executor serves both sets:
these sessions speak 0.171 from their first path on.
"""

from __future__ import annotations

import difflib
import tempfile
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.trial.unittest import TestCase

from scripts.conformancelib.compare import readGolden
from scripts.conformancelib.runner import SessionRunner
from scripts.conformancelib.sessions import loadScripts
from tests.test_conformance_golden import InProcessTarget

REPO = Path(__file__).resolve().parent.parent
SESSIONS = REPO / "conformance" / "v171"
GOLDEN = REPO / "conformance" / "golden" / "v171"


class Golden171TranscriptTests(TestCase):
    timeout = 60

    def play(self, name: str) -> Deferred[None]:
        async def go() -> None:
            expected = readGolden(GOLDEN, name)
            (script,) = loadScripts(SESSIONS, [name])
            target = InProcessTarget()
            await target.start()
            self.addCleanup(target.stop)
            parent = Path(self.mktemp()).resolve()
            parent.mkdir(parents=True)
            runDir = Path(tempfile.mkdtemp(prefix=f"golden171-{name}-", dir=parent))
            transcript = await SessionRunner(reactor, target, runDir).run(script)
            diff = "\n".join(
                difflib.unified_diff(
                    expected, transcript.lines, "codex 0.171.0", "ours", lineterm="", n=2
                )
            )
            self.assertEqual(diff, "", f"{name} differs from the 0.171 reference:\n{diff}")
            self.assertEqual(transcript.orderProblems, [])

        return ensureDeferred(go()).addTimeout(45, reactor)

    def test_everyGoldenFileHasItsScript(self) -> None:
        golden = {p.stem for p in GOLDEN.glob("*.txt")}
        scripts = {p.stem for p in SESSIONS.glob("*.json")}
        self.assertGreaterEqual(len(golden), 16)
        self.assertEqual(golden - scripts, set())

    def test_environment(self) -> Deferred[None]:
        return self.play("environment")

    def test_fsBasic(self) -> Deferred[None]:
        return self.play("fs-basic")

    def test_fsErrors(self) -> Deferred[None]:
        return self.play("fs-errors")

    def test_fsUri(self) -> Deferred[None]:
        return self.play("fs-uri")

    def test_handshake(self) -> Deferred[None]:
        return self.play("handshake")

    def test_paramsOrder(self) -> Deferred[None]:
        return self.play("params-order")

    def test_paramsSequence(self) -> Deferred[None]:
        return self.play("params-sequence")

    def test_process171(self) -> Deferred[None]:
        return self.play("process-171")

    def test_processBasic(self) -> Deferred[None]:
        return self.play("process-basic")

    def test_processSpawn(self) -> Deferred[None]:
        return self.play("process-spawn")

    def test_processTerminate(self) -> Deferred[None]:
        return self.play("process-terminate")

    def test_processTty(self) -> Deferred[None]:
        return self.play("process-tty")

    def test_processTtySignal(self) -> Deferred[None]:
        return self.play("process-tty-signal")

    def test_processWrite(self) -> Deferred[None]:
        return self.play("process-write")

    def test_processWriteAfterExit(self) -> Deferred[None]:
        return self.play("process-write-after-exit")

    def test_resume(self) -> Deferred[None]:
        return self.play("resume")
