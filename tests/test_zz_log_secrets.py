"""No log line of the whole test run contains a bearer token or a registration URL's query.

This module sorts last, so under ``pytest tests`` and ``trial tests`` it checks every line
logged before it (``tests/logguard.py`` watches from the first import of ``tests``). It also
runs a small relay life of its own (a registration, a refused upgrade, a connection, a 401) so
that it checks real executor log lines even when run alone.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from tests.logguard import GUARD
from twisted_exec.executor.executor import Executor
from twisted_exec.executor.transports.relay.registry import TOKEN_ENV, RemoteConfig
from twisted_exec.executor.transports.relay.service import makeRemoteService
from twisted_exec.testing.registry import FakeRegistry
from twisted_exec.testing.rendezvous import Rendezvous

TOKEN = "tok-ZZ-LOGGUARD-s3cret"


def bounded(d: Deferred[Any]) -> Deferred[Any]:
    return d.addTimeout(15, reactor)


class LogSecretsTests(TestCase):
    timeout = 60

    async def test_noTokenOrQueryStringInAnyLogLine(self) -> None:
        rendezvous = Rendezvous(reactor)
        rendezvous.listen()
        registry = FakeRegistry(TOKEN, rendezvous.executorUrl)
        registry.listen(reactor)
        executor = Executor(reactor)
        self.addCleanup(registry.stopListening)
        self.addCleanup(rendezvous.stopListening)
        self.addCleanup(rendezvous.closeAll)
        self.addCleanup(executor.shutdown)
        before = GUARD.relayLines

        rendezvous.refuseUpgrades = True  # one failed handshake: its log line names the URL
        config = RemoteConfig.fromInputs(registry.baseUrl, "guard", environ={TOKEN_ENV: TOKEN})
        service = makeRemoteService(
            reactor, executor.processorFactory, config, retryPolicy=lambda attempt: 0.05
        )
        service.startService()
        self.addCleanup(lambda: service.stopService() if service.running else None)
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
