"""The conformance runner's data and pure parts: every session script parses, and the
normaliser/summariser does what the comparison relies on.  (The comparison itself needs the
reference binary and runs as ``python scripts/conformance.py``.)"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from twisted.trial import unittest

from scripts.conformancelib.compare import Outcome, compare, report
from scripts.conformancelib.known import KNOWN_DIFFERENCES
from scripts.conformancelib.normalise import (
    Normaliser,
    mergeOutputs,
    orderViolations,
    processSummary,
)
from scripts.conformancelib.runner import Transcript
from scripts.conformancelib.sessions import (
    ScriptError,
    loadScripts,
    lookup,
    matches,
    parseScript,
    substitute,
)
from scripts.conformancelib.transport import Event, LineBuffer

REPO = Path(__file__).resolve().parent.parent


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class SessionScriptsTests(unittest.TestCase):
    def test_allScriptsParse(self) -> None:
        scripts = loadScripts(REPO / "conformance")
        names = {s.name for s in scripts}
        self.assertGreaterEqual(len(scripts), 20)
        for required in ("handshake", "envelope", "resume", "fs-basic", "process-basic"):
            self.assertIn(required, names)
        for s in scripts:
            self.assertTrue(s.description, s.name)
            self.assertTrue(s.steps, s.name)

    def test_knownDifferencesNameRealSessions(self) -> None:
        names = {s.name for s in loadScripts(REPO / "conformance")}
        self.assertEqual(set(KNOWN_DIFFERENCES) - names, set())

    def test_everyRequestIdUniquePerConnection(self) -> None:
        """A reused id would make the runner's wait-for-reply ambiguous."""
        for s in loadScripts(REPO / "conformance"):
            seen: set[tuple[str, object]] = set()
            for step in s.steps:
                msg = step.get("send")
                if isinstance(msg, dict) and "id" in msg:
                    key = (step.get("conn", "a"), json.dumps(msg["id"]))
                    self.assertNotIn(key, seen, f"{s.name}: id {msg['id']} reused")
                    seen.add(key)

    def test_rejectsMalformedScripts(self) -> None:
        bad = [
            "not json",
            json.dumps({"steps": "x"}),
            json.dumps({"steps": [{"send": {}, "sleepMs": 1}]}),
            json.dumps({"steps": [{"bogus": 1}]}),
            json.dumps({"steps": [{"send": {}, "until": {"id": 1}}]}),
            json.dumps({"steps": [], "setup": [["rm", "x"]]}),
            json.dumps({"steps": [], "setup": [["write", "x"]]}),
            json.dumps({"steps": [{"sleepMs": 1, "capture": {"a": "b"}}]}),
        ]
        for text in bad:
            self.assertRaises(ScriptError, parseScript, "bad", text)


class SubstituteTests(unittest.TestCase):
    def test_variablesAndBase64Helpers(self) -> None:
        msg = {
            "path": "${DIR}/x",
            "chunk": {"__b64": "hi ${sid}"},
            "big": {"__b64repeat": ["ab", 3]},
            "list": ["${sid}", 1, None],
        }
        out = substitute(msg, {"DIR": "/tmp/d", "sid": "S"})
        self.assertEqual(
            out,
            {
                "path": "/tmp/d/x",
                "chunk": b64("hi S"),
                "big": b64("ababab"),
                "list": ["S", 1, None],
            },
        )

    def test_undefinedVariable(self) -> None:
        self.assertRaises(ScriptError, substitute, "${nope}", {})


class MatchTests(unittest.TestCase):
    def test_subsetMatch(self) -> None:
        msg = {"method": "process/closed", "params": {"processId": "p1", "seq": 3}}
        self.assertTrue(matches({"params": {"processId": "p1"}}, msg))
        self.assertFalse(matches({"params": {"processId": "p2"}}, msg))
        self.assertFalse(matches({"id": 1}, msg))
        # 1 and True are different JSON values
        self.assertFalse(matches({"id": 1}, {"id": True}))
        self.assertEqual(lookup({"result": {"sessionId": "x"}}, "result.sessionId"), "x")
        self.assertIsNone(lookup({"error": {}}, "result.sessionId"))


class NormaliserTests(unittest.TestCase):
    def test_uuidsNumberedByFirstAppearance(self) -> None:
        n = Normaliser()
        a = "0a1b2c3d-0000-4000-8000-000000000001"
        b = "0a1b2c3d-0000-4000-8000-000000000002"
        out = n.value([{"sessionId": a}, f"session {b} is attached", a.upper()])
        self.assertEqual(out, [{"sessionId": "<uuid1>"}, "session <uuid2> is attached", "<uuid1>"])

    def test_pathsPortsTimestampsAndBase64(self) -> None:
        n = Normaliser("/tmp/run/t0/s")
        msg = {
            "error": {"message": "websocket 127.0.0.1:51234: bad /tmp/run/t0/s/x"},
            "result": {"modifiedAtMs": 1764000000000, "createdAtMs": 0, "dataBase64": b64("a\n")},
        }
        self.assertEqual(
            n.value(msg),
            {
                "error": {"message": "websocket 127.0.0.1:<port>: bad ${DIR}/x"},
                "result": {"modifiedAtMs": "<ms>", "createdAtMs": 0, "dataBase64": "<b64:a\\n>"},
            },
        )

    def test_referenceHelperDirStrippedFromOutput(self) -> None:
        n = Normaliser()
        text = "PATH=/h/tmp/arg0/codex-arg0AbC123:/usr/bin\n"
        self.assertEqual(n.value({"chunk": b64(text)}), {"chunk": "<b64:PATH=/usr/bin\\n>"})

    def test_eventsOtherThanJson(self) -> None:
        n = Normaliser()
        self.assertEqual(n.event(Event("closed", "1006")), {"__event": "connection closed"})
        self.assertEqual(
            n.event(Event("text", "{oops")),
            {"__event": "non-JSON text frame", "data": "{oops"},
        )


