"""fs/* against real files: exact results and errors, as probed on Codex CLI 0.131.0.

Every expected dict and message below was observed on the reference binary with the same file
layout (the probe scripts sent the same calls over its local websocket).
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import threading
from collections.abc import Callable
from typing import Any, cast

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorThreads
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import SynchronousTestCase, TestCase

from twisted_exec.compat import params
from twisted_exec.compat.base64strict import encodeBase64
from twisted_exec.compat.fileuri import normalizePath
from twisted_exec.compat.oserror import fromOSError, osErrorMessage
from twisted_exec.executor.resources import fs_tree
from twisted_exec.executor.resources.filesystem import MAX_READ_FILE_BYTES, FileSystem
from twisted_exec.wire.errors import RpcError

NOENT = {"code": -32004, "message": "No such file or directory (os error 2)"}
ISDIR = {"code": -32603, "message": "Is a directory (os error 21)"}
NOTDIR = {"code": -32603, "message": "Not a directory (os error 20)"}
EXIST = {"code": -32603, "message": "File exists (os error 17)"}
NOTEMPTY = {"code": -32603, "message": "Directory not empty (os error 39)"}
LOOP = {"code": -32603, "message": "Symbolic link loop (os error 40)"}
BAD_BASE64 = "fs/writeFile requires valid base64 dataBase64: "
NUL = {"code": -32600, "message": "file name contained an unexpected NUL byte"}
COPY_NEEDS_RECURSIVE = {
    "code": -32600,
    "message": "fs/copy requires recursive: true when sourcePath is a directory",
}
COPY_INTO_ITSELF = {
    "code": -32600,
    "message": "fs/copy cannot copy a directory to itself or one of its descendants",
}
COPY_SPECIAL = {
    "code": -32600,
    "message": "fs/copy only supports regular files, directories, and symlinks",
}

REACTOR = cast(IReactorThreads, reactor)

PARAMS: dict[str, Any] = {
    "readFile": params.FsReadFileParams,
    "writeFile": params.FsWriteFileParams,
    "createDirectory": params.FsCreateDirectoryParams,
    "getMetadata": params.FsGetMetadataParams,
    "readDirectory": params.FsReadDirectoryParams,
    "remove": params.FsRemoveParams,
    "copy": params.FsCopyParams,
}


class RecordingThreadPool(ThreadPool):
    """A real pool that remembers which threads ran our work."""

    def __init__(self) -> None:
        super().__init__(minthreads=1, maxthreads=2, name="fs-test")
        self.workerThreads: list[threading.Thread] = []

    def callInThreadWithCallback(self, onResult: Any, func: Any, *args: Any, **kw: Any) -> None:
        def recorded(*a: Any, **k: Any) -> Any:
            self.workerThreads.append(threading.current_thread())
            return func(*a, **k)

        super().callInThreadWithCallback(onResult, recorded, *args, **kw)


class FsTestCase(TestCase):
    """Runs each call through a FileSystem on a private thread pool, in a fresh directory."""

    maxReadBytes: int | None = MAX_READ_FILE_BYTES

    def setUp(self) -> None:
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(self.root)
        self.pool = RecordingThreadPool()
        self.pool.start()
        self.addCleanup(self.pool.stop)
        self.fs = FileSystem(REACTOR, self.pool, maxReadBytes=self.maxReadBytes)

    def path(self, *names: str) -> str:
        return os.path.join(self.root, *names)

    def make(self, name: str, content: bytes = b"") -> str:
        path = self.path(name)
        with open(path, "wb") as f:
            f.write(content)
        return path

    async def call(self, method: str, **raw: Any) -> dict[str, Any]:
        """The reply the processor would send: ``{"result": ...}`` or ``{"error": ...}``."""
        decoded: Any = params.parse(PARAMS[method], raw)
        d: Deferred[dict[str, Any]] = getattr(self.fs, method)(decoded)
        d.addTimeout(30, reactor)
        try:
            return {"result": await d}
        except RpcError as e:
            return {"error": {"code": e.code, "message": e.message}}

    async def ok(self, method: str, **raw: Any) -> dict[str, Any]:
        reply = await self.call(method, **raw)
        self.assertIn("result", reply, reply)
        return reply["result"]  # type: ignore[no-any-return]

    async def err(self, method: str, **raw: Any) -> dict[str, Any]:
        reply = await self.call(method, **raw)
        self.assertIn("error", reply, reply)
        return reply["error"]  # type: ignore[no-any-return]


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


class CreateDirectoryTests(FsTestCase):
    async def test_recursiveByDefault(self) -> None:
        path = self.path("a", "b", "c")
        self.assertEqual(await self.ok("createDirectory", path=path), {})
        self.assertTrue(os.path.isdir(path))
        self.assertEqual(await self.ok("createDirectory", path=path, recursive=None), {})

    async def test_existingDirectoryNonRecursive(self) -> None:
        self.assertEqual(await self.err("createDirectory", path=self.root, recursive=False), EXIST)

    async def test_nonRecursive(self) -> None:
        self.assertEqual(await self.ok("createDirectory", path=self.path("d"), recursive=False), {})
        self.assertTrue(os.path.isdir(self.path("d")))

    async def test_missingParentNonRecursive(self) -> None:
        path = self.path("m", "n")
        self.assertEqual(await self.err("createDirectory", path=path, recursive=False), NOENT)

    async def test_fileExists(self) -> None:
        path = self.make("f")
        self.assertEqual(await self.err("createDirectory", path=path), EXIST)
        self.assertEqual(await self.err("createDirectory", path=path, recursive=False), EXIST)

    async def test_underAFile(self) -> None:
        self.make("f")
        self.assertEqual(await self.err("createDirectory", path=self.path("f", "x", "y")), NOTDIR)
        path = self.path("f", "x")
        self.assertEqual(await self.err("createDirectory", path=path, recursive=False), NOTDIR)

    async def test_symlinkToDirectory(self) -> None:
        os.mkdir(self.path("d"))
        os.symlink("d", self.path("link"))
        self.assertEqual(await self.ok("createDirectory", path=self.path("link")), {})
        link = self.path("link")
        self.assertEqual(await self.err("createDirectory", path=link, recursive=False), EXIST)
        self.assertEqual(await self.ok("createDirectory", path=self.path("link", "new", "x")), {})
        self.assertTrue(os.path.isdir(self.path("d", "new", "x")))

    async def test_danglingSymlink(self) -> None:
        os.symlink("nope", self.path("dangling"))
        self.assertEqual(await self.err("createDirectory", path=self.path("dangling")), EXIST)

    async def test_root(self) -> None:
        self.assertEqual(await self.ok("createDirectory", path="/"), {})
        self.assertEqual(await self.err("createDirectory", path="/", recursive=False), EXIST)

    async def test_procRefusesNewDirectories(self) -> None:
        self.assertEqual(await self.err("createDirectory", path="/proc/x/y"), NOENT)


class GetMetadataTests(FsTestCase):
    async def test_fileMillisecondsTruncated(self) -> None:
        path = self.make("f", b"x")
        os.utime(path, ns=(0, 1_700_000_000_999_900_000))
        self.assertEqual(
            await self.ok("getMetadata", path=path),
            {
                "isDirectory": False,
                "isFile": True,
                "isSymlink": False,
                "createdAtMs": 0,
                "modifiedAtMs": 1_700_000_000_999,
            },
        )

    async def test_beforeEpochIsZero(self) -> None:
        path = self.make("old")
        for mtime in (-5_500_000_000, -500_000_000, 500_000):
            os.utime(path, ns=(0, mtime))
            result = await self.ok("getMetadata", path=path)
            self.assertEqual(result["modifiedAtMs"], 0)

    async def test_directory(self) -> None:
        os.mkdir(self.path("d"))
        os.utime(self.path("d"), ns=(0, 1_600_000_000_123_000_000))
        self.assertEqual(
            await self.ok("getMetadata", path=self.path("d")),
            {
                "isDirectory": True,
                "isFile": False,
                "isSymlink": False,
                "createdAtMs": 0,
                "modifiedAtMs": 1_600_000_000_123,
            },
        )

    async def test_symlinkFollowedButFlagged(self) -> None:
        """The time is the target's, ``isSymlink`` the link's."""
        os.mkdir(self.path("d"))
        os.utime(self.path("d"), ns=(0, 1_600_000_000_123_000_000))
        os.symlink("d", self.path("link"))
        os.utime(self.path("link"), ns=(0, 1_500_000_000_500_000_000), follow_symlinks=False)
        self.assertEqual(
            await self.ok("getMetadata", path=self.path("link")),
            {
                "isDirectory": True,
                "isFile": False,
                "isSymlink": True,
                "createdAtMs": 0,
                "modifiedAtMs": 1_600_000_000_123,
            },
        )

    async def test_procSelf(self) -> None:
        result = await self.ok("getMetadata", path="/proc/self")
        self.assertEqual(
            (result["isDirectory"], result["isFile"], result["isSymlink"]), (True, False, True)
        )

    async def test_specialFile(self) -> None:
        os.mkfifo(self.path("fifo"))
        result = await self.ok("getMetadata", path=self.path("fifo"))
        self.assertEqual(
            (result["isDirectory"], result["isFile"], result["isSymlink"]), (False, False, False)
        )

    async def test_danglingSymlink(self) -> None:
        os.symlink("nope", self.path("dangling"))
        self.assertEqual(await self.err("getMetadata", path=self.path("dangling")), NOENT)

    async def test_loop(self) -> None:
        os.symlink("loop", self.path("loop"))
        self.assertEqual(await self.err("getMetadata", path=self.path("loop")), LOOP)

    async def test_missing(self) -> None:
        self.assertEqual(await self.err("getMetadata", path=self.path("nope")), NOENT)

    async def test_nameTooLong(self) -> None:
        self.assertEqual(
            await self.err("getMetadata", path=self.path("a" * 300)),
            {"code": -32603, "message": "Filename too long (os error 36)"},
        )

    async def test_dotDotThroughDanglingLink(self) -> None:
        self.make("f")
        os.symlink("nope", self.path("dangling"))
        result = await self.ok("getMetadata", path=self.path("dangling") + "/../f")
        self.assertEqual(result["isFile"], True)


class ReadDirectoryTests(FsTestCase):
    async def test_entries(self) -> None:
        self.make("file")
        os.mkdir(self.path("sub"))
        os.mkfifo(self.path("fifo"))
        os.symlink("file", self.path("linkToFile"))
        os.symlink("sub", self.path("linkToDir"))
        os.symlink("nope", self.path("dangling"))
        os.symlink("loop", self.path("loop"))
        with open(os.path.join(os.fsencode(self.root), b"bad\xffname"), "wb"):
            pass
        result = await self.ok("readDirectory", path=self.root)
        expected = {
            "file": (False, True),
            "sub": (True, False),
            "fifo": (False, False),
            "linkToFile": (False, True),
            "linkToDir": (True, False),
            "bad\ufffdname": (False, True),
        }
        self.assertEqual(
            sorted(result["entries"], key=lambda e: e["fileName"]),
            [
                {"fileName": name, "isDirectory": isDir, "isFile": isFile}
                for name, (isDir, isFile) in sorted(expected.items())
            ],
        )
        # Directory order, not sorted: the order readdir gives.
        onDisk = [n.decode("utf-8", "replace") for n in os.listdir(os.fsencode(self.root))]
        listed = [e["fileName"] for e in result["entries"]]
        self.assertEqual(listed, [n for n in onDisk if n in expected])

    async def test_empty(self) -> None:
        self.assertEqual(await self.ok("readDirectory", path=self.root), {"entries": []})

    async def test_throughSymlink(self) -> None:
        os.mkdir(self.path("d"))
        self.make(os.path.join("d", "x"))
        os.symlink("d", self.path("link"))
        self.assertEqual(
            await self.ok("readDirectory", path=self.path("link")),
            {"entries": [{"fileName": "x", "isDirectory": False, "isFile": True}]},
        )

    async def test_file(self) -> None:
        self.assertEqual(await self.err("readDirectory", path=self.make("f")), NOTDIR)

    async def test_missing(self) -> None:
        self.assertEqual(await self.err("readDirectory", path=self.path("nope")), NOENT)


class RemoveTests(FsTestCase):
    async def test_defaultsRemoveNonEmptyDirectory(self) -> None:
        os.makedirs(self.path("d", "sub"))
        self.make(os.path.join("d", "sub", "f"))
        os.symlink("/", self.path("d", "rootLink"))
        self.assertEqual(await self.ok("remove", path=self.path("d")), {})
        self.assertFalse(os.path.lexists(self.path("d")))

    async def test_missingIsFineByDefault(self) -> None:
        self.assertEqual(await self.ok("remove", path=self.path("nope")), {})

    async def test_missingWithoutForce(self) -> None:
        self.assertEqual(await self.err("remove", path=self.path("nope"), force=False), NOENT)
        path = self.path("nope", "x")
        self.assertEqual(await self.err("remove", path=path, force=False), NOENT)

    async def test_nonEmptyWithoutRecursive(self) -> None:
        os.mkdir(self.path("d"))
        self.make(os.path.join("d", "f"))
        self.assertEqual(await self.err("remove", path=self.path("d"), recursive=False), NOTEMPTY)
        self.assertTrue(os.path.exists(self.path("d", "f")))

    async def test_emptyWithoutRecursive(self) -> None:
        os.mkdir(self.path("d"))
        self.assertEqual(await self.ok("remove", path=self.path("d"), recursive=False), {})
        self.assertFalse(os.path.exists(self.path("d")))

    async def test_fileWithoutRecursiveOrForce(self) -> None:
        path = self.make("f")
        self.assertEqual(await self.ok("remove", path=path, recursive=False, force=False), {})
        self.assertFalse(os.path.exists(path))

    async def test_symlinkToDirectoryRemovesOnlyTheLink(self) -> None:
        os.mkdir(self.path("d"))
        self.make(os.path.join("d", "f"))
        os.symlink("d", self.path("link"))
        self.assertEqual(await self.ok("remove", path=self.path("link")), {})
        self.assertFalse(os.path.lexists(self.path("link")))
        self.assertTrue(os.path.exists(self.path("d", "f")))

    async def test_danglingSymlink(self) -> None:
        os.symlink("nope", self.path("dangling"))
        self.assertEqual(await self.ok("remove", path=self.path("dangling"), force=False), {})
        self.assertFalse(os.path.lexists(self.path("dangling")))

    async def test_underAFileEvenWithForce(self) -> None:
        self.make("f")
        self.assertEqual(await self.err("remove", path=self.path("f", "x")), NOTDIR)

    async def test_permissionErrorIsInvalidRequest(self) -> None:
        """EPERM (and EACCES) are Rust's ``PermissionDenied``: -32600, not -32603."""
        self.assertEqual(
            await self.err("remove", path="/proc/self/status"),
            {"code": -32600, "message": "Operation not permitted (os error 1)"},
        )

    async def test_nulWithForce(self) -> None:
        self.assertEqual(await self.err("remove", path=self.path("x\x00")), NUL)


