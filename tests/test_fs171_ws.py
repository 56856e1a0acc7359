"""The new 0.171 fs methods over a real local websocket, on real files: exact JSON, every error.

Each expected reply is what the 0.171 binary answered to the same request over the same layout
(docs/reference-0.171-fs.md); the raw reply objects are compared whole (``error`` with its code
and message, ``result`` with its key order).
"""

from __future__ import annotations

import base64
import os
from typing import Any
from urllib.parse import quote

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from tests.support.fs171 import WALK_OPTIONS
from tests.support.local import serveOnLoopback
from twisted_exec.testing.wsclient import JsonRpcClient, connectJsonRpc

TIMEOUT = 20


def uri(path: str) -> str:
    return "file://" + quote(path)


def err(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Fs171WebSocketTests(TestCase):
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

    async def test_handlesEndToEnd(self) -> None:
        c = await self.client()
        cases: list[tuple[str, Any, dict[str, Any]]] = [
            (
                "fs/open",
                {"path": self.u("small"), "handleId": "h1"},
                {"result": {"handleId": "h1"}},
            ),
            (
                "fs/open",
                {"path": self.u("small"), "handleId": "h1"},
                err(-32600, "file handle `h1` already exists"),
            ),
            (
                "fs/open",
                {"path": self.u("small"), "handleId": "x" * 33},
                err(-32600, "file handle ID must not exceed 32 bytes"),
            ),
            ("fs/open", {"path": self.u("small")}, err(-32602, "missing field `handleId`")),
            ("fs/open", {"handleId": "z"}, err(-32602, "missing field `path`")),
            (
                "fs/open",
                {"path": self.p("small"), "handleId": "z"},
                err(-32602, "invalid URI: relative URL without a base"),
            ),
            (
                "fs/open",
                {"path": self.u("nope"), "handleId": "h2"},
                err(-32004, "No such file or directory (os error 2)"),
            ),
            (
                "fs/open",
                {"path": self.u("sub"), "handleId": "h2"},
                err(-32600, f"path `{self.p('sub')}` is not a file"),
            ),
            (
                "fs/open",
                {"path": self.u("small"), "handleId": "q", "mode": "bogus"},
                err(-32602, "unknown variant `bogus`, expected `read` or `replace`"),
            ),
            ("fs/open", {"path": self.u("link"), "handleId": "h3"}, {"result": {"handleId": "h3"}}),
            (
                "fs/readBlock",
                {"handleId": "h1", "offset": 0, "len": 5},
                {"result": {"chunk": b64(b"hello"), "eof": False}},
            ),
            (
                "fs/readBlock",
                {"handleId": "h1", "offset": 5, "len": 6},
                {"result": {"chunk": b64(b" world"), "eof": False}},
            ),
            (
                "fs/readBlock",
                {"handleId": "h1", "offset": 5, "len": 7},
                {"result": {"chunk": b64(b" world"), "eof": True}},
            ),
            (
                "fs/readBlock",
                {"handleId": "h1", "offset": 100, "len": 7},
                {"result": {"chunk": "", "eof": True}},
            ),
            (
                "fs/readBlock",
                {"handleId": "h1", "offset": 0, "len": 0},
                err(-32600, "file read block length must be between 1 and 1048576"),
            ),
            (
                "fs/readBlock",
                {"handleId": "h1", "offset": -1, "len": 7},
                err(-32602, "invalid number"),
            ),
            ("fs/readBlock", {"handleId": "h1", "offset": 0}, err(-32602, "missing field `len`")),
            (
                "fs/readBlock",
                {"handleId": "nope", "offset": 0, "len": 3},
                err(-32004, "unknown file handle `nope`"),
            ),
            (
                "fs/readBlock",
                {"handleId": "h1", "offset": 2**63, "len": 7},
                err(-32600, "Invalid argument (os error 22)"),
            ),
            (
                "fs/readBlock",
                {"handleId": "h1", "offset": 0, "len": 7},
                err(-32004, "unknown file handle `h1`"),
            ),
            (
                "fs/writeBlock",
                {"handleId": "h3", "offset": 0, "chunk": "aGk="},
                err(-32603, "Bad file descriptor (os error 9)"),
            ),
            (
                "fs/writeBlock",
                {"handleId": "h3", "offset": 0, "chunk": "!!"},
                err(-32602, "Invalid symbol 33, offset 0."),
            ),
            (
                "fs/open",
                {"path": self.u("w1"), "handleId": "w1", "mode": "replace"},
                {"result": {"handleId": "w1"}},
            ),
            ("fs/writeBlock", {"handleId": "w1", "offset": 0, "chunk": "aGVsbG8="}, {"result": {}}),
            (
                "fs/writeBlock",
                {"handleId": "w1", "offset": 10, "chunk": "aGVsbG8="},
                {"result": {}},
            ),
            (
                "fs/writeBlock",
                {"handleId": "w1", "offset": 0, "chunk": ""},
                err(-32600, "file write block length must be between 1 and 1048576"),
            ),
            (
                "fs/writeBlock",
                {"handleId": "w1", "offset": 2**63 - 2, "chunk": "aGk="},
                err(-32600, "file write range exceeds the signed 64-bit file offset limit"),
            ),
            (
                "fs/writeBlock",
                {"handleId": "w1", "offset": 0},
                err(-32602, "missing field `chunk`"),
            ),
            (
                "fs/readBlock",
                {"handleId": "w1", "offset": 0, "len": 3},
                err(-32603, "Bad file descriptor (os error 9)"),
            ),
            (
                "fs/writeBlock",
                {"handleId": "w1", "offset": 0, "chunk": "aGk="},
                err(-32004, "unknown file handle `w1`"),
            ),
            ("fs/close", {"handleId": "h3"}, {"result": {}}),
            ("fs/close", {"handleId": "h3"}, {"result": {}}),
            (
                "fs/close",
                {"handleId": "x" * 33},
                err(-32600, "file handle ID must not exceed 32 bytes"),
            ),
            ("fs/close", {}, err(-32602, "missing field `handleId`")),
        ]
        for method, params, expected in cases:
            self.assertEqual(await self.raw(c, method, params), expected, (method, params))
        with open(self.p("w1"), "rb") as f:
            self.assertEqual(f.read(), b"hello\0\0\0\0\0hello")

    async def test_handlesBelongToTheConnection(self) -> None:
        a = await connectJsonRpc(reactor, self.url)
        sessionId = await a.handshake()
        await a.call("fs/open", {"path": self.u("small"), "handleId": "h"})
        await a.close()
        b = await connectJsonRpc(reactor, self.url)
        self.addCleanup(lambda: b.abort() if not b.closed.called else None)
        await b.handshake(resumeSessionId=sessionId)
        self.assertEqual(
            await self.raw(b, "fs/readBlock", {"handleId": "h", "offset": 0, "len": 3}),
            err(-32004, "unknown file handle `h`"),
        )
        self.assertEqual(
            await self.raw(b, "fs/open", {"path": self.u("small"), "handleId": "h"}),
            {"result": {"handleId": "h"}},
        )

    async def test_handleLimitPerConnection(self) -> None:
        c = await self.client()
        for i in range(128):
            await c.call("fs/open", {"path": self.u("small"), "handleId": f"n{i}"})
        self.assertEqual(
            await self.raw(c, "fs/open", {"path": self.u("small"), "handleId": "more"}),
            err(-32600, "at most 128 file handles may be open per connection"),
        )
        other = await self.client()
        self.assertEqual(
            await self.raw(other, "fs/open", {"path": self.u("small"), "handleId": "more"}),
            {"result": {"handleId": "more"}},
        )

    async def test_walkAndCanonicalize(self) -> None:
        c = await self.client()
        os.makedirs(self.p("sub/deeper"))
        open(self.p("sub/deeper/f"), "w").close()
        options = dict(WALK_OPTIONS)
        self.assertEqual(
            await self.raw(c, "fs/walk", {"path": uri(self.dir), "options": options}),
            {
                "result": {
                    "entries": [
                        {"path": self.u("small"), "kind": "file"},
                        {"path": self.u("sub"), "kind": "directory"},
                        {"path": self.u("sub/deeper"), "kind": "directory"},
                        {"path": self.u("sub/deeper/f"), "kind": "file"},
                    ],
                    "errors": [],
                    "truncated": False,
                }
            },
        )
        walkCases: list[tuple[Any, dict[str, Any]]] = [
            # "link" sorts first: a skipped symlink, and yet it uses up the one entry
            (
                {"path": uri(self.dir), "options": {**options, "maxEntries": 1}},
                {"result": {"entries": [], "errors": [], "truncated": True}},
            ),
            (
                {"path": uri(self.dir), "options": {**options, "maxDirectories": 0}},
                err(-32600, "filesystem walk limits must be greater than zero"),
            ),
            (
                {"path": self.u("nope"), "options": {**options, "maxDepth": 65}},
                err(
                    -32600,
                    "filesystem walk limits exceed maximums: "
                    "depth=64, directories=10000, entries=50000",
                ),
            ),
            (
                {"path": self.u("nope"), "options": options},
                err(-32004, "No such file or directory (os error 2)"),
            ),
            (
                {"path": self.u("small"), "options": options},
                {"result": {"entries": [], "errors": [], "truncated": False}},
            ),
            ({"path": uri(self.dir)}, err(-32602, "missing field `options`")),
            (
                {"path": uri(self.dir), "options": None},
                err(-32602, "invalid type: null, expected struct WalkOptions"),
            ),
            (
                [uri(self.dir), options],
                err(-32602, "invalid length 2, expected struct WireFsWalkParams with 3 elements"),
            ),
        ]
        for params, expected in walkCases:
            self.assertEqual(await self.raw(c, "fs/walk", params), expected, params)
        real = os.path.realpath(self.dir)
        canonical: list[tuple[Any, dict[str, Any]]] = [
            ({"path": self.u("link")}, {"result": {"path": uri(os.path.join(real, "small"))}}),
            ({"path": self.u("sub/")}, {"result": {"path": uri(os.path.join(real, "sub"))}}),
            ({"path": "file:///"}, {"result": {"path": "file:///"}}),
            ({"path": self.u("nope")}, err(-32004, "No such file or directory (os error 2)")),
            ({"path": self.u("small/x")}, err(-32603, "Not a directory (os error 20)")),
            ({}, err(-32602, "missing field `path`")),
        ]
        for params, expected in canonical:
            self.assertEqual(await self.raw(c, "fs/canonicalize", params), expected, params)

    async def test_watchMissingNotifiesTheConnection(self) -> None:
        c = await self.client()
        present = uri(self.dir)
        self.assertEqual(
            await self.raw(
                c,
                "fs/watchMissing",
                {"watchId": 1, "missing": [self.u("AGENTS.md")], "present": present},
            ),
            {"result": {"watching": True}},
        )
        cases: list[tuple[Any, dict[str, Any]]] = [
            (
                {"watchId": 1, "missing": [self.u("b")], "present": present},
                {"result": {"watching": False}},
            ),
            (
                {"watchId": "s", "missing": [], "present": present},
                err(-32602, 'invalid type: string "s", expected u64'),
            ),
            ({"watchId": -1, "missing": [], "present": present}, err(-32602, "invalid number")),
            ({"missing": [], "present": present}, err(-32602, "missing field `watchId`")),
            ({"watchId": 3, "present": present}, err(-32602, "missing field `missing`")),
            (
                {"watchId": 3, "missing": [self.p("x")]},
                err(-32602, "invalid URI: relative URL without a base"),
            ),
        ]
        for params, expected in cases:
            self.assertEqual(await self.raw(c, "fs/watchMissing", params), expected, params)
        note: Deferred[Any] = c.nextNotification()
        note.addTimeout(TIMEOUT, reactor)
        with open(self.p("AGENTS.md"), "w") as f:
            f.write("# instructions")
        self.assertEqual(await note, {"method": "fs/missingChanged", "params": {"watchId": 1}})

    async def test_getMetadataFollowSymlinksAndCopy(self) -> None:
        c = await self.client()
        mtime = os.stat(self.p("small")).st_mtime_ns // 1_000_000
        linkMeta = {
            "isDirectory": False,
            "isFile": True,
            "isSymlink": True,
            "size": 11,
            "createdAtMs": 0,
            "modifiedAtMs": mtime,
        }
        self.assertEqual(
            await self.raw(c, "fs/getMetadata", {"path": self.u("link")}), {"result": linkMeta}
        )
        self.assertEqual(
            await self.raw(c, "fs/getMetadata", {"path": self.u("link"), "followSymlinks": True}),
            {"result": linkMeta},
        )
        symlink = err(-32600, "path contains a symbolic link")
        self.assertEqual(
            await self.raw(c, "fs/getMetadata", {"path": self.u("link"), "followSymlinks": False}),
            symlink,
        )
        got = await self.raw(
            c, "fs/getMetadata", {"path": self.u("small"), "followSymlinks": False}
        )
        self.assertEqual(
            list(got["result"]),
            ["isDirectory", "isFile", "isSymlink", "size", "createdAtMs", "modifiedAtMs"],
        )
        self.assertEqual((got["result"]["isSymlink"], got["result"]["size"]), (False, 11))
        self.assertEqual(
            await self.raw(c, "fs/getMetadata", [self.u("small")]),
            err(
                -32602, "invalid length 2, expected struct WireFsGetMetadataParams with 3 elements"
            ),
        )
        both = {"sourcePath": self.u("small"), "destinationPath": self.u("copy")}
        self.assertEqual(
            await self.raw(c, "fs/copy", both), err(-32602, "missing field `recursive`")
        )
        self.assertEqual(await self.raw(c, "fs/copy", {**both, "recursive": False}), {"result": {}})
        self.assertEqual(
            await self.raw(
                c,
                "fs/copy",
                {"sourcePath": self.u("sub"), "destinationPath": self.u("c2"), "recursive": False},
            ),
            err(-32600, "fs/copy requires recursive: true when sourcePath is a directory"),
        )

    async def test_capabilitiesFollowTheRegistry(self) -> None:
        c = await self.client()
        info = await c.call("environment/info")
        capabilities = info["capabilities"]
        self.assertIs(capabilities["fsWatchMissing"], True)
        self.assertIs(capabilities["fileWriteStreaming"], True)
        self.assertIs(capabilities["sandboxedFileStreaming"], False)
