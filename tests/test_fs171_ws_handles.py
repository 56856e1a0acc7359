"""The 0.171 fs handle methods over a real local websocket, on real files: ``fs/open``,
``fs/readBlock``, ``fs/writeBlock``, ``fs/close`` and the per-connection handle table; exact
JSON, every error (whole reply objects, as the 0.171 binary answered: see tests.support.fs171_ws).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor

from tests.support.fs171_ws import Fs171WebSocketCase, b64, err
from twisted_exec.testing.wsclient import connectJsonRpc


class Fs171HandleTests(Fs171WebSocketCase):
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
