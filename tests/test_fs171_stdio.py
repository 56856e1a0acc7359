"""The new 0.171 fs methods over the stdio transport, and the per-connection lifecycle.

Stdio is one connection: the handles and the watch live as long as stdin does and end with
it (the processor closes its connection resources on EOF, as on a websocket close).
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any
from urllib.parse import quote

from twisted.internet import reactor, task
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from twisted_exec.executor.core.interfaces import IConnectionResource
from twisted_exec.executor.executor import Executor
from twisted_exec.executor.transports.stdio import StdioJsonRpcProtocol


@implementer(IConnectionResource)
class _Recorder:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


class StdioTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.executor = Executor(reactor)
        self.addCleanup(self.executor.shutdown)
        self.processor = self.executor.processorFactory.buildProcessor(None)
        self.protocol = StdioJsonRpcProtocol(self.processor)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        with open(os.path.join(self.dir, "small"), "wb") as f:
            f.write(b"hello world")
        self.seen = 0

    def uri(self, name: str) -> str:
        return "file://" + quote(os.path.join(self.dir, name))

    def send(self, message: dict[str, Any]) -> None:
        self.protocol.dataReceived(json.dumps(message).encode() + b"\n")

    async def nextLine(self) -> dict[str, Any]:
        for _ in range(500):
            lines = self.transport.value().splitlines()
            if len(lines) > self.seen:
                self.seen += 1
                return dict(json.loads(lines[self.seen - 1]))
            await task.deferLater(reactor, 0.01, lambda: None)
        raise AssertionError("no line on stdout")

    async def test_handlesAndWatchOverStdio(self) -> None:
        self.send({"id": 1, "method": "initialize", "params": {"clientName": "stdio-test"}})
        self.assertIn("sessionId", (await self.nextLine())["result"])
        self.send({"method": "initialized"})
        self.send(
            {"id": 2, "method": "fs/open", "params": {"path": self.uri("small"), "handleId": "h"}}
        )
        self.assertEqual(await self.nextLine(), {"id": 2, "result": {"handleId": "h"}})
        self.send(
            {"id": 3, "method": "fs/readBlock", "params": {"handleId": "h", "offset": 6, "len": 5}}
        )
        self.assertEqual(
            await self.nextLine(),
            {"id": 3, "result": {"chunk": base64.b64encode(b"world").decode(), "eof": False}},
        )
        present = "file://" + quote(self.dir)
        self.send(
            {
                "id": 4,
                "method": "fs/watchMissing",
                "params": {"watchId": 1, "missing": [self.uri("AGENTS.md")], "present": present},
            }
        )
        self.assertEqual(await self.nextLine(), {"id": 4, "result": {"watching": True}})
        open(os.path.join(self.dir, "AGENTS.md"), "w").close()
        self.assertEqual(
            await self.nextLine(), {"method": "fs/missingChanged", "params": {"watchId": 1}}
        )
        handles = self.processor.connectionResource("fs171.handles", _Recorder)
        self.assertEqual(len(handles), 1)
        self.protocol.readConnectionLost()  # stdin EOF
        self.assertEqual(len(handles), 0)

    def test_connectionResourcesCloseOnceWithTheConnection(self) -> None:
        first = self.processor.connectionResource("k", _Recorder)
        self.assertIs(self.processor.connectionResource("k", _Recorder), first)
        self.processor.connectionLost()
        self.assertEqual(first.closed, 1)
        self.processor.closeSession()
        self.assertEqual(first.closed, 1)
