"""One executor serving both dialects on a loopback websocket, for the tests that compare its
replies with what the Codex 0.171.0 binary answered to the same requests (the messages are
copied from its answers).

:class:`DialectCase` runs an in-process ``LocalWebSocketService`` with a scratch home
(``base``), a ``CODEX_HOME`` in it and one secret in the executor's environment
(``E2E_SECRET``); ``ask`` returns a request's whole reply, errors included.
"""

from __future__ import annotations

import base64
import contextlib
import os
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.trial.unittest import TestCase

from tests.support.local import serveOnLoopback
from twisted_exec.compat.fileuri import fromHostPath
from twisted_exec.executor.service import ExecutorService
from twisted_exec.testing.wsclient import JsonRpcClient, JsonRpcError, connectJsonRpc

TIMEOUT = 10.0


def b64text(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class DialectCase(TestCase):
    """The executor, its environment and the request helpers; no tests of its own."""

    timeout = 60

    def setUp(self) -> None:
        self.base = Path(self.mktemp()).resolve()
        self.base.mkdir(parents=True)
        self.home = self.base / "codex-home"
        self.home.mkdir()
        self.environ = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.base),
            "CODEX_HOME": str(self.home),
            "E2E_SECRET": "s3cret",
        }
        top = ExecutorService(reactor, ttl=10.0, environ=self.environ)
        self.top, self.local = serveOnLoopback(self, top)

    def uri(self, *parts: str) -> str:
        return fromHostPath(str(self.base.joinpath(*parts)))

    async def connect(self, handshake: bool = True) -> JsonRpcClient:
        assert self.local.url is not None
        client = await connectJsonRpc(reactor, self.local.url)
        self.addCleanup(lambda: client.close() if not client.closed.called else None)
        if handshake:
            await client.handshake()
        return client

    async def ask(self, client: JsonRpcClient, method: str, params: Any = None) -> Any:
        """The whole reply (result or error) to one request."""
        requestId = client.nextId
        with contextlib.suppress(JsonRpcError):
            await client.call(method, params).addTimeout(TIMEOUT, reactor)
        return next(
            m for m in reversed(client.messages) if m.get("id") == requestId and "method" not in m
        )

    async def until(self, client: JsonRpcClient, method: str, processId: str) -> Any:
        """Notifications up to ``method`` of ``processId`` (inclusive)."""
        seen = []
        while True:
            note = await client.nextNotification().addTimeout(TIMEOUT, reactor)
            seen.append(note)
            if note.get("method") == method and note["params"].get("processId") == processId:
                return seen

    def run_(self, coroutine: Any) -> Deferred[None]:
        return ensureDeferred(coroutine)
