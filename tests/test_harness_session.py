"""The harness client's sans-IO session: framing, replies, notifications, stream end, and
``RemoteProcess`` ordering (the reference may send ``exited`` before the last output)."""

from __future__ import annotations

import base64
import json
from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from twisted_exec.cli.main import buildParser, tokenFromEnvironment
from twisted_exec.cli.run_command import exitStatus
from twisted_exec.harness.connection import harnessUrl, upgradeError
from twisted_exec.harness.errors import (
    AuthenticationError,
    CallError,
    ExecutorNotConnectedError,
    StreamError,
    UnknownExecutorError,
)
from twisted_exec.harness.session import ExecSession
from twisted_exec.wire.frames import Data, Reset, decodeFrame


class SessionTests(TestCase):
    def setUp(self) -> None:
        self.sent: list[bytes] = []
        self.ended: list[ExecSession] = []
        self.session = ExecSession("stream-1", self.sent.append, self.ended.append)

    def outbound(self) -> list[Any]:
        events = [decodeFrame(raw) for raw in self.sent]
        self.sent.clear()
        return events

    def reply(self, seq: int, message: dict[str, Any]) -> None:
        self.session.frameReceived(Data("stream-1", seq, json.dumps(message).encode()))

    def test_framingLikeTheCloudHarness(self) -> None:
        self.session.open()
        d = self.session.initialize("me")
        self.reply(0, {"id": 1, "result": {"sessionId": "sess"}})
        self.assertEqual(self.successResultOf(d), "sess")
        [resume, initialize, initialized] = self.outbound()
        self.assertEqual(resume.kind, "resume")
        self.assertEqual((initialize.seq, initialized.seq), (0, 1))
        self.assertEqual(
            json.loads(initialize.payload),
            {"id": 1, "method": "initialize", "params": {"clientName": "me"}},
        )
        self.assertEqual(json.loads(initialized.payload), {"method": "initialized"})

    def test_typedCallsAndErrors(self) -> None:
        read = self.session.readFile("/f")
        write = self.session.writeFile("/g", b"\x00\xff")
        [_, writeFrame] = self.outbound()
        self.assertEqual(json.loads(writeFrame.payload)["params"]["dataBase64"], "AP8=")
        self.reply(0, {"id": 2, "result": {}})  # replies matched by id, not order
        self.reply(1, {"error": {"code": -32004, "message": "No such file"}, "id": 1})
        self.assertIsNone(self.successResultOf(write))
        error = self.failureResultOf(read, CallError).value
        self.assertEqual((error.code, error.method), (-32004, "fs/readFile"))
        self.assertEqual(str(error), "fs/readFile failed (-32004): No such file")

    def test_resetFailsPendingAndLaterCalls(self) -> None:
        pending = self.session.getMetadata("/")
        ended = self.session.whenEnded()
        self.session.frameReceived(Reset("stream-1", "executor disconnected"))
        self.assertEqual(
            str(self.failureResultOf(pending, StreamError).value),
            "relay stream closed: executor disconnected",
        )
        self.assertEqual(self.successResultOf(ended).reason, "executor disconnected")
        self.failureResultOf(self.session.getMetadata("/"), StreamError)
        self.assertEqual(self.ended, [self.session])
        self.sent.clear()
        self.session.close()  # already ended: nothing sent
        self.assertEqual(self.sent, [])

    def test_closeSendsAReset(self) -> None:
        self.session.close("bye")
        self.assertEqual(self.outbound(), [Reset("stream-1", "bye")])
        self.assertTrue(self.session.ended)

    def test_notificationsCallbacksAndIterator(self) -> None:
        seen: list[str] = []
        unsubscribe = self.session.onNotification(lambda m: seen.append(m["method"]))
        queue = self.session.notifications()
        self.reply(0, {"method": "a/b", "params": {}})
        unsubscribe()
        self.reply(1, {"method": "c/d", "params": {}})
        self.assertEqual(seen, ["a/b"])

        async def drain() -> list[str]:
            return [note["method"] async for note in queue]

        d = Deferred.fromCoroutine(drain())
        self.assertNoResult(d)
        self.session.connectionLost("gone")
        self.assertEqual(self.successResultOf(d), ["a/b", "c/d"])

    def test_remoteProcessDeliversInSeqOrder(self) -> None:
        d = self.session.spawn(["x"], "/", processId="p")
        self.reply(0, {"id": 1, "result": {"processId": "p"}})
        process = self.successResultOf(d)
        chunks: list[bytes] = []
        process.onOutput(lambda stream, data: chunks.append(data))

        def note(seq: int, method: str, **params: Any) -> None:
            self.reply(seq, {"method": method, "params": {"processId": "p", "seq": seq, **params}})

        def output(seq: int, text: bytes) -> None:
            note(seq, "process/output", stream="stdout", chunk=base64.b64encode(text).decode())

        output(1, b"a")
        note(3, "process/exited", exitCode=4)  # the reference's race: exited before output 2
        note(4, "process/closed")
        self.assertNoResult(process.finished)
        output(2, b"b")
        self.assertEqual(self.successResultOf(process.finished), 4)
        self.assertEqual((chunks, process.stdout()), ([b"a", b"b"], b"ab"))
        output(5, b"late")  # detached once finished
        self.assertEqual(chunks, [b"a", b"b"])


class ConnectionHelpersTests(TestCase):
    def test_harnessUrl(self) -> None:
        self.assertEqual(harnessUrl("http://h:1/", "a b"), "ws://h:1/harness/a%20b")
        self.assertEqual(harnessUrl("https://h/base", "x"), "wss://h/base/harness/x")
        with self.assertRaises(ValueError):
            harnessUrl("ftp://h", "x")

    def test_upgradeErrors(self) -> None:
        self.assertIsInstance(upgradeError(401, "bad", "u", "x"), AuthenticationError)
        self.assertIsInstance(upgradeError(404, "", "u", "x"), UnknownExecutorError)
        self.assertIsInstance(upgradeError(503, "", "u", "x"), ExecutorNotConnectedError)


class CliParsingTests(TestCase):
    def test_runArguments(self) -> None:
        args = buildParser().parse_args(["run", "-t", "--env", "A=1", "--", "ls", "-l"])
        self.assertEqual((args.tty, args.env, args.argv), (True, ["A=1"], ["--", "ls", "-l"]))

    def test_commonOptionsBeforeOrAfterTheCommand(self) -> None:
        parser = buildParser()
        before = parser.parse_args(["-e", "a", "-r", "http://x:1", "cat", "/f"])
        after = parser.parse_args(["cat", "-e", "b", "/f"])
        both = parser.parse_args(["-e", "a", "ls-executors", "-e", "c"])
        self.assertEqual((before.executor_id, before.rendezvous), ("a", "http://x:1"))
        self.assertEqual((after.executor_id, after.timeout), ("b", 10.0))
        self.assertEqual(both.executor_id, "c")

    def test_tokenPrecedenceAndExitStatus(self) -> None:
        env = {"CODEX_RENDEZVOUS_TOKEN": " a ", "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN": "b"}
        self.assertEqual(tokenFromEnvironment(env), "a")
        self.assertEqual(tokenFromEnvironment({"CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN": "b"}), "b")
        self.assertIsNone(tokenFromEnvironment({}))
        self.assertEqual([exitStatus(c) for c in (0, 3, 255, -1, 300)], [0, 3, 255, 255, 255])
