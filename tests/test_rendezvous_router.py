"""The rendezvous's sans-IO parts: the router's rules, tokens and signed URLs, the registry
resource (in memory, through treq's StubTreq)."""

from __future__ import annotations

import json
from typing import Any

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from twisted_exec.rendezvous.auth import TokenConfigError, TokenSet, UrlSigner
from twisted_exec.rendezvous.credits import ACK_DELAY
from twisted_exec.rendezvous.interfaces import IRelayPeer
from twisted_exec.rendezvous.router import Router
from twisted_exec.rendezvous.server import RendezvousServer
from twisted_exec.wire.frames import (
    Data,
    Ignored,
    Reset,
    decodeFrame,
    encodeData,
    encodeReset,
    encodeResume,
)
from twisted_exec.wire.reasons import (
    EXECUTOR_DISCONNECTED,
    EXECUTOR_NOT_CONNECTED,
    HARNESS_DISCONNECTED,
    STREAM_IN_USE,
)


@implementer(IRelayPeer)
class Peer:
    def __init__(self, name: str) -> None:
        self.name = name
        self.frames: list[bytes] = []
        self.acks: list[tuple[str, int]] = []  # the router's delivery acks (credits.py)
        self.paused = False

    def __repr__(self) -> str:
        return f"<Peer {self.name}>"

    def sendFrame(self, raw: bytes) -> None:
        event = decodeFrame(raw)
        if isinstance(event, Ignored) and event.kind == "ack_frame":
            self.acks.append((event.streamId, event.ack))
            return
        self.frames.append(raw)

    def pauseReading(self) -> None:
        assert not self.paused
        self.paused = True

    def resumeReading(self) -> None:
        assert self.paused
        self.paused = False

    def events(self) -> list[Any]:
        out = [decodeFrame(f) for f in self.frames]
        self.frames.clear()
        return out


class RouterTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.router = Router(self.clock)
        self.executor = Peer("executor")
        self.h1, self.h2 = Peer("h1"), Peer("h2")
        self.router.executorConnected("box", self.executor)

    def test_peerInterface(self) -> None:
        verifyObject(IRelayPeer, self.executor)

    def test_routesBothWaysByStream(self) -> None:
        opening = encodeResume("s1")
        self.router.fromHarness(self.h1, "box", opening)
        self.router.fromHarness(self.h2, "box", encodeData("s2", 0, b"{}"))
        self.assertEqual(self.executor.frames, [opening, encodeData("s2", 0, b"{}")])
        reply = encodeData("s1", 0, b'{"id":1}')
        self.router.fromExecutor("box", self.executor, reply)
        self.router.fromExecutor("box", self.executor, encodeData("s2", 0, b"2"))
        self.assertEqual(self.h1.frames, [reply])  # the original bytes, untouched
        self.assertEqual(self.h2.events(), [Data("s2", 0, b"2")])
        self.assertEqual(self.router.streamCount("box"), 2)

    def test_streamIdClaimedByFirstHarness(self) -> None:
        self.router.fromHarness(self.h1, "box", encodeResume("s1"))
        self.router.fromHarness(self.h2, "box", encodeData("s1", 0, b"{}"))
        self.assertEqual(self.h2.events(), [Reset("s1", STREAM_IN_USE)])
        self.assertEqual(len(self.executor.frames), 1)
        self.router.fromHarness(self.h2, "box", encodeReset("s1", "x"))  # not answered
        self.assertEqual((self.h2.frames, len(self.executor.frames)), ([], 1))

    def test_resetEndsTheRouteInEitherDirection(self) -> None:
        self.router.fromHarness(self.h1, "box", encodeResume("s1"))
        self.router.fromHarness(self.h1, "box", encodeReset("s1", "done"))
        self.assertEqual(self.executor.events()[-1], Reset("s1", "done"))
        self.assertEqual(self.router.streamCount("box"), 0)
        self.router.fromHarness(self.h2, "box", encodeResume("s1"))  # free again
        self.router.fromExecutor("box", self.executor, encodeReset("s1", "bye"))
        self.assertEqual(self.h2.events(), [Reset("s1", "bye")])
        self.assertEqual(self.router.streamCount("box"), 0)

    def test_executorLostResetsItsStreamsAtTheHarnesses(self) -> None:
        self.router.fromHarness(self.h1, "box", encodeResume("s1"))
        self.router.fromHarness(self.h2, "box", encodeResume("s2"))
        self.router.executorLost("box", self.executor)
        self.assertEqual(self.h1.events(), [Reset("s1", EXECUTOR_DISCONNECTED)])
        self.assertEqual(self.h2.events(), [Reset("s2", EXECUTOR_DISCONNECTED)])
        self.assertFalse(self.router.record("box").connected)  # type: ignore[union-attr]
        # while it is away, frames are answered with a reset, not queued
        self.router.fromHarness(self.h1, "box", encodeResume("s3"))
        self.assertEqual(self.h1.events(), [Reset("s3", EXECUTOR_NOT_CONNECTED)])
        # back: a new stream works
        again = Peer("executor-2")
        self.router.executorConnected("box", again)
        self.router.fromHarness(self.h1, "box", encodeResume("s4"))
        self.assertEqual(len(again.frames), 1)

    def test_replacedConnectionResetsStreamsAndFramesFromItAreNotRouted(self) -> None:
        unrouted: list[str] = []
        self.router.onUnrouted = lambda link, streamId, raw: unrouted.append(streamId)
        self.router.fromHarness(self.h1, "box", encodeResume("s1"))
        newer = Peer("newer")
        self.assertIs(self.router.executorConnected("box", newer), self.executor)
        self.assertEqual(self.h1.events(), [Reset("s1", EXECUTOR_DISCONNECTED)])
        self.router.fromExecutor("box", self.executor, encodeData("s1", 1, b"late"))
        self.assertEqual((self.h1.frames, unrouted), ([], ["s1"]))
        self.router.executorLost("box", self.executor)  # the old one's close, later
        self.assertTrue(self.router.record("box").connected)  # type: ignore[union-attr]

    def test_harnessLostResetsItsStreamsAtTheExecutor(self) -> None:
        self.router.fromHarness(self.h1, "box", encodeResume("s1"))
        self.router.fromHarness(self.h1, "box", encodeResume("s2"))
        self.router.fromHarness(self.h2, "box", encodeResume("s3"))
        self.executor.frames.clear()
        self.router.harnessLost(self.h1)
        self.assertEqual(
            self.executor.events(),
            [Reset("s1", HARNESS_DISCONNECTED), Reset("s2", HARNESS_DISCONNECTED)],
        )
        self.assertEqual(self.router.streamCount("box"), 1)

    def test_unroutableFramesDropped(self) -> None:
        self.router.fromHarness(self.h1, "box", b"\xff\xff garbage")
        self.router.fromHarness(self.h1, "box", encodeResume(""))
        self.assertEqual((self.executor.frames, self.h1.frames), ([], []))

    def test_slowHarnessDoesNotPauseItsExecutor(self) -> None:
        """Issue 15: one slow harness stops its own acks; the executor is read on."""
        self.router.fromHarness(self.h1, "box", encodeResume("s1"))
        self.router.fromHarness(self.h2, "box", encodeResume("s2"))
        self.assertEqual(self.executor.acks, [("s1", 0), ("s2", 0)])  # routes are acknowledged
        self.router.peerPaused(self.h1)
        self.assertFalse(self.executor.paused)
        for stream in ("s1", "s2"):
            self.router.fromExecutor("box", self.executor, encodeData(stream, 0, b"{}"))
        self.clock.pump([0, ACK_DELAY])  # small frames: acked within ACK_DELAY (credits.py)
        self.assertEqual(self.executor.acks[2:], [("s2", 1)])  # only the harness that reads
        self.router.peerResumed(self.h1)
        self.clock.advance(0)
        self.assertEqual(self.executor.acks[3:], [("s1", 1)])  # drained: delivered

    def test_slowHarnessPausesAnExecutorThatIgnoresAcks(self) -> None:
        self.router.acks.fallbackBytes = 100
        self.router.fromHarness(self.h1, "box", encodeResume("s1"))
        self.router.peerPaused(self.h1)
        self.router.fromExecutor("box", self.executor, encodeData("s1", 0, b"x" * 200))
        self.assertTrue(self.executor.paused)  # round 1's rule, past the fallback budget
        self.router.peerResumed(self.h1)
        self.assertFalse(self.executor.paused)

    def test_harnessAcksNotForwarded(self) -> None:
        from twisted_exec.rendezvous.credits import encodeAck

        self.router.fromHarness(self.h1, "box", encodeResume("s1"))
        self.executor.frames.clear()
        self.router.fromHarness(self.h1, "box", encodeAck("s1", 7))
        self.assertEqual(self.executor.frames, [])
        self.assertEqual(self.executor.acks, [("s1", 0)])

    def test_slowExecutorPausesHarnessesIncludingNewOnes(self) -> None:
        self.router.fromHarness(self.h1, "box", encodeResume("s1"))
        self.router.peerPaused(self.executor)
        self.assertTrue(self.h1.paused)
        self.router.fromHarness(self.h2, "box", encodeResume("s2"))
        self.assertTrue(self.h2.paused)
        self.router.executorLost("box", self.executor)  # gone: it holds nobody back
        self.assertFalse(self.h1.paused or self.h2.paused)

    def test_waitForExecutor(self) -> None:
        d = self.router.waitForExecutor("box", 2)
        self.assertNoResult(d)
        self.router.executorConnected("box", Peer("again"))
        self.successResultOf(d)
        self.assertEqual(self.router.record("box").connections, 2)  # type: ignore[union-attr]


