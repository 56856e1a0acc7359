"""Our executor against the reference's own transcripts, over a real loopback websocket.

``conformance/golden/NAME.txt`` is what Codex CLI 0.131.0 answered to the session script
``conformance/NAME.json`` (recorded with ``python scripts/conformance.py --record
conformance/golden --only NAME``; normalised: uuids, ports, the run directory). Each test plays
the same script against an in-process ``LocalWebSocketService`` with real processes and files and
asserts the exact same transcript, line by line, so the exact JSON of every reply and
notification of those sessions is checked on every run, without the binary.

Only deterministic sessions are recorded (not the ones the reference answers in a racy order,
nor those that depend on the executor's environment or take many seconds).
"""

from __future__ import annotations

import difflib
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.trial.unittest import TestCase

from scripts.conformancelib.compare import readGolden
from scripts.conformancelib.runner import SessionRunner
from scripts.conformancelib.sessions import loadScripts
from scripts.conformancelib.transport import connectWs
from twisted_exec.executor.service import ExecutorService, LocalWebSocketService

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "conformance" / "golden"


class InProcessTarget:
    """The conformance runner's ``Target``: our service on this reactor, on a free port."""

    name = "ours (in process)"

    def __init__(self) -> None:
        self.top = ExecutorService(reactor, ttl=10.0)
        self.local = LocalWebSocketService(
            reactor, self.top.executor.processorFactory, "ws://127.0.0.1:0"
        )
        self.local.setServiceParent(self.top)

    def start(self) -> Deferred[None]:
        self.top.startService()
        return defer.succeed(None)

    def connect(self) -> Deferred[Any]:
        assert self.local.url is not None
        return ensureDeferred(connectWs(reactor, self.local.url))

    def stop(self) -> Deferred[None]:
        return defer.maybeDeferred(self.top.stopService)


class GoldenTranscriptMixin:
    """Plays ``SESSIONS/NAME.json`` against :class:`InProcessTarget` and asserts the recorded
    ``GOLDEN/NAME.txt`` line by line; one subclass per dialect's set of recordings."""

    SESSIONS: Path
    GOLDEN: Path
    #: What the diff calls the recording's side, and the failure message the reference.
    referenceLabel: str
    referenceName: str
    runPrefix: str
    #: Fewer golden files than this means recordings went missing.
    atLeast: int

    def play(self: Any, name: str) -> Deferred[None]:
        """Plays session ``name`` and checks its transcript (within 45 s)."""

        async def go() -> None:
            expected = readGolden(self.GOLDEN, name)
            (script,) = loadScripts(self.SESSIONS, [name])
            target = InProcessTarget()
            await target.start()
            self.addCleanup(target.stop)
            parent = Path(self.mktemp()).resolve()
            parent.mkdir(parents=True)
            runDir = Path(tempfile.mkdtemp(prefix=f"{self.runPrefix}-{name}-", dir=parent))
            transcript = await SessionRunner(reactor, target, runDir).run(script)
            diff = "\n".join(
                difflib.unified_diff(
                    expected, transcript.lines, self.referenceLabel, "ours", lineterm="", n=2
                )
            )
            self.assertEqual(diff, "", f"{name} differs from {self.referenceName}:\n{diff}")
            self.assertEqual(transcript.orderProblems, [])

        return ensureDeferred(go()).addTimeout(45, reactor)

    def test_everyGoldenFileHasItsScript(self: Any) -> None:
        golden = {p.stem for p in self.GOLDEN.glob("*.txt")}
        scripts = {p.stem for p in self.SESSIONS.glob("*.json")}
        self.assertGreaterEqual(len(golden), self.atLeast)
        self.assertEqual(golden - scripts, set())

    # The sessions both dialects recorded; each subclass adds its own.
    def test_fsBasic(self) -> Deferred[None]:
        return self.play("fs-basic")

    def test_fsErrors(self) -> Deferred[None]:
        return self.play("fs-errors")

    def test_handshake(self) -> Deferred[None]:
        return self.play("handshake")

    def test_paramsOrder(self) -> Deferred[None]:
        return self.play("params-order")

    def test_processBasic(self) -> Deferred[None]:
        return self.play("process-basic")

    def test_processSpawn(self) -> Deferred[None]:
        return self.play("process-spawn")

    def test_processTerminate(self) -> Deferred[None]:
        return self.play("process-terminate")

    def test_processTty(self) -> Deferred[None]:
        return self.play("process-tty")

    def test_processWrite(self) -> Deferred[None]:
        return self.play("process-write")

    def test_processWriteAfterExit(self) -> Deferred[None]:
        return self.play("process-write-after-exit")

    def test_resume(self) -> Deferred[None]:
        return self.play("resume")


class GoldenTranscriptTests(GoldenTranscriptMixin, TestCase):
    timeout = 60
    SESSIONS = REPO / "conformance"
    GOLDEN = GOLDEN
    referenceLabel = "reference"
    referenceName = "the reference"
    runPrefix = "golden"
    atLeast = 10
