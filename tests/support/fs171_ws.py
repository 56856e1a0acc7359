"""A 0.171 executor on a loopback websocket over a scratch tree, for the fs method tests.

Each expected reply in those tests is what the 0.171 binary answered to the same request over
the same layout (docs/reference-0.171-fs.md); the raw reply objects are compared whole
(``error`` with its code and message, ``result`` with its key order).

The tree: ``small`` (``hello world``), ``link`` (a symlink to it) and an empty ``sub/``.
"""

from __future__ import annotations

import base64
import os
from typing import Any
from urllib.parse import quote

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from tests.support.local import serveOnLoopback
from twisted_exec.testing.wsclient import JsonRpcClient, connectJsonRpc

TIMEOUT = 20


def uri(path: str) -> str:
    return "file://" + quote(path)


def err(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Fs171WebSocketCase(TestCase):
    """Serves the executor and builds the tree per test; ``raw`` is one reply as it came off the
    wire. No tests of its own."""

    timeout = 60

    def setUp(self) -> None:
        self.top, self.local = serveOnLoopback(self, announce=lambda _: None)
        assert self.local.url is not None
        self.url: str = self.local.url
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.dir, "sub"))
        with open(self.p("small"), "wb") as f:
            f.write(b"hello world")
        os.symlink("small", self.p("link"))

    def p(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def u(self, name: str) -> str:
        return uri(self.p(name))

    async def client(self) -> JsonRpcClient:
        client = await connectJsonRpc(reactor, self.url)
        self.addCleanup(lambda: client.abort() if not client.closed.called else None)
        await client.handshake()
        return client

    async def raw(self, client: JsonRpcClient, method: str, params: Any) -> dict[str, Any]:
        """The reply object as it came off the wire, without ``id`` (and ``jsonrpc``)."""
        before = len(client.messages)
        d = client.call(method, params)
        d.addErrback(lambda _: None)
        await d
        for message in client.messages[before:]:
            if isinstance(message, dict) and "method" not in message:
                return {k: v for k, v in message.items() if k not in ("id", "jsonrpc")}
        raise AssertionError("no reply")
