"""Our executor against Codex 0.171.0's own transcripts of the 0.171-dialect sessions.

``conformance/golden/v171/NAME.txt`` is what the 0.171.0 binary answered to
``conformance/v171/NAME.json`` (recorded with ``python scripts/conformance.py --v171 --record
conformance/golden/v171 --only NAME``). Each test plays the script against an in-process executor
over a real loopback websocket, with real processes and files, and asserts the same transcript
line by line, as ``test_conformance_golden`` does for 0.131. The same executor serves both sets:
these sessions speak 0.171 from their first path on.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from tests.test_conformance_golden import GoldenTranscriptMixin

REPO = Path(__file__).resolve().parent.parent
SESSIONS = REPO / "conformance" / "v171"
GOLDEN = REPO / "conformance" / "golden" / "v171"


class Golden171TranscriptTests(GoldenTranscriptMixin, TestCase):
    timeout = 60
    SESSIONS = SESSIONS
    GOLDEN = GOLDEN
    referenceLabel = "codex 0.171.0"
    referenceName = "the 0.171 reference"
    runPrefix = "golden171"
    atLeast = 16

    def test_environment(self) -> Deferred[None]:
        return self.play("environment")

    def test_fsUri(self) -> Deferred[None]:
        return self.play("fs-uri")

    def test_paramsSequence(self) -> Deferred[None]:
        return self.play("params-sequence")

    def test_process171(self) -> Deferred[None]:
        return self.play("process-171")

    def test_processTtySignal(self) -> Deferred[None]:
        return self.play("process-tty-signal")
