"""The 0.171 fs path methods over a real local websocket, on real files: ``fs/walk``,
``fs/canonicalize``, ``fs/watchMissing``, ``fs/getMetadata``, ``fs/copy``, and the capabilities
that announce them; whole reply objects, errors included, as the 0.171 binary answered."""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred

from tests.support.fs171 import WALK_OPTIONS
from tests.support.fs171_ws import TIMEOUT, Fs171WebSocketCase, err, uri


class Fs171PathTests(Fs171WebSocketCase):
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