class CopyTests(FsTestCase):
    async def copyOk(self, source: str, destination: str, recursive: bool = False) -> None:
        result = await self.ok(
            "copy", sourcePath=source, destinationPath=destination, recursive=recursive
        )
        self.assertEqual(result, {})

    async def copyErr(self, source: str, destination: str, recursive: bool = False) -> Any:
        return await self.err(
            "copy", sourcePath=source, destinationPath=destination, recursive=recursive
        )

    def read(self, *names: str) -> bytes:
        with open(self.path(*names), "rb") as f:
            return f.read()

    async def test_fileKeepsPermissionBits(self) -> None:
        path = self.make("f", b"data")
        os.chmod(path, 0o4751)
        await self.copyOk(path, self.path("g"))
        self.assertEqual(self.read("g"), b"data")
        self.assertEqual(stat.S_IMODE(os.stat(self.path("g")).st_mode), 0o4751)

    async def test_overwritesExistingFileInPlace(self) -> None:
        self.make("f", b"short")
        os.chmod(self.path("f"), 0o640)
        self.make("g", b"a much longer existing content")
        inode = os.stat(self.path("g")).st_ino
        await self.copyOk(self.path("f"), self.path("g"), recursive=True)
        self.assertEqual(self.read("g"), b"short")
        after = os.stat(self.path("g"))
        self.assertEqual((after.st_ino, stat.S_IMODE(after.st_mode)), (inode, 0o640))

    async def test_ontoItselfTruncates(self) -> None:
        """The reference's std::fs::copy opens the destination with O_TRUNC first."""
        path = self.make("f", b"data")
        await self.copyOk(path, path)
        self.assertEqual(self.read("f"), b"")

    async def test_fileOntoDirectory(self) -> None:
        os.mkdir(self.path("d"))
        self.assertEqual(await self.copyErr(self.make("f"), self.path("d")), ISDIR)

    async def test_missingParent(self) -> None:
        self.assertEqual(await self.copyErr(self.make("f"), self.path("no", "x")), NOENT)

    async def test_missingSource(self) -> None:
        self.assertEqual(await self.copyErr(self.path("nope"), self.path("x")), NOENT)

    async def test_fileThroughDestinationSymlink(self) -> None:
        self.make("f", b"new")
        os.symlink("target", self.path("dangling"))
        await self.copyOk(self.path("f"), self.path("dangling"))
        self.assertEqual(self.read("target"), b"new")

    async def test_directoryNeedsRecursive(self) -> None:
        os.mkdir(self.path("d"))
        self.assertEqual(await self.copyErr(self.path("d"), self.path("e")), COPY_NEEDS_RECURSIVE)

    async def test_directoryIntoItselfOrDescendant(self) -> None:
        os.mkdir(self.path("d"))
        os.symlink("d", self.path("link"))
        for destination in (
            self.path("d"),
            self.path("d", "new", "deeper"),
            self.path("x") + "/../d/y",
            self.path("link", "y"),
            self.path("d") + "/.",
        ):
            error = await self.copyErr(self.path("d"), destination, recursive=True)
            self.assertEqual(error, COPY_INTO_ITSELF, destination)
        error = await self.copyErr("/", self.path("x"), recursive=True)
        self.assertEqual(error, COPY_INTO_ITSELF)

    async def test_siblingWithSharedPrefixIsNotADescendant(self) -> None:
        os.mkdir(self.path("src"))
        await self.copyOk(self.path("src"), self.path("srcx"), recursive=True)
        self.assertTrue(os.path.isdir(self.path("srcx")))

    async def test_tree(self) -> None:
        """Files keep modes, subdirectories do not; links stay links; special files are skipped."""
        os.makedirs(self.path("src", "sub"))
        self.make(os.path.join("src", "a"), b"a")
        os.chmod(self.path("src", "a"), 0o751)
        self.make(os.path.join("src", "sub", "b"), b"b")
        os.chmod(self.path("src", "sub"), 0o700)
        os.symlink("a", self.path("src", "la"))
        os.symlink("nowhere", self.path("src", "dangling"))
        os.mkfifo(self.path("src", "fifo"))
        await self.copyOk(self.path("src"), self.path("dst"), recursive=True)
        self.assertEqual(sorted(os.listdir(self.path("dst"))), ["a", "dangling", "la", "sub"])
        self.assertEqual(self.read("dst", "a"), b"a")
        self.assertEqual(stat.S_IMODE(os.stat(self.path("dst", "a")).st_mode), 0o751)
        self.assertEqual(self.read("dst", "sub", "b"), b"b")
        umask = os.umask(0)
        os.umask(umask)
        self.assertEqual(stat.S_IMODE(os.stat(self.path("dst", "sub")).st_mode), 0o777 & ~umask)
        self.assertEqual(os.readlink(self.path("dst", "la")), "a")
        self.assertEqual(os.readlink(self.path("dst", "dangling")), "nowhere")

    async def test_treeMergesIntoExistingDirectory(self) -> None:
        os.makedirs(self.path("src", "sub"))
        self.make(os.path.join("src", "a"), b"new")
        self.make(os.path.join("src", "sub", "b"), b"b")
        os.makedirs(self.path("dst", "keep"))
        self.make(os.path.join("dst", "a"), b"old")
        await self.copyOk(self.path("src"), self.path("dst"), recursive=True)
        self.assertEqual(sorted(os.listdir(self.path("dst"))), ["a", "keep", "sub"])
        self.assertEqual(self.read("dst", "a"), b"new")
        self.assertEqual(self.read("dst", "sub", "b"), b"b")

    async def test_treeOntoAFile(self) -> None:
        os.mkdir(self.path("src"))
        self.assertEqual(await self.copyErr(self.path("src"), self.make("f"), True), EXIST)

    async def test_deepTree(self) -> None:
        """Copy and remove a tree deeper than Python's recursion limit.

        The trees are removed by fs/remove itself: left behind, they would break the next run's
        cleanup of the trial temp directory (shutil.rmtree recurses).
        """
        depth = sys.getrecursionlimit() + 50
        current = self.path("src")
        os.mkdir(current)
        self.addCleanup(_removeIfPresent, self.path("src"))
        self.addCleanup(_removeIfPresent, self.path("dst"))
        for _ in range(depth):
            current = os.path.join(current, "d")
            os.mkdir(current)
        self.make(os.path.join(current, "leaf"), b"leaf")
        await self.copyOk(self.path("src"), self.path("dst"), recursive=True)
        self.assertEqual(self.read("dst", *["d"] * depth, "leaf"), b"leaf")
        for name in ("src", "dst"):
            self.assertEqual(await self.ok("remove", path=self.path(name)), {})
            self.assertFalse(os.path.lexists(self.path(name)))

    async def test_symlinkCopiedAsSymlink(self) -> None:
        self.make("f")
        os.mkdir(self.path("d"))
        os.symlink("f", self.path("lf"))
        os.symlink("d", self.path("ld"))
        os.symlink("nowhere", self.path("dangling"))
        await self.copyOk(self.path("lf"), self.path("lf2"))
        await self.copyOk(self.path("ld"), self.path("ld2"))
        await self.copyOk(self.path("dangling"), self.path("dangling2"))
        for name, target in (("lf2", "f"), ("ld2", "d"), ("dangling2", "nowhere")):
            self.assertEqual(os.readlink(self.path(name)), target)

    async def test_symlinkOntoExistingFile(self) -> None:
        os.symlink("x", self.path("link"))
        self.assertEqual(await self.copyErr(self.path("link"), self.make("f")), EXIST)

    async def test_specialFiles(self) -> None:
        os.mkfifo(self.path("fifo"))
        self.assertEqual(await self.copyErr(self.path("fifo"), self.path("x"), True), COPY_SPECIAL)
        self.assertEqual(await self.copyErr("/dev/null", self.path("x")), COPY_SPECIAL)

    async def test_nulInDestination(self) -> None:
        os.mkdir(self.path("d"))
        self.assertEqual(await self.copyErr(self.make("f"), self.path("x\x00")), NUL)
        self.assertEqual(await self.copyErr(self.path("d"), self.path("x\x00"), True), NUL)
        self.assertEqual(await self.copyErr(self.path("missing"), self.path("x\x00")), NOENT)