def out(pid: str, seq: int, text: str, stream: str = "stdout") -> dict[str, object]:
    params = {"processId": pid, "seq": seq, "stream": stream, "chunk": b64(text)}
    return {"method": "process/output", "params": params}


def ev(method: str, pid: str, seq: int, **extra: object) -> dict[str, object]:
    return {"method": f"process/{method}", "params": {"processId": pid, "seq": seq, **extra}}


class ProcessSummaryTests(unittest.TestCase):
    def summary(self, msgs: list[dict[str, object]]) -> list[str]:
        n = Normaliser()
        return list(processSummary([n.value(m) for m in msgs]))

    def test_racyReferenceOrderEqualsStrictOrder(self) -> None:
        """The reference numbered exited before the last output; the summary is the same."""
        strict = [out("p", 1, "a"), out("p", 2, "b"), ev("exited", "p", 3, exitCode=0)]
        strict.append(ev("closed", "p", 4))
        racy = [out("p", 1, "a"), ev("exited", "p", 2, exitCode=0), ev("closed", "p", 4)]
        racy.insert(1, out("p", 3, "b"))
        self.assertEqual(self.summary(strict), self.summary(racy))
        self.assertEqual(
            self.summary(strict),
            [
                'output stdout "<b64:a>"',
                'output stdout "<b64:b>"',
                'exited {"exitCode": 0}',
                "closed {}",
                "seqs 1..4",
            ],
        )

    def test_contentExitCodeAndSeqGapsStillDiffer(self) -> None:
        base = [out("p", 1, "a"), ev("exited", "p", 2, exitCode=0), ev("closed", "p", 3)]
        self.assertNotEqual(self.summary(base), self.summary([out("p", 1, "b"), *base[1:]]))
        self.assertNotEqual(
            self.summary(base),
            self.summary([base[0], ev("exited", "p", 2, exitCode=-1), base[2]]),
        )
        gap = self.summary([base[0], base[1], ev("closed", "p", 5)])
        self.assertEqual(gap[-1], "seqs [1, 2, 5] (not contiguous)")

    def test_mergeOutputs(self) -> None:
        msgs = [
            out("y", 2, "got\r\n", "pty"),
            out("y", 1, "typed\r\n", "pty"),
            ev("exited", "y", 3, exitCode=0),
            ev("closed", "y", 4),
        ]
        merged = mergeOutputs(msgs)
        self.assertEqual(
            self.summary(merged),
            [
                "output pty " + json.dumps("<b64:typed\\r\\ngot\\r\\n>"),
                'exited {"exitCode": 0}',
                "closed {}",
                "seqs 1..3",
            ],
        )

    def test_orderViolations(self) -> None:
        msgs = [out("p", 1, "a"), ev("exited", "p", 3, exitCode=0), out("p", 2, "b")]
        msgs.append({"id": 1, "result": {}})
        problems = orderViolations("a", msgs)
        self.assertEqual(problems, ["[a] process/output seq 2 of p arrived after seq 3"])
        self.assertEqual(orderViolations("a", msgs[:2]), [])


class ReportTests(unittest.TestCase):
    def run_report(self, outcomes: list[Outcome]) -> tuple[int, list[str]]:
        lines: list[str] = []
        code = report(outcomes, lines.append, verbose=False)
        return code, lines

    def test_summaryAndExitCode(self) -> None:
        T = Transcript
        same = compare("handshake", T(lines=["x"]), T(lines=["x"]), "ref", "ours")
        diff = compare("fs-basic", T(lines=["x"]), T(lines=["y"]), "ref", "ours")
        known = compare("kill-id-null", T(lines=["x"]), T(lines=["y"]), "ref", "ours")
        code, lines = self.run_report([same, diff, known])
        self.assertEqual(code, 1)
        self.assertIn("3 sessions: 1 identical, 2 differ (1 known/deliberate, 1 unexpected)", lines)
        self.assertIn("    -x", lines)
        code, lines = self.run_report([same, known])
        self.assertEqual(code, 0)

    def test_orderProblemsInOursFail(self) -> None:
        T = Transcript
        o = compare("x", T(lines=["a"]), T(lines=["a"], orderProblems=["late"]), "r", "o")
        code, lines = self.run_report([o])
        self.assertEqual(code, 1)
        self.assertIn("x: DIFFERENT (notification order)", lines)


class LineBufferTests(unittest.SynchronousTestCase):
    """A child's stdout, read line by line: the URL line of a local server, stdio messages."""

    def test_linesAcrossChunks(self) -> None:
        lines = LineBuffer()
        self.assertEqual(lines.feed(b"ws://127.0.0.1:1"), [])
        self.assertEqual(lines.feed(b"\n{}\n{"), ["ws://127.0.0.1:1", "{}"])
        self.assertEqual(lines.feed(b'"id":1}\n\n'), ['{"id":1}', ""])

    def test_undecodableBytesAreReplaced(self) -> None:
        self.assertEqual(LineBuffer().feed(b"\xff\n"), ["\ufffd"])
