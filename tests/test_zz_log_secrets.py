"""No log line of the whole test run contains a bearer token or a registration URL's query.

The guard already fails any test that logs a secret, whatever the order tests run in
(``tests/test_logguard.py``); this module is the backstop for lines logged between tests: when
it runs last (its name sorts last) it checks every line logged before it. It also
runs a small relay life of its own (a registration, a refused upgrade, a connection, a 401) so
that it checks real executor log lines even when run alone.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from tests.logguard import GUARD
from tests.support.local import serveOnLoopback
from tests.support.relay import startRemoteExecutor, startTestCloud
from twisted_exec.executor.executor import Executor
from twisted_exec.executor.transports.relay.registry import TOKEN_ENV, RemoteConfig
from twisted_exec.executor.transports.relay.service import makeRemoteService

TOKEN = "tok-ZZ-LOGGUARD-s3cret"


def bounded(d: Deferred[Any]) -> Deferred[Any]:
    return d.addTimeout(15, reactor)


class LogSecretsTests(TestCase):
    timeout = 60

    async def test_noTokenOrQueryStringInAnyLogLine(self) -> None:
        rendezvous, registry = startTestCloud(self, TOKEN)
        executor = Executor(reactor)
        self.addCleanup(executor.shutdown)
        before = GUARD.relayLines

        rendezvous.refuseUpgrades = True  # one failed handshake: its log line names the URL
        service = startRemoteExecutor(
            self, executor, registry.baseUrl, "guard", TOKEN, retryPolicy=lambda attempt: 0.05
        )
        await bounded(registry.waitForRequest(2))
        rendezvous.refuseUpgrades = False
        conn = await bounded(rendezvous.waitForConnection(1))
        await bounded(conn.stream("s").initialize())
        await service.stopService()

        wrong = RemoteConfig.fromInputs(
            registry.baseUrl, "guard", environ={TOKEN_ENV: "tok-ZZ-wrong-s3cret"}
        )
        refused = makeRemoteService(reactor, executor.processorFactory, wrong)
        refused.startService()
        await bounded(refused.whenFatal())

        self.assertIn(TOKEN, GUARD.secrets)
        self.assertIn("tok-ZZ-wrong-s3cret", GUARD.secrets)
        self.assertTrue(any(s.startswith("sig=") for s in GUARD.secrets))
        self.assertGreater(GUARD.relayLines, before + 3)
        self.assertEqual(GUARD.violations, [], f"of {GUARD.lines} log lines")


class WebSocketAuthLogTests(TestCase):
    """The local websocket's refusals are logged (rate-limited) without the bearer or the JWT."""

    timeout = 60

    async def test_noBearerOrJwtInAnyLogLine(self) -> None:
        import time

        from twisted_exec.executor.service import ExecutorService
        from twisted_exec.net.wsauth_config import SignedBearerToken
        from twisted_exec.net.wsauth_jwt import mintSignedBearer
        from twisted_exec.testing.rawhttp import rawExchange, upgradeRequest

        secret = b"zz-logguard-jwt-secret-0123456789abcdef"
        auth = SignedBearerToken(secret, issuer="zz")
        _, local = serveOnLoopback(self, ExecutorService(reactor), auth=auth)
        assert local.url is not None
        host, port = local.url[len("ws://") :].rsplit(":", 1)
        before = GUARD.lines
        expired = mintSignedBearer(secret, {"exp": int(time.time()) - 600, "iss": "zz"})
        good = mintSignedBearer(secret, {"exp": int(time.time()) + 600, "iss": "zz"})
        for token, status in ((expired, 401), (good + "x", 401), (good, 101)):
            request = upgradeRequest(host, int(port), [("Authorization", f"Bearer {token}")])
            response = await rawExchange(reactor, host, int(port), request)
            self.assertEqual(response.status, status)
        self.assertIn(good, GUARD.secrets)
        self.assertGreater(GUARD.lines, before)
        self.assertEqual(GUARD.violations, [], f"of {GUARD.lines} log lines")
