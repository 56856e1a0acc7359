"""Our executor behind its local websocket listener on a free loopback port, for the length
of a test, and a JSON-RPC client connected to it.

The websocket tests (filesystem, dialect, flow control, limits, auth, nodelay) built this the
same way each time; here the listener is always a child of the ``ExecutorService`` it serves,
so stopping that at cleanup closes the listener and every session in one step.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.executor.executor import Executor
from twisted_exec.executor.service import ExecutorService, LocalWebSocketService
from twisted_exec.testing.wsclient import JsonRpcClient, connectJsonRpc


def serveOnLoopback(
    case: SynchronousTestCase,
    top: ExecutorService | None = None,
    listen: str = "ws://127.0.0.1:0",
    **options: Any,
) -> tuple[ExecutorService, LocalWebSocketService]:
    """``top`` (an ``ExecutorService`` with a 10 s session TTL unless given) listening on
    ``listen``, started, and stopped at cleanup. ``options`` go to ``LocalWebSocketService``
    (``announce``, ``auth``, ``maxMessageBytes``); its ``url`` is set on return."""
    top = ExecutorService(reactor, ttl=10.0) if top is None else top
    local = LocalWebSocketService(reactor, top.executor.processorFactory, listen, **options)
    local.setServiceParent(top)
    top.startService()
    case.addCleanup(top.stopService)
    assert local.url is not None
    return top, local


def serveExecutor(case: SynchronousTestCase, executor: Executor) -> LocalWebSocketService:
    """A bare ``executor``'s processors on a loopback websocket, stopped at cleanup (the
    executor's own shutdown stays the caller's)."""
    service = LocalWebSocketService(reactor, executor.processorFactory, "ws://127.0.0.1:0")
    service.privilegedStartService()
    service.startService()
    case.addCleanup(service.stopService)
    assert service.url is not None
    return service


async def connectClient(
    case: SynchronousTestCase, url: str, timeout: float = 15.0
) -> JsonRpcClient:
    """A JSON-RPC websocket client of ``url`` (connected within ``timeout``), aborted at cleanup."""
    client = await Deferred.fromCoroutine(connectJsonRpc(reactor, url)).addTimeout(timeout, reactor)
    case.addCleanup(client.abort)
    return client
