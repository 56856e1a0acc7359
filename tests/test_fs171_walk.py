"""fs/walk, fs/getMetadata (size, followSymlinks) and fs/canonicalize on real files.

The expected answers were seen on the 0.171 binary with the same layout
(docs/reference-0.171-fs.md).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from twisted.trial.unittest import SynchronousTestCase

from tests.support.fs171 import WALK_OPTIONS
from twisted_exec.compat.fsparams171 import WalkOptions
from twisted_exec.executor.resources.fs_blocking import mapped
from twisted_exec.executor.resources.fs_metadata import canonicalize, getMetadata171
from twisted_exec.executor.resources.fs_walk import walk
from twisted_exec.wire.errors import RpcError


def uri(path: str) -> str:
    return "file://" + quote(path)


def outcome(f: Any, *args: Any) -> Any:
    """``f(*args)`` as the wire would carry it: the result, or ``{"error": ...}``."""
    try:
        return mapped(f)(*args)
    except RpcError as err:
        return {"error": {"code": err.code, "message": err.message}}


def options(**overrides: Any) -> WalkOptions:
    values: dict[str, Any] = dict(WALK_OPTIONS)
    values.update(overrides)
    return WalkOptions(**values)


FULL = [
    "/.hf:f", "/.hid:d", "/a:d", "/e:d", "/f1:f", "/np:d",
    "/.hid/x:d", "/a/b:d", "/a/f2:f", "/e/.g:f", "/np/z:f",
    "/.hid/x/f5:f", "/a/b/c:d", "/a/b/f3:f",
    "/a/b/c/f4:f",
]  # fmt: skip


class WalkTests(SynchronousTestCase):
    def setUp(self) -> None:
        root = os.path.abspath(self.mktemp())
        self.root = root
        for d in ("a/b/c", ".hid/x", "e", "np"):
            os.makedirs(os.path.join(root, d))
        for f in ("f1", "a/f2", "a/b/f3", "a/b/c/f4", ".hid/x/f5", ".hf", "e/.g", "np/z"):
            open(os.path.join(root, f), "w").close()
        os.symlink("a", os.path.join(root, "alink"))
        os.symlink("f1", os.path.join(root, "flink"))
        os.symlink("nowhere", os.path.join(root, "dang"))
        os.symlink(".", os.path.join(root, "a/selfloop"))
        os.mkfifo(os.path.join(root, "fifo"))
        self.outside = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.outside, "o1"))
        open(os.path.join(self.outside, "o1/of"), "w").close()
        os.symlink(self.outside, os.path.join(root, "olink"))

    def walked(self, path: str | None = None, **overrides: Any) -> Any:
        got = outcome(walk, path or self.root, options(**overrides), uri)
        if "error" in got:
            return got
        prefix = uri(self.root)
        entries = [e["path"].removeprefix(prefix) + ":" + e["kind"][0] for e in got["entries"]]
        return entries, got["errors"], got["truncated"]

    def test_breadthFirstSortedSymlinksSkipped(self) -> None:
        self.assertEqual(self.walked(), (FULL, [], False))

    def test_followDirectorySymlinks(self) -> None:
        expected = [
            "/.hf:f", "/.hid:d", "/a:d", "/alink:d", "/e:d", "/f1:f", "/np:d", "/olink:d",
            "/.hid/x:d", "/a/b:d", "/a/f2:f", "/a/selfloop:d", "/e/.g:f", "/np/z:f",
            "/olink/o1:d", "/.hid/x/f5:f", "/a/b/c:d", "/a/b/f3:f", "/olink/o1/of:f",
            "/a/b/c/f4:f",
        ]  # fmt: skip
        self.assertEqual(self.walked(followDirectorySymlinks=True), (expected, [], False))

    def test_pruneHiddenDirectories(self) -> None:
        pruned = [e for e in FULL if not e.startswith("/.hid/")]
        self.assertEqual(self.walked(pruneHiddenDirectories=True), (pruned, [], False))

    def test_depth(self) -> None:
        self.assertEqual(self.walked(maxDepth=0), (FULL[:6], [], False))
        self.assertEqual(self.walked(maxDepth=1), (FULL[:11], [], False))
        self.assertEqual(self.walked(maxDepth=2), (FULL[:14], [], False))
        self.assertEqual(self.walked(maxDepth=3), (FULL, [], False))

    def test_maxDirectoriesTruncatesButListsOn(self) -> None:
        self.assertEqual(self.walked(maxDirectories=1), (FULL[:6], [], True))
        self.assertEqual(self.walked(maxDirectories=2), (FULL[:7], [], True))
        self.assertEqual(self.walked(maxDirectories=3), (FULL[:9], [], True))
        self.assertEqual(self.walked(maxDirectories=10000), (FULL, [], False))

    def test_maxEntriesCountsSkippedSymlinks(self) -> None:
        self.assertEqual(self.walked(maxEntries=1), (FULL[:1], [], True))
        self.assertEqual(self.walked(maxEntries=2), (FULL[:2], [], True))
        # alink (a skipped symlink) is the fourth entry counted
        self.assertEqual(self.walked(maxEntries=5), (FULL[:4], [], True))
        self.assertEqual(self.walked(maxEntries=6), (FULL[:5], [], True))
        self.assertEqual(self.walked(maxEntries=50000), (FULL, [], False))

    def test_limitErrorsBeforeTheRoot(self) -> None:
        zero = {"code": -32600, "message": "filesystem walk limits must be greater than zero"}
        maxima = {
            "code": -32600,
            "message": "filesystem walk limits exceed maximums: "
            "depth=64, directories=10000, entries=50000",
        }
        missing = os.path.join(self.root, "nope")
        self.assertEqual(self.walked(missing, maxDirectories=0), {"error": zero})
        self.assertEqual(self.walked(missing, maxEntries=0), {"error": zero})
        self.assertEqual(self.walked(missing, maxDirectories=0, maxEntries=50001), {"error": zero})
        for overrides in ({"maxDepth": 65}, {"maxDirectories": 10001}, {"maxEntries": 50001}):
            self.assertEqual(self.walked(missing, **overrides), {"error": maxima})
        self.assertEqual(self.walked(maxDepth=64)[2], False)

    def test_roots(self) -> None:
        empty: tuple[list[str], list[Any], bool] = ([], [], False)
        for name in ("f1", "alink", "flink", "fifo"):
            self.assertEqual(self.walked(os.path.join(self.root, name)), empty, name)
        self.assertEqual(
            self.walked(os.path.join(self.root, "nope")),
            {"error": {"code": -32004, "message": "No such file or directory (os error 2)"}},
        )
        self.assertEqual(
            self.walked(os.path.join(self.root, "f1/x")),
            {"error": {"code": -32603, "message": "Not a directory (os error 20)"}},
        )

    def test_nonUtf8NameIsAnError(self) -> None:
        # as 0.171: listed under its lossy name, whose lookup fails
        lossy = os.path.abspath(self.mktemp())
        os.mkdir(lossy)
        open(os.fsencode(lossy) + b"/bad\xff", "w").close()
        open(os.path.join(lossy, "ok"), "w").close()
        got = mapped(walk)(lossy, options(), uri)
        self.assertEqual(got["entries"], [{"path": uri(lossy + "/ok"), "kind": "file"}])
        self.assertEqual(
            got["errors"],
            [
                {
                    "path": "file://" + quote(lossy) + "/bad%EF%BF%BD",
                    "message": "No such file or directory (os error 2)",
                }
            ],
        )
        self.assertEqual(mapped(walk)(lossy, options(maxEntries=1), uri)["truncated"], True)

    def test_responseBudget(self) -> None:
        # a deep root makes long URIs: 3,000 bytes each, 3,064 of budget, 1,368 fit in 4 MiB
        big = os.path.join(os.path.abspath(self.mktemp()), *["d" * 200] * 14)
        os.makedirs(big)
        stem = "n" * (3000 - len(uri(big)) - 1 - 5)
        for i in range(1400):
            open(os.path.join(big, f"{stem}{i:05d}"), "w").close()
        got = mapped(walk)(big, options(maxEntries=50000), uri)
        self.assertEqual(len(got["entries"][0]["path"]), 3000)
        self.assertEqual(len(got["entries"]), 4 * 1024 * 1024 // 3064)
        self.assertTrue(got["truncated"])


class MetadataTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.dir, "sub"))
        with open(os.path.join(self.dir, "small"), "w") as f:
            f.write("hello world")
        open(os.path.join(self.dir, "sub/f"), "w").close()
        os.symlink("small", os.path.join(self.dir, "link"))
        os.symlink("sub", os.path.join(self.dir, "dirlink"))
        os.symlink("nowhere", os.path.join(self.dir, "dangling"))
        os.symlink("loop", os.path.join(self.dir, "loop"))

    def p(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def test_followingHasSizeAndNoBirthTime(self) -> None:
        st = os.stat(self.p("small"))
        self.assertEqual(
            outcome(getMetadata171, self.p("link"), None),
            {
                "isDirectory": False,
                "isFile": True,
                "isSymlink": True,
                "size": 11,
                "createdAtMs": 0,
                "modifiedAtMs": st.st_mtime_ns // 1_000_000,
            },
        )
        self.assertEqual(outcome(getMetadata171, self.p("dirlink"), True)["size"], 4096)
        self.assertEqual(outcome(getMetadata171, self.p("dirlink"), True)["isDirectory"], True)
        self.assertEqual(
            outcome(getMetadata171, self.p("dangling"), None),
            {"error": {"code": -32004, "message": "No such file or directory (os error 2)"}},
        )

    def test_notFollowing(self) -> None:
        symlink = {"error": {"code": -32600, "message": "path contains a symbolic link"}}
        notDir = {"error": {"code": -32603, "message": "Not a directory (os error 20)"}}
        for name in ("link", "dirlink", "dangling", "loop"):
            self.assertEqual(outcome(getMetadata171, self.p(name), False), symlink, name)
        self.assertEqual(outcome(getMetadata171, self.p("dirlink/f"), False), notDir)
        self.assertEqual(outcome(getMetadata171, "/proc/self/fd/0", False), notDir)
        got = outcome(getMetadata171, self.p("sub/f"), False)
        self.assertEqual(got["isFile"], True)
        self.assertEqual(got["isSymlink"], False)
        self.assertEqual(got["size"], 0)
        # a birth time near now where the filesystem keeps one (0 otherwise)
        self.assertTrue(
            got["createdAtMs"] == 0 or abs(got["createdAtMs"] - got["modifiedAtMs"]) < 5000
        )
        self.assertEqual(outcome(getMetadata171, "/", False)["isDirectory"], True)

    def test_canonicalize(self) -> None:
        real = os.path.realpath(self.dir)
        self.assertEqual(outcome(canonicalize, self.p("link")), os.path.join(real, "small"))
        self.assertEqual(outcome(canonicalize, self.p("dirlink/f")), os.path.join(real, "sub/f"))
        self.assertEqual(outcome(canonicalize, "/"), "/")
        self.assertEqual(
            outcome(canonicalize, self.p("dangling")),
            {"error": {"code": -32004, "message": "No such file or directory (os error 2)"}},
        )
        self.assertEqual(
            outcome(canonicalize, self.p("loop")),
            {"error": {"code": -32603, "message": "Symbolic link loop (os error 40)"}},
        )
        self.assertEqual(
            outcome(canonicalize, self.p("small/x")),
            {"error": {"code": -32603, "message": "Not a directory (os error 20)"}},
        )
