"""fs/readFile and fs/writeFile against real files (and that the calls run off the reactor
thread): exact results and errors, as probed on Codex CLI 0.131.0.
"""

from __future__ import annotations

import os
import stat
import threading

from twisted.internet import task

from tests.support.filesystem import (
    BAD_BASE64,
    ISDIR,
    LOOP,
    NOENT,
    NOTDIR,
    NUL,
    REACTOR,
    FsTestCase,
)
from twisted_exec.compat import params
from twisted_exec.compat.base64strict import encodeBase64
from twisted_exec.executor.resources.filesystem import FileSystem


class ThreadingTests(FsTestCase):
    async def test_runsOnThePool(self) -> None:
        self.make("f", b"x")
        await self.ok("readFile", path=self.path("f"))
        self.assertEqual(len(self.pool.workerThreads), 1)
        self.assertIsNot(self.pool.workerThreads[0], threading.main_thread())

    async def test_defaultPoolIsTheReactors(self) -> None:
        self.make("f", b"x")
        fs = FileSystem(REACTOR)
        result = await fs.readFile(params.FsReadFileParams(path=self.path("f")))
        self.assertEqual(result, {"dataBase64": "eA=="})

    async def test_bigRoundTripKeepsReactorTurning(self) -> None:
        """50 MB through writeFile and readFile; the reactor ticks while the pool works."""
        payload = os.urandom(1 << 20) * 50
        encoded = encodeBase64(payload)
        ticks = []
        loop = task.LoopingCall(lambda: ticks.append(1))
        loop.start(0.001, now=False)
        self.addCleanup(loop.stop)
        self.assertEqual(await self.ok("writeFile", path=self.path("big"), dataBase64=encoded), {})
        afterWrite = len(ticks)
        with open(self.path("big"), "rb") as f:
            self.assertEqual(f.read() == payload, True)
        result = await self.ok("readFile", path=self.path("big"))
        afterRead = len(ticks)
        self.assertEqual(result["dataBase64"] == encoded, True)
        self.assertGreater(afterWrite, 0)
        self.assertGreater(afterRead, afterWrite)


class ReadFileTests(FsTestCase):
    async def test_contents(self) -> None:
        self.make("f", b"hello\n")
        self.assertEqual(await self.ok("readFile", path=self.path("f")), {"dataBase64": "aGVsbG8K"})

    async def test_empty(self) -> None:
        self.make("f")
        self.assertEqual(await self.ok("readFile", path=self.path("f")), {"dataBase64": ""})

    async def test_binary(self) -> None:
        self.make("f", bytes([0, 1, 2, 255]))
        self.assertEqual(await self.ok("readFile", path=self.path("f")), {"dataBase64": "AAEC/w=="})

    async def test_throughSymlink(self) -> None:
        self.make("f", b"x\n")
        os.symlink("f", self.path("link"))
        self.assertEqual(await self.ok("readFile", path=self.path("link")), {"dataBase64": "eAo="})

    async def test_procFileWithZeroSize(self) -> None:
        result = await self.ok("readFile", path="/proc/self/comm")
        self.assertNotEqual(result["dataBase64"], "")

    async def test_directory(self) -> None:
        self.assertEqual(await self.err("readFile", path=self.root), ISDIR)

    async def test_missing(self) -> None:
        self.assertEqual(await self.err("readFile", path=self.path("nope")), NOENT)

    async def test_danglingSymlink(self) -> None:
        os.symlink("nope", self.path("dangling"))
        self.assertEqual(await self.err("readFile", path=self.path("dangling")), NOENT)

    async def test_symlinkLoop(self) -> None:
        os.symlink("loop", self.path("loop"))
        self.assertEqual(await self.err("readFile", path=self.path("loop")), LOOP)

    async def test_throughAFile(self) -> None:
        self.make("f", b"x")
        self.assertEqual(await self.err("readFile", path=self.path("f", "x")), NOTDIR)

    async def test_pathIsNormalisedLexically(self) -> None:
        """A trailing slash and ``file/..`` are resolved before the disk is asked."""
        self.make("f", b"x\n")
        self.assertEqual(
            await self.ok("readFile", path=self.path("f") + "/"), {"dataBase64": "eAo="}
        )
        path = self.path("f") + "/../f"
        self.assertEqual(await self.ok("readFile", path=path), {"dataBase64": "eAo="})

    async def test_nulInPath(self) -> None:
        self.assertEqual(await self.err("readFile", path=self.path("a\x00b")), NUL)

    async def test_defaultLimitIsTheReferences(self) -> None:
        path = self.make("huge")
        os.truncate(path, 512 * 1024 * 1024 + 1)
        self.assertEqual(
            await self.err("readFile", path=path),
            {"code": -32600, "message": "file is too large to read: limit is 536870912 bytes"},
        )