def _removeIfPresent(path: str) -> None:
    if os.path.lexists(path):
        fs_tree._removeTree(path)


class NotRootTests(FsTestCase):
    """EACCES needs an unprivileged user; root bypasses permission bits."""

    def setUp(self) -> None:
        if os.geteuid() == 0:
            raise self.skipTest("running as root: permission bits are not enforced")
        super().setUp()

    async def test_permissionDenied(self) -> None:
        path = self.make("secret", b"x")
        os.chmod(path, 0)
        self.assertEqual(
            await self.err("readFile", path=path),
            {"code": -32600, "message": "Permission denied (os error 13)"},
        )


class ErrorMappingTests(SynchronousTestCase):
    def check(self, code: int, expected: tuple[int, str]) -> None:
        error = fromOSError(OSError(code, os.strerror(code)))
        self.assertEqual((error.code, error.message), expected)

    def test_codesFollowRustErrorKinds(self) -> None:
        self.check(errno.ENOENT, (-32004, "No such file or directory (os error 2)"))
        self.check(errno.EACCES, (-32600, "Permission denied (os error 13)"))
        self.check(errno.EPERM, (-32600, "Operation not permitted (os error 1)"))
        self.check(errno.EINVAL, (-32600, "Invalid argument (os error 22)"))
        self.check(errno.ENOTDIR, (-32603, "Not a directory (os error 20)"))
        self.check(errno.ENAMETOOLONG, (-32603, "Filename too long (os error 36)"))

    def test_muslWording(self) -> None:
        def musl(code: int) -> str:
            return osErrorMessage(OSError(code, "glibc text"))

        """The reference links musl; glibc words these differently."""
        self.assertEqual(
            osErrorMessage(OSError(errno.ELOOP, "")), "Symbolic link loop (os error 40)"
        )
        self.assertEqual(osErrorMessage(OSError(errno.EBUSY, "")), "Resource busy (os error 16)")
        self.assertEqual(musl(errno.EXDEV), "Cross-device link (os error 18)")
        self.assertEqual(musl(errno.EIO), "I/O error (os error 5)")
        self.assertEqual(musl(errno.EDQUOT), "Quota exceeded (os error 122)")
        self.assertEqual(musl(4000), "No error information (os error 4000)")


class NormalizePathTests(SynchronousTestCase):
    def test_cases(self) -> None:
        cases: list[tuple[str, str]] = [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b"),
            ("//a//b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/b/../c", "/a/c"),
            ("/..", "/"),
            ("/../tmp", "/tmp"),
            ("/a/b/../../..", "/"),
        ]
        normalize: Callable[[str], str] = normalizePath
        self.assertEqual([(p, normalize(p)) for p, _ in cases], cases)
