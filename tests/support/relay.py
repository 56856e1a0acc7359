"""Remote mode on loopback for the integration tests: the test cloud or our rendezvous, and
our executor in it.

The test rendezvous (the real router behind a real websocket) and a registry that sends
executors to it were started, and closed, the same way in half a dozen files; so was a remote
executor service pointed at them. One copy keeps the cleanup order (the rendezvous closes its
connections before either stops listening) the same everywhere.
"""

from __future__ import annotations

import tempfile
from typing import Any

from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.executor.executor import Executor
from twisted_exec.executor.transports.relay.registry import TOKEN_ENV, RemoteConfig
from twisted_exec.executor.transports.relay.service import RemoteExecutorService, makeRemoteService
from twisted_exec.rendezvous import RendezvousServer, RendezvousService
from twisted_exec.rendezvous.auth import TokenSet
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


def startRendezvous(
    case: SynchronousTestCase, tokens: TokenSet, **options: Any
) -> tuple[RendezvousServer, RendezvousService, str]:
    """Our routing rendezvous (``twisted_exec.rendezvous``) for ``tokens`` on a free loopback
    port until cleanup: the server, its service and its ``http://`` URL. ``options`` go to
    ``RendezvousServer`` (``limits``, ...)."""
    server = RendezvousServer(reactor, tokens, **options)
    service = RendezvousService(reactor, server, "http://127.0.0.1:0")
    service.startService()
    case.addCleanup(service.stopService)
    assert service.url is not None
    return server, service, service.url


def startRemoteExecutor(
    case: SynchronousTestCase,
    executor: Executor,
    url: str,
    executorId: str,
    token: str,
    name: str | None = None,
    **options: Any,
) -> RemoteExecutorService:
    """``executor`` serving remotely as ``executorId`` (shown as ``name``) through the registry
    or rendezvous at ``url`` with bearer ``token``; stopped at cleanup unless the test stopped
    it. ``options`` go to ``makeRemoteService`` (``retryPolicy``, ...)."""
    config = RemoteConfig.fromInputs(url, executorId, name, environ={TOKEN_ENV: token})
    service = makeRemoteService(reactor, executor.processorFactory, config, **options)
    service.startService()
    case.addCleanup(lambda: service.stopService() if service.running else None)
    return service


class TestCloudMixin:
    """``setUp`` for tests of our executor in the test cloud: the captured log lines
    (``logs``, for the no-secret checks), a scratch directory (``tmp``) and the cloud
    (``rendezvous``, ``registry``) accepting the class's ``cloudToken``. Mix in before
    ``TestCase``."""

    cloudToken: str
    logs: list[str]
    tmp: str
    rendezvous: Rendezvous
    registry: FakeRegistry

    def setUp(self) -> None:
        from tests.test_relay_demux import captureLogs

        case: Any = self
        self.logs = captureLogs(case)
        self.tmp = tempfile.mkdtemp()
        self.rendezvous, self.registry = startTestCloud(case, self.cloudToken)


class TestCloudExecutorMixin(TestCloudMixin):
    """:class:`TestCloudMixin` plus an in-process ``executor`` (shut down at cleanup) for the
    test to serve remotely with :func:`startRemoteExecutor`."""

    executor: Executor

    def setUp(self) -> None:
        super().setUp()
        case: Any = self
        self.executor = Executor(reactor)
        case.addCleanup(self.executor.shutdown)
