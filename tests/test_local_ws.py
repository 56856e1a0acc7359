"""Local websocket mode over real loopback sockets, real processes and real files."""

from __future__ import annotations

import base64
import os
from typing import Any

import treq
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.trial.unittest import TestCase

from twisted_exec.executor.service import ExecutorService, LocalWebSocketService
from twisted_exec.testing.wsclient import JsonRpcClient, JsonRpcError, connectJsonRpc

TIMEOUT = 20


class LocalWebSocketTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.announced: list[str] = []
        self.top = ExecutorService(reactor, ttl=10.0)
        self.local = LocalWebSocketService(
            reactor,
            self.top.executor.processorFactory,
            "ws://127.0.0.1:0",
            announce=self.announced.append,
        )
        self.local.setServiceParent(self.top)
        self.top.startService()
        self.addCleanup(self.top.stopService)
        assert self.local.url is not None
        self.url: str = self.local.url

    async def client(self) -> JsonRpcClient:
        client = await connectJsonRpc(reactor, self.url)
        self.addCleanup(lambda: client.abort() if not client.closed.called else None)
        return client

    def run_(self, coro: Any) -> Any:
        return ensureDeferred(coro).addTimeout(TIMEOUT, reactor)

    def test_announcesBoundUrl(self) -> None:
        self.assertEqual(len(self.announced), 1)
        self.assertRegex(self.announced[0], r"^ws://127\.0\.0\.1:[1-9]\d*$")

    def test_readyzAndOtherPaths(self) -> Any:
        async def go() -> None:
            http = self.url.replace("ws://", "http://")
            ready = await treq.get(http + "/readyz", persistent=False)
            self.assertEqual(ready.code, 200)
            self.assertEqual(await ready.content(), b"")
            missing = await treq.get(http + "/other", persistent=False)
            self.assertEqual(missing.code, 404)
            await missing.content()

        return self.run_(go())

    def test_processRoundTrip(self) -> Any:
        async def go() -> None:
            client = await self.client()
            await client.handshake()
            started = await client.call(
                "process/start",
                {
                    "processId": "p1",
                    "argv": ["bash", "-c", "echo hi; echo err >&2; exit 3"],
                    "cwd": os.getcwd(),
                    "env": {"PATH": os.environ["PATH"]},
                    "tty": False,
                },
            )
            self.assertEqual(started, {"processId": "p1"})
            notes = [await client.nextNotification() for _ in range(4)]
            methods = [n["method"] for n in notes]
            self.assertEqual(methods[-2:], ["process/exited", "process/closed"])
            self.assertEqual([n["params"]["seq"] for n in notes], [1, 2, 3, 4])
            outputs = {
                n["params"]["stream"]: base64.b64decode(n["params"]["chunk"]) for n in notes[:2]
            }
            self.assertEqual(outputs, {"stdout": b"hi\n", "stderr": b"err\n"})
            self.assertEqual(notes[2]["params"], {"processId": "p1", "seq": 3, "exitCode": 3})
            read = await client.call("process/read", {"processId": "p1", "afterSeq": None})
            self.assertEqual(
                {k: v for k, v in read.items() if k != "chunks"},
                {"nextSeq": 3, "exited": True, "exitCode": 3, "closed": True, "failure": None},
            )
            self.assertEqual(len(read["chunks"]), 2)

        return self.run_(go())

    def test_fsRoundTripAndNotFound(self) -> Any:
        async def go() -> None:
            client = await self.client()
            await client.handshake()
            path = os.path.abspath(self.mktemp())
            data = base64.b64encode(b"\x00payload\xff").decode()
            self.assertEqual(
                await client.call("fs/writeFile", {"path": path, "dataBase64": data}), {}
            )
            self.assertEqual(await client.call("fs/readFile", {"path": path}), {"dataBase64": data})
            with self.assertRaises(JsonRpcError) as caught:
                await client.call("fs/getMetadata", {"path": path + ".missing"})
            self.assertEqual(
                (caught.exception.code, caught.exception.message),
                (-32004, "No such file or directory (os error 2)"),
            )

        return self.run_(go())

    def test_nonJsonFrameGetsParseError(self) -> Any:
        async def go() -> None:
            client = await self.client()
            client.sendRaw("not json")
            reply = await client.nextNotification()
            port = client.protocol.transport.getHost().port
            self.assertEqual(
                reply,
                {
                    "error": {
                        "code": -32600,
                        "message": "failed to parse websocket JSON-RPC message from exec-server "
                        f"websocket 127.0.0.1:{port}: expected ident at line 1 column 2",
                    },
                    "id": -1,
                },
            )

        return self.run_(go())

    def test_resumeAfterDisconnectKeepsProcessAndOutput(self) -> Any:
        async def go() -> None:
            first = await self.client()
            sessionId = await first.handshake()
            await first.call(
                "process/start",
                {
                    "processId": "p",
                    "argv": ["bash", "-c", "read line; echo got:$line"],
                    "cwd": "/",
                    "env": {"PATH": os.environ["PATH"]},
                    "tty": False,
                    "pipeStdin": True,
                },
            )
            await first.close()
            second = await self.client()
            self.assertEqual(await second.handshake(resumeSessionId=sessionId), sessionId)
            written = await second.call(
                "process/write",
                {"processId": "p", "chunk": base64.b64encode(b"x\n").decode()},
            )
            self.assertEqual(written, {"status": "accepted"})
            read = await second.call("process/read", {"processId": "p", "waitMs": 5000})
            while not read["closed"]:
                more = await second.call(
                    "process/read",
                    {"processId": "p", "afterSeq": read["nextSeq"] - 1, "waitMs": 5000},
                )
                read["chunks"] += more["chunks"]
                read["closed"] = more["closed"]
            output = b"".join(base64.b64decode(c["chunk"]) for c in read["chunks"])
            self.assertEqual(output, b"got:x\n")

        return self.run_(go())

    def test_sessionsAreIndependent(self) -> Any:
        async def go() -> None:
            one, two = await self.client(), await self.client()
            id1, id2 = await one.handshake(), await two.handshake()
            self.assertNotEqual(id1, id2)
            with self.assertRaises(JsonRpcError) as caught:
                await one.call("initialize", {"clientName": "x", "resumeSessionId": id2})
            self.assertEqual(
                caught.exception.message, "initialize may only be sent once per connection"
            )
            three = await self.client()
            with self.assertRaises(JsonRpcError) as caught:
                await three.call("initialize", {"clientName": "x", "resumeSessionId": id2})
            self.assertEqual(
                caught.exception.message,
                f"session {id2} is already attached to another connection",
            )

        return self.run_(go())
