"""Tenancy and admission of the real rendezvous service, attacked over loopback sockets.

One rendezvous, two tenants (tokens A and B), a real remote executor of A's. B tries to take the
executor id over, to reach it with a harness, to see it in the listing; anyone tries oversized
and slow registrations.
"""

from __future__ import annotations

import json
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from tests.logguard import GUARD
from tests.support.relay import startRemoteExecutor, startRendezvous
from twisted_exec.executor.executor import Executor
from twisted_exec.harness import AuthenticationError, connectHarness, listExecutors
from twisted_exec.rendezvous.auth import TokenSet
from twisted_exec.rendezvous.server import RendezvousLimits
from twisted_exec.rendezvous.tenancy import parseTokensFile
from twisted_exec.testing.rawhttp import Response, rawExchange

TOKEN_A = "tok-TENANT-A-0123456789"
TOKEN_B = "tok-TENANT-B-0123456789"
TOKEN_OPS = "tok-TENANT-OPS-0123456789"
TIMEOUT = 15


def bounded(d: Deferred[Any], seconds: float = TIMEOUT) -> Deferred[Any]:
    return d.addTimeout(seconds, reactor)


class TenancyAttackTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        for token in (TOKEN_A, TOKEN_B, TOKEN_OPS):
            GUARD.learn(token)
        tokens = TokenSet(
            parseTokensFile(f"{TOKEN_A} name=a\n{TOKEN_B} name=b\n{TOKEN_OPS} name=ops reach=*\n")
        )
        limits = RendezvousLimits(requestTimeout=1.0, maxConnectionsPerIp=64)
        self.server, self.service, self.url = startRendezvous(self, tokens, limits=limits)
        self.port = int(self.url.rsplit(":", 1)[1])

    async def startExecutor(self, executorId: str, token: str) -> None:
        executor = Executor(reactor)
        self.addCleanup(executor.shutdown)
        startRemoteExecutor(
            self, executor, self.url, executorId, token, retryPolicy=lambda attempt: 0.05
        )
        await bounded(self.server.router.waitForExecutor(executorId))

    def post(
        self, path: str, token: str | None, body: bytes = b"{}", **kw: Any
    ) -> Deferred[Response]:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        return Deferred.fromCoroutine(
            rawExchange(reactor, "127.0.0.1", self.port, head + body, **kw)
        )

    async def test_takeoverRefusedAndTheHolderKeepsItsExecutor(self) -> None:
        await self.startExecutor("box", TOKEN_A)
        record = self.server.router.record("box")
        assert record is not None
        link = record.link
        refused = await self.post("/cloud/executor/box/register", TOKEN_B)
        self.assertEqual(refused.status, 409)
        self.assertEqual(
            json.loads(refused.body),
            {
                "error": {
                    "code": "executor_id_taken",
                    "message": "executor id 'box' is registered by another credential",
                }
            },
        )
        self.assertIs(record.link, link)  # never displaced
        self.assertEqual(record.connections, 1)
        again = await self.post("/cloud/executor/box/register", TOKEN_A)
        self.assertEqual(again.status, 200)  # the holder itself may register again
        connection = await bounded(connectHarness(reactor, self.url, "box", TOKEN_A))
        self.addCleanup(connection.close)
        session = await bounded(connection.openSession())
        reply = await bounded(session.getMetadata("/"))
        self.assertTrue(reply["isDirectory"])

    async def test_crossTenantHarnessRefused(self) -> None:
        await self.startExecutor("box", TOKEN_A)
        with self.assertRaises(AuthenticationError) as caught:
            await bounded(connectHarness(reactor, self.url, "box", TOKEN_B))
        self.assertIn("(403)", str(caught.exception))
        self.assertIn("may not reach executor 'box'", str(caught.exception))
        self.assertEqual(
            await bounded(Deferred.fromCoroutine(listExecutors(reactor, self.url, TOKEN_B))), []
        )
        listed = await bounded(Deferred.fromCoroutine(listExecutors(reactor, self.url, TOKEN_A)))
        self.assertEqual([e["executor_id"] for e in listed], ["box"])
        ops = await bounded(connectHarness(reactor, self.url, "box", TOKEN_OPS))  # reach=*
        self.addCleanup(ops.close)

    async def test_oversizedRegistrationRefusedBeforeTheBody(self) -> None:
        """Only 64 KiB of the announced 256 MiB are ever sent: a 413 can only be the verdict on
        the headers (a server waiting for the body would drop us at its 1 s deadline instead,
        status 0), so no clock is needed to show it came before the body."""
        head = (
            f"POST /cloud/executor/big/register HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {TOKEN_A}\r\nContent-Length: 268435456\r\n\r\n"
        ).encode()
        response = await rawExchange(reactor, "127.0.0.1", self.port, head + b"x" * 65536)
        self.assertEqual(response.status, 413)
        self.assertIsNone(self.server.router.record("big"))
        unauthenticated = head.replace(f"Bearer {TOKEN_A}".encode(), b"Bearer nope")
        response = await rawExchange(
            reactor, "127.0.0.1", self.port, unauthenticated + b"x" * 65536
        )
        self.assertEqual(response.status, 401)
        self.assertEqual(json.loads(response.body)["error"]["code"], "unauthorized")

    async def test_slowRegistrationDropped(self) -> None:
        """A byte every 50 ms: the 1 s request deadline still drops it. A functional deadline:
        dropped within 5x the deadline, where the trickle alone would take ~18 s (the
        exchange gives up at 10 s)."""
        started = time.monotonic()
        body = json.dumps({"pad": "p" * 200}).encode()
        response = await self.post(
            "/cloud/executor/slow/register", TOKEN_A, body, chunk=1, interval=0.05, timeout=10
        )
        self.assertEqual(response.status, 0)
        self.assertTrue(response.closed)
        deadline = self.server.limits.requestTimeout
        assert deadline is not None
        self.assertLess(time.monotonic() - started, 5 * deadline)
        self.assertIsNone(self.server.router.record("slow"))
