"""fs/createDirectory, fs/getMetadata and fs/readDirectory against real files: exact results and
errors, as probed on Codex CLI 0.131.0.
"""

from __future__ import annotations

import os

from tests.support.filesystem import EXIST, LOOP, NOENT, NOTDIR, FsTestCase


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