class ReadLimitTests(FsTestCase):
    maxReadBytes = 10

    async def test_atTheLimit(self) -> None:
        self.make("f", b"0123456789")
        self.assertEqual(
            await self.ok("readFile", path=self.path("f")), {"dataBase64": "MDEyMzQ1Njc4OQ=="}
        )

    async def test_overTheLimit(self) -> None:
        self.make("f", b"0123456789A")
        self.assertEqual(
            await self.err("readFile", path=self.path("f")),
            {"code": -32600, "message": "file is too large to read: limit is 10 bytes"},
        )

    async def test_unlimited(self) -> None:
        self.fs = FileSystem(REACTOR, self.pool, maxReadBytes=None)
        self.make("f", b"x" * 100)
        result = await self.ok("readFile", path=self.path("f"))
        self.assertEqual(result, {"dataBase64": encodeBase64(b"x" * 100)})


class WriteFileTests(FsTestCase):
    async def test_newFile(self) -> None:
        self.assertEqual(await self.ok("writeFile", path=self.path("f"), dataBase64="AAEC/w=="), {})
        with open(self.path("f"), "rb") as f:
            self.assertEqual(f.read(), bytes([0, 1, 2, 255]))
        umask = os.umask(0)
        os.umask(umask)
        self.assertEqual(stat.S_IMODE(os.stat(self.path("f")).st_mode), 0o666 & ~umask)

    async def test_emptyData(self) -> None:
        self.make("f", b"old")
        self.assertEqual(await self.ok("writeFile", path=self.path("f"), dataBase64=""), {})
        self.assertEqual(os.path.getsize(self.path("f")), 0)

    async def test_inPlaceKeepsInodeAndMode(self) -> None:
        path = self.make("f", b"a much longer old content")
        os.chmod(path, 0o600)
        before = os.stat(path)
        self.assertEqual(await self.ok("writeFile", path=path, dataBase64="aGk="), {})
        after = os.stat(path)
        self.assertEqual((after.st_ino, stat.S_IMODE(after.st_mode)), (before.st_ino, 0o600))
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"hi")

    async def test_writesThroughSymlink(self) -> None:
        self.make("target", b"old")
        os.symlink("target", self.path("link"))
        self.assertEqual(await self.ok("writeFile", path=self.path("link"), dataBase64="aGk="), {})
        self.assertTrue(os.path.islink(self.path("link")))
        with open(self.path("target"), "rb") as f:
            self.assertEqual(f.read(), b"hi")

    async def test_danglingSymlinkCreatesTarget(self) -> None:
        os.symlink("target", self.path("link"))
        self.assertEqual(await self.ok("writeFile", path=self.path("link"), dataBase64="aGk="), {})
        with open(self.path("target"), "rb") as f:
            self.assertEqual(f.read(), b"hi")

    async def test_missingParent(self) -> None:
        path = self.path("missing", "x")
        self.assertEqual(await self.err("writeFile", path=path, dataBase64=""), NOENT)

    async def test_overDirectory(self) -> None:
        self.assertEqual(await self.err("writeFile", path=self.root, dataBase64=""), ISDIR)

    async def test_parentIsAFile(self) -> None:
        self.make("f")
        path = self.path("f", "x")
        self.assertEqual(await self.err("writeFile", path=path, dataBase64=""), NOTDIR)

    async def test_invalidBase64(self) -> None:
        self.assertEqual(
            await self.err("writeFile", path=self.path("f"), dataBase64="!!"),
            {"code": -32600, "message": BAD_BASE64 + "Invalid symbol 33, offset 0."},
        )
        self.assertFalse(os.path.exists(self.path("f")))

    async def test_base64CheckedBeforePath(self) -> None:
        error = await self.err("writeFile", path=self.path("missing", "x"), dataBase64="aGk")
        self.assertEqual(
            error,
            {
                "code": -32600,
                "message": "fs/writeFile requires valid base64 dataBase64: Invalid padding",
            },
        )

    async def test_base64WithNewline(self) -> None:
        error = await self.err("writeFile", path=self.path("f"), dataBase64="aGVsbG8K\n")
        self.assertEqual(
            error["message"],
            BAD_BASE64 + "Invalid symbol 10, offset 8.",
        )

    async def test_nulInPath(self) -> None:
        self.assertEqual(await self.err("writeFile", path=self.path("x\x00"), dataBase64=""), NUL)
