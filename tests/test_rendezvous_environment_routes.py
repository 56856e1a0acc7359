"""The rendezvous's environment routes over loopback: HTTP registry calls, websocket admission,
and payload-blind routing of environment relay frames (the 0.131 routes beside them)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import treq
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from tests.support.environments import newKey
from twisted_exec.rendezvous.environments import SECURITY_PROFILE, NoisePublicKey
from twisted_exec.testing.environments import (
    FROM_EXECUTOR,
    FROM_HARNESS,
    EnvironmentRendezvous,
    FrameSocket,
    UpgradeRefusedError,
    connectFrameSocket,
    reaching,
)
from twisted_exec.wire import relay_pb2
from twisted_exec.wire.frames import encodeData, encodeReset, encodeResume

OWNER = "tok-envreg-owner"
HARNESS = "tok-envreg-harness"  # reach=*: may connect to any environment
STRANGER = "tok-envreg-stranger"  # another tenant, no reach
TIMEOUT = 10.0


def handshake(streamId: str, payload: bytes) -> bytes:
    frame = relay_pb2.RelayMessageFrame(version=1, stream_id=streamId)
    frame.handshake.payload = payload
    return frame.SerializeToString()  # type: ignore[no-any-return]


def decode(raw: bytes) -> Any:
    frame = relay_pb2.RelayMessageFrame()
    frame.ParseFromString(raw)
    return frame


class EnvironmentRoutesTests(TestCase):
    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.rendezvous = EnvironmentRendezvous(
            reactor, [OWNER, reaching(HARNESS), STRANGER], reach=None
        )
        self.base = self.rendezvous.listen()
        self.addCleanup(self.rendezvous.stop)
        self.key = newKey()
        self.pool = HTTPConnectionPool(reactor, persistent=False)

    def bounded(self, d: Deferred[Any]) -> Deferred[Any]:
        return d.addTimeout(TIMEOUT, self.reactor)

    def bearer(self, token: str) -> dict[bytes | str, bytes | str]:
        return {"authorization": f"Bearer {token}"}

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait (bounded) for the rendezvous's side of a close to be processed."""
        for _ in range(int(TIMEOUT / 0.02)):
            if predicate():
                return
            await deferLater(self.reactor, 0.02)
        self.fail("condition not reached")

    async def post(
        self, path: str, body: Any, token: str | None = OWNER, raw: bytes | None = None
    ) -> tuple[int, Any, Any]:
        headers: dict[bytes | str, list[bytes | str]] = {"content-type": ["application/json"]}
        if token is not None:
            headers["authorization"] = [f"Bearer {token}"]
        data = raw if raw is not None else json.dumps(body).encode()
        response = await self.bounded(
            treq.post(self.base + path, data=data, headers=headers, pool=self.pool)
        )
        content = await self.bounded(treq.content(response))
        return response.code, json.loads(content), response.headers

    async def register(self, env: str = "env-1", key: NoisePublicKey | None = None) -> Any:
        body = {
            "security_profile": SECURITY_PROFILE,
            "executor_public_key": (key or self.key).toJson(),
        }
        status, reply, _ = await self.post(f"/cloud/environment/{env}/register", body)
        self.assertEqual(status, 200, reply)
        return reply

    async def connect(
        self, env: str = "env-1", harnessKey: NoisePublicKey | None = None, token: str = HARNESS
    ) -> Any:
        body = {"harness_public_key": (harnessKey or newKey()).toJson()}
        return await self.post(f"/cloud/environment/{env}/connect", body, token=token)

    async def socket(self, url: str) -> FrameSocket:
        socket: FrameSocket = await self.bounded(
            Deferred.fromCoroutine(connectFrameSocket(self.reactor, url))
        )
        self.addCleanup(socket.abort)
        return socket

    async def refused(self, url: str) -> int | None:
        with self.assertRaises(UpgradeRefusedError) as caught:
            await self.socket(url)
        return caught.exception.status

    async def online(self, env: str = "env-1") -> tuple[Any, FrameSocket]:
        registration = await self.register(env)
        executor = await self.socket(registration["url"])
        count = self.rendezvous.server.environments.router.record(env)
        await self.bounded(self.rendezvous.waitForExecutor(env, count.connections if count else 1))
        return registration, executor

    # -- HTTP ---------------------------------------------------------------------------------

    async def test_registerConnectValidate(self) -> None:
        registration = await self.register()
        self.assertRegex(
            registration["url"],
            r"^ws://127\.0\.0\.1:\d+/ws/environment/env-1\?role=environment&sig=[\w.-]+$",
        )
        status, reply, _ = await self.connect()
        self.assertEqual((status, reply["error"]["code"]), (409, "environment_offline"))
        await self.socket(registration["url"])
        await self.bounded(self.rendezvous.waitForExecutor("env-1"))
        harnessKey = newKey()
        status, bundle, headers = await self.connect(harnessKey=harnessKey)
        self.assertEqual(status, 200, bundle)
        self.assertEqual(headers.getRawHeaders("cache-control"), ["no-store"])
        self.assertEqual(bundle["executor_public_key"], self.key.toJson())
        self.assertEqual(
            bundle["executor_registration_id"], registration["executor_registration_id"]
        )
        self.assertRegex(bundle["url"], r"/ws/environment/env-1\?role=harness&sig=[\w.-]+$")
        check = {
            "executor_registration_id": registration["executor_registration_id"],
            "harness_public_key": harnessKey.toJson(),
            "harness_key_authorization": bundle["harness_key_authorization"],
        }
        self.assertEqual(
            (await self.post("/cloud/environment/env-1/validate", check))[:2],
            (200, {"valid": True}),
        )
        self.assertEqual(
            (await self.post("/cloud/environment/env-1/validate", check))[:2],
            (200, {"valid": False}),
        )
        # The harness's credential does not own the environment: it may not validate.
        status, reply, _ = await self.post("/cloud/environment/env-1/validate", check, HARNESS)
        self.assertEqual((status, reply["error"]["code"]), (403, "forbidden"))

    async def test_httpRefusals(self) -> None:
        body = {"security_profile": SECURITY_PROFILE, "executor_public_key": self.key.toJson()}
        status, reply, headers = await self.post("/cloud/environment/e/register", body, None)
        self.assertEqual((status, reply["error"]["code"]), (401, "unauthorized"))
        self.assertEqual(
            headers.getRawHeaders("www-authenticate"), ['Bearer realm="codex-rendezvous"']
        )
        status, reply, _ = await self.post("/cloud/environment/e/register", body, "tok-wrong")
        self.assertEqual(status, 401)
        status, reply, _ = await self.post("/cloud/environment/e/unregister", body)
        self.assertEqual((status, reply["error"]["code"]), (404, "not_found"))
        big = b'{"pad": "' + b"x" * (65 * 1024) + b'"}'
        status, reply, _ = await self.post("/cloud/environment/e/register", None, raw=big)
        self.assertEqual((status, reply["error"]["code"]), (413, "body_too_large"))
        response = await self.bounded(
            treq.get(
                self.base + "/cloud/environment/e/register",
                headers=self.bearer(OWNER),
                pool=self.pool,
            )
        )
        self.assertEqual(response.code, 405)
        await self.bounded(treq.content(response))
        # Another credential cannot take the id (and its holder keeps it).
        await self.register("owned")
        status, reply, _ = await self.post("/cloud/environment/owned/register", body, HARNESS)
        self.assertEqual((status, reply["error"]["code"]), (409, "environment_id_taken"))

    async def test_tenancy(self) -> None:
        """Another tenant's token may neither take an id nor reach it; the owner reaches its
        own without any reach= scope."""
        await self.online("env-t")
        status, reply, _ = await self.connect("env-t", token=STRANGER)
        self.assertEqual((status, reply["error"]["code"]), (403, "forbidden"))
        status, reply, _ = await self.connect("env-t", token=OWNER)
        self.assertEqual(status, 200, reply)
        register = {"security_profile": SECURITY_PROFILE, "executor_public_key": self.key.toJson()}
        status, reply, _ = await self.post("/cloud/environment/env-t/register", register, STRANGER)
        self.assertEqual((status, reply["error"]["code"]), (409, "environment_id_taken"))

    async def test_legacyRoutesUnchanged(self) -> None:
        status, reply, _ = await self.post("/cloud/executor/box/register", None, raw=b"")
        self.assertEqual(status, 200)
        self.assertEqual(reply["executor_id"], "box")
        self.assertRegex(reply["url"], r"/executor/box\?sig=")
        response = await self.bounded(
            treq.get(
                self.base + "/cloud/executors",
                headers=self.bearer(OWNER),
                pool=self.pool,
            )
        )
        listing = json.loads(await self.bounded(treq.content(response)))
        self.assertEqual([e["executor_id"] for e in listing["executors"]], ["box"])

    # -- websocket admission ------------------------------------------------------------------

    async def test_executorUrlIsSignedAndSingleUse(self) -> None:
        registration = await self.register()
        url = registration["url"]
        self.assertEqual(await self.refused(url + "x"), 403)
        self.assertEqual(await self.refused(url.replace("role=environment", "role=harness")), 401)
        self.assertEqual(await self.refused(url.replace("role=environment", "role=x")), 404)
        await self.socket(url)
        await self.bounded(self.rendezvous.waitForExecutor("env-1"))
        self.assertEqual(await self.refused(url), 403)  # spent
        again = await self.register()  # same key: same registration, a fresh URL
        self.assertEqual(
            again["executor_registration_id"], registration["executor_registration_id"]
        )
        self.assertNotEqual(again["url"], url)

    async def test_harnessUrlIsSignedSingleUseAndNeedsTheExecutor(self) -> None:
        _, executor = await self.online()
        _, bundle, _ = await self.connect()
        url = bundle["url"]
        self.assertEqual(await self.refused(url + "x"), 401)
        await self.socket(url)
        self.assertEqual(await self.refused(url), 401)  # spent
        _, bundle, _ = await self.connect()
        await executor.close()
        await self.bounded(executor.closed)
        record = self.rendezvous.server.environments.router.record("env-1")
        assert record is not None
        await self.until(lambda: not record.connected)
        self.assertEqual(await self.refused(bundle["url"]), 503)

    async def test_environmentsAndExecutorsAreSeparateNamespaces(self) -> None:
        await self.online("env-1")
        with self.assertRaises(UpgradeRefusedError) as caught:
            await self.bounded(
                Deferred.fromCoroutine(
                    connectFrameSocket(
                        self.reactor,
                        self.base.replace("http", "ws") + "/harness/env-1",
                        {"Authorization": f"Bearer {HARNESS}"},
                    )
                )
            )
        self.assertEqual(caught.exception.status, 404)
        legacy = self.rendezvous.server.router.record("env-1")
        self.assertIsNone(legacy)

    # -- routing ------------------------------------------------------------------------------

    async def test_framesAreRoutedByteForByte(self) -> None:
        _, executor = await self.online()
        _, bundle, _ = await self.connect()
        harness = await self.socket(bundle["url"])
        hello = handshake("s-1", os.urandom(3611))
        sealed = encodeData("s-1", 0, os.urandom(200))
        for raw in (encodeResume("s-1", 0), hello, sealed):
            harness.send(raw)
            self.assertEqual(await self.bounded(executor.next()), raw)
        answer = handshake("s-1", os.urandom(3424))
        executor.send(answer)
        self.assertEqual(await self.bounded(harness.next()), answer)
        # A frame for a stream nobody opened is not delivered; the route of s-1 still is.
        executor.send(encodeData("s-other", 0, b"x"))
        reply = encodeData("s-1", 0, os.urandom(64))
        executor.send(reply)
        self.assertEqual(await self.bounded(harness.next()), reply)
        # Another harness cannot use s-1.
        _, second, _ = await self.connect()
        intruder = await self.socket(second["url"])
        intruder.send(encodeData("s-1", 5, b"y"))
        refused = decode(await self.bounded(intruder.next()))
        self.assertEqual(refused.reset.reason, "stream_id in use by another harness")
        # The executor goes: the harness hears of it on its stream.
        executor.abort()
        lost = decode(await self.bounded(harness.next()))
        self.assertEqual((lost.stream_id, lost.reset.reason), ("s-1", "executor disconnected"))
        capture = self.rendezvous.capture
        self.assertEqual(
            [f.kind for f in capture.frames if f.direction == FROM_HARNESS],
            ["resume", "handshake", "data", "data"],
        )
        self.assertEqual(
            [f.kind for f in capture.frames if f.direction == FROM_EXECUTOR],
            ["handshake", "data", "data"],
        )

    async def test_harnessGoneResetsItsStreams(self) -> None:
        _, executor = await self.online()
        _, bundle, _ = await self.connect()
        harness = await self.socket(bundle["url"])
        harness.send(encodeResume("s-9", 0))
        await self.bounded(executor.next())
        harness.abort()
        reset = decode(await self.bounded(executor.next()))
        self.assertEqual((reset.stream_id, reset.reset.reason), ("s-9", "harness disconnected"))

    async def test_oversizedMessageClosesTheWebsocket(self) -> None:
        _, executor = await self.online()
        executor.send(encodeReset("s-1", "x" * (300 * 1024)))
        code, _ = await self.bounded(executor.closed)
        self.assertIn(code, (1006, 1009))  # message too big; autobahn may drop at once
        record = self.rendezvous.server.environments.router.record("env-1")
        assert record is not None
        await self.until(lambda: not record.connected)
        status, reply, _ = await self.connect()
        self.assertEqual((status, reply["error"]["code"]), (409, "environment_offline"))

    async def test_stoppingClosesEnvironmentWebsockets(self) -> None:
        _, executor = await self.online()
        _, bundle, _ = await self.connect()
        harness = await self.socket(bundle["url"])
        server = self.rendezvous.server
        server.closeAll()
        self.assertEqual((await self.bounded(executor.closed))[0], 1000)
        self.assertEqual((await self.bounded(harness.closed))[0], 1000)
        await self.bounded(server.whenAllClosed())

    async def test_slowHarnessPausesItsExecutorOnTheEnvironmentRouter(self) -> None:
        from twisted_exec.rendezvous.websocket import _Backpressure

        _, executor = await self.online()
        _, bundle, _ = await self.connect()
        harness = await self.socket(bundle["url"])
        harness.send(encodeResume("s-1", 0))
        await self.bounded(executor.next())
        server = self.rendezvous.server
        links = {type(p.link).__name__: p.link for p in server.protocols}
        slow, fed = links["EnvironmentHarnessLink"], links["EnvironmentExecutorLink"]
        assert slow is not None and fed is not None
        producer = _Backpressure(slow)
        producer.pauseProducing()
        self.assertTrue(server.environments.router.isPaused(fed))
        self.assertFalse(server.router.isPaused(fed))
        producer.resumeProducing()
        self.assertFalse(server.environments.router.isPaused(fed))