class AuthTests(TestCase):
    def test_tokens(self) -> None:
        tokens = TokenSet(["a", " b ", ""])
        self.assertEqual(len(tokens), 2)
        self.assertTrue(tokens.checkAuthorization("Bearer b"))
        self.assertTrue(tokens.checkAuthorization("bearer  a"))
        self.assertFalse(tokens.checkAuthorization("Basic a"))
        self.assertFalse(tokens.checkAuthorization(None))
        self.assertFalse(tokens.check(""))
        self.assertNotIn("a", repr(tokens).replace("TokenSet", "").replace("token", ""))

    def test_tokensFromEnvironmentAndFile(self) -> None:
        self.assertTrue(TokenSet.load(environ={"CODEX_RENDEZVOUS_TOKENS": "x, y"}).check("y"))
        fallback = TokenSet.load(environ={"CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN": "z"})
        self.assertTrue(fallback.check("z"))
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("# comment\nfromfile\n")
        self.assertTrue(TokenSet.load(path, environ={}).check("fromfile"))
        with self.assertRaises(TokenConfigError) as caught:
            TokenSet.load(environ={})
        self.assertIn("no bearer tokens configured", str(caught.exception))
        with self.assertRaises(TokenConfigError):
            TokenSet.load(path + ".missing", environ={})

    def test_signaturesAreSingleUseExpiringAndBoundToTheId(self) -> None:
        clock = Clock()
        signer = UrlSigner(clock, secret=b"k" * 32, ttl=60)
        sig = signer.sign("box")
        self.assertFalse(signer.verify("other", sig))
        self.assertTrue(signer.verify("box", sig))
        self.assertFalse(signer.verify("box", sig))  # spent
        late = signer.sign("box")
        clock.advance(62)
        self.assertFalse(signer.verify("box", late))  # expired
        self.assertFalse(signer.verify("box", None))
        self.assertFalse(signer.verify("box", "1.2"))
        self.assertNotEqual(signer.sign("box"), signer.sign("box"))


class RegistryResourceTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.server = RendezvousServer(self.clock, TokenSet(["tok"]))
        self.http: Any = StubTreq(self.server.resource())

    def call(self, method: str, path: str, token: str | None = "tok") -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.successResultOf(
            self.http.request(method, f"http://rdv.example:8765{path}", headers=headers)
        )
        body = self.successResultOf(response.content())
        return response.code, json.loads(body)

    def test_registerAnswersASignedUrlUnderTheRequestsHost(self) -> None:
        code, body = self.call("POST", "/cloud/executor/my%20box/register")
        self.assertEqual(code, 200)
        self.assertEqual(body["executor_id"], "my box")
        self.assertRegex(body["url"], r"^ws://rdv\.example:8765/executor/my%20box\?sig=\d+\.")
        sig = body["url"].partition("sig=")[2]
        self.assertTrue(self.server.signer.verify("my box", sig))
        self.assertEqual(self.server.router.record("my box").registeredAt, 0)  # type: ignore[union-attr]

    def test_publicUrl(self) -> None:
        self.server.publicUrl = "https://relay.example/"
        _, body = self.call("POST", "/cloud/executor/b/register")
        self.assertTrue(body["url"].startswith("wss://relay.example/executor/b?sig="))

    def test_errors(self) -> None:
        self.assertEqual(
            self.call("POST", "/cloud/executor/b/register", token="nope"),
            (401, {"error": {"code": "unauthorized", "message": "invalid bearer token"}}),
        )
        self.assertEqual(self.call("POST", "/cloud/executor/b/register", token=None)[0], 401)
        self.assertEqual(self.call("GET", "/cloud/executor/b/register")[0], 405)
        code, body = self.call("POST", "/cloud/executor/%20b/register")
        self.assertEqual((code, body["error"]["code"]), (400, "invalid_executor_id"))
        self.assertEqual(self.call("GET", "/cloud/nothing")[0], 404)
        self.assertEqual(self.call("GET", "/cloud/executors", token="nope")[0], 401)

    def test_listing(self) -> None:
        self.call("POST", "/cloud/executor/b/register")
        self.call("POST", "/cloud/executor/a/register")  # the listing shows the token's own ids
        self.server.router.executorConnected("a", Peer("a"))
        code, body = self.call("GET", "/cloud/executors")
        self.assertEqual(code, 200)
        self.assertEqual(
            [(e["executor_id"], e["connected"], e["connections"]) for e in body["executors"]],
            [("a", True, 1), ("b", False, 0)],
        )
