"""fs/open, fs/readBlock, fs/writeBlock, fs/close on real files, as probed on Codex 0.171.0.

Every expected answer below was seen on the 0.171 binary with the same layout
(docs/reference-0.171-fs.md, "handles").
"""

from __future__ import annotations

import base64
import os
from typing import Any

from twisted.internet import reactor, task
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from twisted_exec.compat.fsparams171 import (
    FsCloseParams,
    FsOpenParams,
    FsReadBlockParams,
    FsWriteBlockParams,
)
from twisted_exec.executor.core.interfaces import IConnectionResource
from twisted_exec.executor.resources.fs_handles import FileHandleTable
from twisted_exec.executor.resources.offload import OffloadPool
from twisted_exec.wire.errors import RpcError
from twisted_exec.wire.jsonrpc import EncodedParams, encodeResult

EBADF = {"code": -32603, "message": "Bad file descriptor (os error 9)"}
NOENT = {"code": -32004, "message": "No such file or directory (os error 2)"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class HandleTests(TestCase):
    timeout = 20

    def setUp(self) -> None:
        self.pool = OffloadPool()
        self.addCleanup(self.pool.stop)
        self.table = FileHandleTable(reactor, self.pool)
        self.addCleanup(self.table.closeAll)
        self.dir = os.path.abspath(self.mktemp())
        os.mkdir(self.dir)
        self.small = self.path("small")
        with open(self.small, "wb") as f:
            f.write(b"hello world")

    def descriptorsOf(self, path: str) -> set[str]:
        found = set()
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{fd}") == path:
                    found.add(fd)
            except OSError:
                continue
        return found

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """The result dict, or ``{"error": {code, message}}`` as the wire would carry it."""
        types: dict[str, Any] = {
            "open": FsOpenParams,
            "readBlock": FsReadBlockParams,
            "writeBlock": FsWriteBlockParams,
            "close": FsCloseParams,
        }
        try:
            p = types[method](**params)
            name = "closeHandle" if method == "close" else method
            return dict(await getattr(self.table, name)(p))
        except RpcError as err:
            return {"error": {"code": err.code, "message": err.message}}

    async def test_readBlocksAndEof(self) -> None:
        self.assertEqual(
            await self.call("open", handleId="h1", path=self.small), {"handleId": "h1"}
        )
        cases = [
            ((0, 5), {"chunk": b64(b"hello"), "eof": False}),
            ((5, 6), {"chunk": b64(b" world"), "eof": False}),  # exactly the rest: not eof
            ((5, 7), {"chunk": b64(b" world"), "eof": True}),
            ((11, 7), {"chunk": "", "eof": True}),
            ((100, 7), {"chunk": "", "eof": True}),
            ((0, 1048576), {"chunk": b64(b"hello world"), "eof": True}),
        ]
        for (offset, length), expected in cases:
            got = await self.call("readBlock", handleId="h1", offset=offset, len=length)
            self.assertEqual(got, expected, (offset, length))

    async def test_lengthLimitsComeFirst(self) -> None:
        message = "file read block length must be between 1 and 1048576"
        await self.call("open", handleId="h", path=self.small)
        for length in (0, 1048577, 8388608):
            self.assertEqual(
                await self.call("readBlock", handleId="h", offset=0, len=length),
                {"error": {"code": -32600, "message": message}},
            )
        # before the handle lookup
        self.assertEqual(
            await self.call("readBlock", handleId="nope", offset=0, len=0),
            {"error": {"code": -32600, "message": message}},
        )

    async def test_idsDuplicatesAndTheLimit(self) -> None:
        tooLong = {"code": -32600, "message": "file handle ID must not exceed 32 bytes"}
        self.assertEqual(
            await self.call("open", handleId="x" * 32, path=self.small), {"handleId": "x" * 32}
        )
        self.assertEqual(
            await self.call("open", handleId="x" * 33, path=self.small), {"error": tooLong}
        )
        self.assertEqual(
            await self.call("open", handleId="é" * 17, path=self.small), {"error": tooLong}
        )
        self.assertEqual(await self.call("open", handleId="", path=self.small), {"handleId": ""})
        self.assertEqual(
            await self.call("open", handleId="", path=self.path("nope")),
            {"error": {"code": -32600, "message": "file handle `` already exists"}},
        )
        for i in range(126):
            self.assertEqual(
                await self.call("open", handleId=f"n{i}", path=self.small), {"handleId": f"n{i}"}
            )
        limit = {"code": -32600, "message": "at most 128 file handles may be open per connection"}
        # the limit is checked before the path: even a missing file gets it
        self.assertEqual(
            await self.call("open", handleId="zz", path=self.path("nope")), {"error": limit}
        )
        # a duplicate id is reported before the limit
        self.assertEqual(
            await self.call("open", handleId="n0", path=self.small),
            {"error": {"code": -32600, "message": "file handle `n0` already exists"}},
        )
        self.assertEqual(await self.call("close", handleId="n0"), {})
        self.assertEqual(
            await self.call("open", handleId="zz", path=self.small), {"handleId": "zz"}
        )
        self.assertEqual(await self.call("open", handleId="zz2", path=self.small), {"error": limit})
        for method, extra in (("readBlock", {"offset": 0, "len": 1}), ("close", {})):
            self.assertEqual(
                await self.call(method, handleId="x" * 33, **extra), {"error": tooLong}
            )

    async def test_openErrors(self) -> None:
        os.mkdir(self.path("sub"))
        os.mkfifo(self.path("fifo"))
        os.symlink("nowhere", self.path("dangling"))
        os.symlink("loop", self.path("loop"))
        os.symlink("sub", self.path("dirlink"))
        os.symlink("small", self.path("link"))

        def notAFile(path: str) -> dict[str, Any]:
            return {"error": {"code": -32600, "message": f"path `{path}` is not a file"}}

        cases = [
            ("nope", "read", {"error": NOENT}),
            ("dangling", "read", {"error": NOENT}),
            ("sub", "read", notAFile(self.path("sub"))),
            ("dirlink", "read", notAFile(self.path("dirlink"))),
            ("fifo", "read", notAFile(self.path("fifo"))),  # and it does not block
            (
                "loop",
                "read",
                {"error": {"code": -32603, "message": "Symbolic link loop (os error 40)"}},
            ),
            (
                "small/x",
                "read",
                {"error": {"code": -32603, "message": "Not a directory (os error 20)"}},
            ),
            (
                "sub",
                "replace",
                {"error": {"code": -32603, "message": "Is a directory (os error 21)"}},
            ),
            (
                "fifo",
                "replace",
                {"error": {"code": -32603, "message": "No such device or address (os error 6)"}},
            ),
            ("nodir/x", "replace", {"error": NOENT}),
            ("link", "read", {"handleId": "link-read"}),
        ]
        for name, mode, expected in cases:
            handleId = "link-read" if name == "link" else "h"
            got = await self.call("open", handleId=handleId, path=self.path(name), mode=mode)
            self.assertEqual(got, expected, (name, mode))
        self.assertEqual(
            await self.call("open", handleId="dn", path="/dev/null", mode="replace"),
            notAFile("/dev/null"),
        )
        self.assertEqual(len(self.table), 1)  # failed opens hold no slot

    async def test_replaceTruncatesAtOpenAndWritesPositionally(self) -> None:
        target = self.path("existing")
        with open(target, "wb") as f:
            f.write(b"original content")
        self.assertEqual(
            await self.call("open", handleId="w", path=target, mode="replace"), {"handleId": "w"}
        )
        with open(target, "rb") as f:
            self.assertEqual(f.read(), b"")
        self.assertEqual(
            await self.call("writeBlock", handleId="w", offset=0, chunk=b64(b"hello")), {}
        )
        self.assertEqual(
            await self.call("writeBlock", handleId="w", offset=10, chunk=b64(b"hello")), {}
        )
        self.assertEqual(await self.call("close", handleId="w"), {})
        with open(target, "rb") as f:
            self.assertEqual(f.read(), b"hello\0\0\0\0\0hello")
        # a new file: 0666 & ~umask; a symlink is written through
        await self.call("open", handleId="n", path=self.path("new"), mode="replace")
        umask = os.umask(0)
        os.umask(umask)
        self.assertEqual(os.stat(self.path("new")).st_mode & 0o777, 0o666 & ~umask)
        os.symlink("small", self.path("link"))
        await self.call("open", handleId="l", path=self.path("link"), mode="replace")
        await self.call("writeBlock", handleId="l", offset=0, chunk=b64(b"via link"))
        self.assertTrue(os.path.islink(self.path("link")))
        with open(self.small, "rb") as f:
            self.assertEqual(f.read(), b"via link")

    async def test_writeLimitsAndErrorsKeepTheHandle(self) -> None:
        await self.call("open", handleId="w", path=self.path("w"), mode="replace")
        tooBig = {
            "code": -32600,
            "message": "file write block length must be between 1 and 1048576",
        }
        rangeError = {
            "code": -32600,
            "message": "file write range exceeds the signed 64-bit file offset limit",
        }
        self.assertEqual(
            await self.call("writeBlock", handleId="w", offset=0, chunk=b64(b"")), {"error": tooBig}
        )
        self.assertEqual(
            await self.call("writeBlock", handleId="w", offset=0, chunk=b64(b"x" * 1048577)),
            {"error": tooBig},
        )
        self.assertEqual(
            await self.call("writeBlock", handleId="w", offset=0, chunk=b64(b"x" * 1048576)), {}
        )
        self.assertEqual(
            await self.call("writeBlock", handleId="w", offset=2**63 - 2, chunk=b64(b"hi")),
            {"error": rangeError},
        )
        self.assertEqual(
            await self.call("writeBlock", handleId="nope", offset=2**63, chunk=b64(b"hi")),
            {"error": rangeError},
        )
        self.assertEqual(
            await self.call("writeBlock", handleId="w", offset=2**63 - 3, chunk=b64(b"hi")),
            {"error": {"code": -32603, "message": "File too large (os error 27)"}},
        )
        self.assertEqual(
            await self.call("writeBlock", handleId="w", offset=0, chunk=b64(b"hi")), {}
        )
        # writing a read handle: EBADF, and the handle still reads
        await self.call("open", handleId="r", path=self.small)
        self.assertEqual(
            await self.call("writeBlock", handleId="r", offset=0, chunk=b64(b"hi")),
            {"error": EBADF},
        )
        self.assertEqual(
            await self.call("readBlock", handleId="r", offset=0, len=3),
            {"chunk": b64(b"hel"), "eof": False},
        )

    async def test_readResultCarriesItsJson(self) -> None:
        await self.call("open", handleId="h", path=self.small)
        for offset, length in ((0, 5), (5, 100)):
            p = FsReadBlockParams("h", offset, length)
            result = await self.table.readBlock(p)
            self.assertIsInstance(result, EncodedParams)
            self.assertEqual(
                encodeResult(7, result), encodeResult(7, dict(result))
            )  # byte for byte what the generic encoder writes

    async def test_writeErrorsInTheReferenceOrder(self) -> None:
        # an invalid chunk is reported before the id, the length and the handle
        self.assertEqual(
            await self.call("writeBlock", handleId="x" * 33, offset=2**63, chunk="!!"),
            {"error": {"code": -32602, "message": "Invalid symbol 33, offset 0."}},
        )
        self.assertEqual(
            await self.call("writeBlock", handleId="x" * 33, offset=0, chunk=""),
            {"error": {"code": -32600, "message": "file handle ID must not exceed 32 bytes"}},
        )
        self.assertEqual(
            await self.call("writeBlock", handleId="nope", offset=0, chunk=""),
            {
                "error": {
                    "code": -32600,
                    "message": "file write block length must be between 1 and 1048576",
                }
            },
        )
        self.assertEqual(
            await self.call("writeBlock", handleId="nope", offset=0, chunk="aGk="),
            {"error": {"code": -32004, "message": "unknown file handle `nope`"}},
        )

    async def test_readErrorsDropTheHandle(self) -> None:
        await self.call("open", handleId="w", path=self.path("w"), mode="replace")
        self.assertEqual(
            await self.call("readBlock", handleId="w", offset=0, len=3), {"error": EBADF}
        )
        unknownW = {"code": -32004, "message": "unknown file handle `w`"}
        self.assertEqual(
            await self.call("writeBlock", handleId="w", offset=0, chunk=b64(b"hi")),
            {"error": unknownW},
        )
        einval = {"code": -32600, "message": "Invalid argument (os error 22)"}
        for offset, length in ((2**63, 7), (2**63 - 1, 1), (2**63 - 2, 3)):
            await self.call("open", handleId="r", path=self.small)
            self.assertEqual(
                await self.call("readBlock", handleId="r", offset=offset, len=length),
                {"error": einval},
            )
            self.assertEqual(
                await self.call("readBlock", handleId="r", offset=0, len=3),
                {"error": {"code": -32004, "message": "unknown file handle `r`"}},
            )

    async def test_closeIsIdempotentAndClosesTheDescriptor(self) -> None:
        await self.call("open", handleId="h", path=self.small)
        opened = self.descriptorsOf(self.small)
        self.assertEqual(len(opened), 1)
        self.assertEqual(await self.call("close", handleId="h"), {})
        self.assertEqual(await self.call("close", handleId="h"), {})
        self.assertEqual(await self.call("close", handleId="never"), {})
        self.assertEqual(
            await self.call("readBlock", handleId="h", offset=0, len=3),
            {"error": {"code": -32004, "message": "unknown file handle `h`"}},
        )
        # the descriptor is closed on the pool, soon after the reply
        for _ in range(200):
            if not self.descriptorsOf(self.small):
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(self.descriptorsOf(self.small), set())

    def test_providesIConnectionResource(self) -> None:
        verifyObject(IConnectionResource, self.table)

    async def test_closeAllEndsEveryHandle(self) -> None:
        for i in range(5):
            await self.call("open", handleId=f"h{i}", path=self.small)
        self.table.closeAll()
        self.assertEqual(len(self.table), 0)

    async def test_bigFileStreamsInBlocks(self) -> None:
        data = os.urandom(3_000_000)
        with open(self.path("big"), "wb") as f:
            f.write(data)
        await self.call("open", handleId="big", path=self.path("big"))
        await self.call("open", handleId="copy", path=self.path("copy"), mode="replace")
        offset = 0
        while True:
            got = await self.call("readBlock", handleId="big", offset=offset, len=1 << 20)
            chunk = base64.b64decode(got["chunk"])
            if chunk:
                await self.call("writeBlock", handleId="copy", offset=offset, chunk=b64(chunk))
            offset += len(chunk)
            if got["eof"]:
                break
        await self.call("close", handleId="copy")
        with open(self.path("copy"), "rb") as f:
            self.assertEqual(f.read(), data)
