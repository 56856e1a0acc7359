"""The Codex CLI end-to-end tests' reading of a conversation, without a Codex binary: transcript
normalisation and the order-free view two exec-servers' answers are compared by."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from twisted.trial import unittest

from tests.support.codex_transcripts import Normaliser, semanticView
from twisted_exec.testing.fake_responses import JsonObject
from twisted_exec.testing.ws_recorder import RecordedEvent


class NormaliserTests(unittest.TestCase):
    """Transcript normalisation and the order-free comparison view (pure functions)."""

    def _events(self, *messages: tuple[str, JsonObject]) -> list[RecordedEvent]:
        return [
            RecordedEvent(1, d, "text", json.dumps(m).encode(), float(i))
            for i, (d, m) in enumerate(messages)
        ]

    def test_normalise(self) -> None:
        n = Normaliser(Path("/x/base"), serverPid=100)
        chunk = base64.b64encode(b"pid=7 ppid=100 pgid=7 sid=3\n").decode()
        self.assertEqual(
            n.message(
                {
                    "params": {
                        "processId": "9931",
                        "cwd": "/x/base/work",
                        "chunk": chunk,
                        "env": {"CODEX_THREAD_ID": "abc"},
                        "modifiedAtMs": 17,
                        "createdAtMs": 0,
                    },
                    "result": {"sessionId": "u-u-i-d"},
                }
            ),
            {
                "params": {
                    "processId": "<process 1>",
                    "cwd": "<BASE>/work",
                    "chunk": "b64:pid=<self> ppid=<server> pgid=<self> sid=<other>\n",
                    "env": {"CODEX_THREAD_ID": "<CODEX_THREAD_ID>"},
                    "modifiedAtMs": "<ms>",
                    "createdAtMs": 0,
                },
                "result": {"sessionId": "<sessionId>"},
            },
        )
        self.assertEqual(n.value("processId", "42"), "<process 2>")
        self.assertEqual(n.value("processId", "9931"), "<process 1>")

    def _conversation(self, readReplies: int, firstPath: str, exitCode: int) -> list[RecordedEvent]:
        out = base64.b64encode(b"hi\n").decode()
        messages: list[tuple[str, JsonObject]] = [
            ("c2s", {"method": "initialized", "params": {}}),
            ("c2s", {"id": 1, "method": "fs/getMetadata", "params": {"path": firstPath}}),
            ("c2s", {"id": 2, "method": "fs/getMetadata", "params": {"path": "/b"}}),
            ("s2c", {"id": 2, "error": {"code": -32004, "message": "nf"}}),
            ("s2c", {"id": 1, "error": {"code": -32004, "message": "nf"}}),
            ("c2s", {"id": 3, "method": "process/start", "params": {"processId": "p"}}),
            ("s2c", {"id": 3, "result": {"processId": "p"}}),
        ]
        for i in range(readReplies):
            messages.append(("c2s", {"id": 10 + i, "method": "process/read", "params": {}}))
            messages.append(("s2c", {"id": 10 + i, "result": {"chunks": [], "nextSeq": i}}))
        messages += [
            (
                "s2c",
                {
                    "method": "process/exited",
                    "params": {"processId": "p", "seq": 2, "exitCode": exitCode},
                },
            ),
            (
                "s2c",
                {
                    "method": "process/output",
                    "params": {"processId": "p", "seq": 1, "stream": "stdout", "chunk": out},
                },
            ),
        ]
        return self._events(*messages)

    def test_viewIgnoresOrderIdsAndReads(self) -> None:
        view = semanticView(self._conversation(1, "/a", 0), Normaliser(Path("/x"), None))
        self.assertEqual(
            view, semanticView(self._conversation(3, "/a", 0), Normaliser(Path("/x"), None))
        )
        self.assertIn(
            json.dumps(
                {"process": {"exitCode": 0, "processId": "<process 1>", "stdout": "hi\n"}},
                sort_keys=True,
            ),
            view,
        )
        self.assertIn(json.dumps({"client": {"method": "initialized", "params": {}}}), view)

    def test_viewSeesDifferentAnswers(self) -> None:
        view = semanticView(self._conversation(1, "/a", 0), Normaliser(Path("/x"), None))
        self.assertNotEqual(
            view, semanticView(self._conversation(1, "/c", 0), Normaliser(Path("/x"), None))
        )
        self.assertNotEqual(
            view, semanticView(self._conversation(1, "/a", 1), Normaliser(Path("/x"), None))
        )
