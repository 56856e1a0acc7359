"""Remote mode on loopback for the integration tests: the test cloud and our executor in it.

The test rendezvous (the real router behind a real websocket) and a registry that sends
executors to it were started, and closed, the same way in half a dozen files; so was a remote
executor service pointed at them. One copy keeps the cleanup order (the rendezvous closes its
connections before either stops listening) the same everywhere.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.executor.executor import Executor
from twisted_exec.executor.transports.relay.registry import TOKEN_ENV, RemoteConfig
from twisted_exec.executor.transports.relay.service import RemoteExecutorService, makeRemoteService
from twisted_exec.testing.registry import FakeRegistry
from twisted_exec.testing.rendezvous import Rendezvous


def startTestCloud(case: SynchronousTestCase, token: str) -> tuple[Rendezvous, FakeRegistry]:
    """The test rendezvous and a registry accepting ``token`` that registers executors with it,
    both listening on loopback until ``case``'s cleanup."""
    rendezvous = Rendezvous(reactor)
    rendezvous.listen()
    registry = FakeRegistry(token, rendezvous.executorUrl)
    registry.listen(reactor)
    case.addCleanup(rendezvous.stopListening)
    case.addCleanup(registry.stopListening)
    case.addCleanup(rendezvous.closeAll)
    return rendezvous, registry


def startRemoteExecutor(
    case: SynchronousTestCase,
    executor: Executor,
    url: str,
    executorId: str,
    token: str,
    **options: Any,
) -> RemoteExecutorService:
    """``executor`` serving remotely as ``executorId`` through the registry or rendezvous at
    ``url`` with bearer ``token``; stopped at cleanup unless the test stopped it.
    ``options`` go to ``makeRemoteService`` (``retryPolicy``, ...)."""
    config = RemoteConfig.fromInputs(url, executorId, environ={TOKEN_ENV: token})
    service = makeRemoteService(reactor, executor.processorFactory, config, **options)
    service.startService()
    case.addCleanup(lambda: service.stopService() if service.running else None)
    return service
