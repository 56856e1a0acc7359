"""The 0.171 dialect's process methods over a real loopback websocket, with real processes:
``process/start`` fields and errors, signals, terminate and exit codes, deduplicated writes and
``process/read``; exact JSON, as the 0.171.0 binary answered."""

from __future__ import annotations

import base64
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred

from tests.support.dialect import TIMEOUT, DialectCase, b64text

UUID = "0199a213-81c0-7800-8aa1-bbab2a035a53"


class DialectProcessTests(DialectCase):
    def test_processStartFieldsAndErrors(self) -> Deferred[None]:
        async def go() -> None:
            client = await self.connect()
            start = {
                "processId": "p4",
                "metadata": {"threadId": UUID, "toolCallId": "t"},
                "argv": ["true"],
                "cwd": self.uri(),
                "env": {},
                "tty": False,
                "sandbox": None,
                "enforceManagedNetwork": False,
                "managedNetwork": None,
                "shellSnapshot": None,
                "networkProxy": None,
            }
            self.assertEqual(
                await self.ask(client, "process/start", start),
                {"id": 2, "result": {"processId": "p4", "sandboxType": "none"}},
            )
            notes = await self.until(client, "process/closed", "p4")
            self.assertEqual(
                notes,
                [
                    {
                        "method": "process/exited",
                        "params": {
                            "processId": "p4",
                            "seq": 1,
                            "exitCode": 0,
                            "sandboxDenied": False,
                        },
                    },
                    {"method": "process/closed", "params": {"processId": "p4", "seq": 2}},
                ],
            )
            base = {"argv": ["true"], "cwd": self.uri(), "env": {}, "tty": False}
            cases: list[tuple[dict[str, Any], dict[str, Any]]] = [
                (
                    {"metadata": {"threadId": "nope"}},
                    {
                        "code": -32602,
                        "message": "invalid character: expected an optional prefix of"
                        " `urn:uuid:` followed by [0-9a-fA-F-], found `n` at 1",
                    },
                ),
                (
                    {"metadata": {"threadId": ""}},
                    {
                        "code": -32602,
                        "message": "invalid length: expected length 32 for simple format, found 0",
                    },
                ),
                (
                    {"metadata": {"threadId": "01a23ccf-9f04-77e3-a655"}},
                    {"code": -32602, "message": "invalid group count: expected 5, found 4"},
                ),
                (
                    {"metadata": {"threadId": "01a23ccf-9f04-77e3-a65-b4e942ddc1aaa"}},
                    {
                        "code": -32602,
                        "message": "invalid group length in group 3: expected 4, found 3",
                    },
                ),
                (
                    {"metadata": 5},
                    {
                        "code": -32602,
                        "message": "invalid type: number, expected struct ExecMetadata",
                    },
                ),
                ({"sandbox": {}}, {"code": -32602, "message": "missing field `permissions`"}),
                (
                    {"enforceManagedNetwork": None},
                    {"code": -32602, "message": "invalid type: null, expected a boolean"},
                ),
                ({"shellSnapshot": {}}, {"code": -32602, "message": "missing field `scopeId`"}),
                ({"networkProxy": {}}, {"code": -32602, "message": "missing field `proxy`"}),
                (
                    {"managedNetwork": 5},
                    {
                        "code": -32602,
                        "message": "invalid type: number, expected struct"
                        " ManagedNetworkSandboxContext",
                    },
                ),
                (
                    {"cwd": "relative/dir"},
                    {"code": -32602, "message": "invalid URI: relative URL without a base"},
                ),
                (
                    {"cwd": "file://host/x"},
                    {
                        "code": -32602,
                        "message": "cwd URI `file://host/x` is not valid on this exec-server host:"
                        " 'file://host/x' is invalid on 'linux'",
                    },
                ),
                (
                    {"cwd": self.uri("missing")},
                    {
                        "code": -32603,
                        "data": {"kind": "spawnNotFound"},
                        "message": "No such file or directory (os error 2)",
                    },
                ),
                (
                    {"argv": ["/nonexistent"]},
                    {
                        "code": -32603,
                        "data": {"kind": "spawnNotFound"},
                        "message": "No such file or directory (os error 2)",
                    },
                ),
                ({"argv": []}, {"code": -32602, "message": "argv must not be empty"}),
                (
                    {"argv": ["true"], "cwd": 5},
                    {"code": -32602, "message": "invalid type: number, expected a string"},
                ),
            ]
            for index, (change, error) in enumerate(cases):
                reply = await self.ask(
                    client, "process/start", {"processId": f"e{index}", **base, **change}
                )
                self.assertEqual(reply.get("error"), error, change)
            self.assertEqual(
                (await self.ask(client, "process/start", []))["error"]["message"],
                "invalid length 0, expected struct WireExecParams with 14 elements",
            )

        return self.run_(go())

    def test_signalTerminateAndExitCodes(self) -> Deferred[None]:
        async def go() -> None:
            client = await self.connect()
            common = {"cwd": self.uri(), "env": {}, "tty": False}
            await self.ask(
                client, "process/start", {"processId": "s1", "argv": ["sleep", "30"], **common}
            )
            self.assertEqual(
                await self.ask(
                    client, "process/signal", {"processId": "s1", "signal": "interrupt"}
                ),
                {"id": 3, "result": {}},
            )
            notes = await self.until(client, "process/closed", "s1")
            self.assertEqual(
                notes[0]["params"],
                {"processId": "s1", "seq": 1, "exitCode": 130, "sandboxDenied": False},
            )
            self.assertEqual(
                await self.ask(
                    client, "process/signal", {"processId": "nope", "signal": "interrupt"}
                ),
                {"id": 4, "result": {}},
            )
            self.assertEqual(
                (await self.ask(client, "process/signal", {"processId": "s1", "signal": "kill"}))[
                    "error"
                ],
                {"code": -32602, "message": "unknown variant `kill`, expected `interrupt`"},
            )
            self.assertEqual(
                (await self.ask(client, "process/signal", {"processId": "s1"}))["error"]["message"],
                "missing field `signal`",
            )
            await self.ask(
                client,
                "process/start",
                {"processId": "c1", "argv": ["cat"], **common, "pipeStdin": True},
            )
            self.assertEqual(
                await self.ask(client, "process/terminate", {"processId": "c1"}),
                {"id": 8, "result": {"running": True}},
            )
            notes = await self.until(client, "process/closed", "c1")
            self.assertEqual(notes[0]["params"]["exitCode"], 137)
            await self.ask(
                client,
                "process/start",
                {"processId": "k2", "argv": ["sh", "-c", "kill -TERM $$"], **common},
            )
            notes = await self.until(client, "process/closed", "k2")
            self.assertEqual(
                notes[0]["params"],
                {"processId": "k2", "seq": 1, "exitCode": 143, "sandboxDenied": False},
            )

        return self.run_(go())

    def test_writeIdDeduplicatedAndRead(self) -> Deferred[None]:
        async def go() -> None:
            client = await self.connect()
            await self.ask(
                client,
                "process/start",
                {
                    "processId": "c1",
                    "argv": ["cat"],
                    "cwd": self.uri(),
                    "env": {},
                    "tty": False,
                    "pipeStdin": True,
                },
            )
            for chunk, writeId in (("one\n", "w1"), ("two\n", "w1"), ("three\n", "w2")):
                reply = await self.ask(
                    client,
                    "process/write",
                    {"processId": "c1", "chunk": b64text(chunk), "writeId": writeId},
                )
                self.assertEqual(reply["result"], {"status": "accepted"})
            self.assertEqual(
                (await self.ask(client, "process/write", {"processId": "c1", "chunk": ""}))[
                    "error"
                ],
                {"code": -32602, "message": "missing field `writeId`"},
            )
            self.assertEqual(
                (
                    await self.ask(
                        client, "process/write", {"processId": "x", "chunk": "", "writeId": "w"}
                    )
                )["result"],
                {"status": "unknownProcess"},
            )
            output = b""
            while output != b"one\nthree\n":
                note = await client.nextNotification().addTimeout(TIMEOUT, reactor)
                output += base64.b64decode(note["params"]["chunk"])
            await self.ask(client, "process/terminate", {"processId": "c1"})
            await self.until(client, "process/closed", "c1")
            read = await self.ask(client, "process/read", {"processId": "c1"})
            chunks = read["result"].pop("chunks")
            self.assertEqual(
                b"".join(base64.b64decode(c["chunk"]) for c in chunks),
                b"one\nthree\n",
            )
            last = chunks[-1]["seq"]
            self.assertEqual(
                read["result"],
                {
                    "nextSeq": last + 3,
                    "exited": True,
                    "exitCode": 137,
                    "closed": True,
                    "failure": None,
                    "sandboxDenied": False,
                },
            )
            self.assertEqual(
                (
                    await self.ask(
                        client, "process/write", {"processId": "c1", "chunk": "", "writeId": "w9"}
                    )
                )["error"],
                {"code": -32603, "message": "failed to write to process stdin"},
            )
            self.assertEqual(
                (await self.ask(client, "process/read", {"processId": "c1", "afterSeq": -1}))[
                    "error"
                ],
                {"code": -32602, "message": "invalid number"},
            )

        return self.run_(go())
