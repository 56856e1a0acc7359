"""fs/remove and fs/copy against real trees: exact results and errors, as probed on Codex CLI
0.131.0.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import Any

from tests.support.filesystem import (
    COPY_INTO_ITSELF,
    COPY_NEEDS_RECURSIVE,
    COPY_SPECIAL,
    EXIST,
    ISDIR,
    NOENT,
    NOTDIR,
    NOTEMPTY,
    NUL,
    FsTestCase,
)
from twisted_exec.executor.resources import fs_tree


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
