"""Params of the new 0.171 fs methods: every message below was answered by the 0.171 binary."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.support.fs171 import WALK_OPTIONS
from twisted_exec.compat import fsparams171 as p
from twisted_exec.compat import params171, serde
from twisted_exec.wire.errors import RpcError

U = "file:///work/x"
OPTIONS = {"maxDepth": 1, "maxDirectories": 1, "maxEntries": 1, "followDirectorySymlinks": False}


def error(cls: Any, raw: object) -> str:
    try:
        p.parse171(cls, raw)
    except RpcError as err:
        assert err.code == -32602
        return err.message
    raise AssertionError(f"{raw!r} decoded")


class NumberWordingTests(SynchronousTestCase):
    def test_nativeWordingIsTheRewrittenOne(self) -> None:
        """0.171's type errors come two ways: native here (``invalidType171``) and rewritten
        from 0.131's (``params171.numberMessage``, for 0.131 structs 0.171 reuses); they agree."""
        values: list[object] = [None, True, False, 0, 5, -1, 1.5, 2**64, -(2**70), 1e300]
        values += ["5", "", [], [1], {}, {"a": 1}]
        for value in values:
            for expected in ("a string", "a boolean", "a sequence", "struct WalkOptions"):
                native = p.invalidType171(value, expected).message
                rewritten = params171.numberMessage(serde.invalidType(value, expected).message)
                self.assertEqual(native, rewritten, (value, expected))

    def test_u64AndUsize(self) -> None:
        base = {"handleId": "h", "offset": 0, "len": 3}
        for bad in (1.5, -1, 2**64, 1000.0):
            self.assertEqual(error(p.FsReadBlockParams, {**base, "offset": bad}), "invalid number")
            self.assertEqual(error(p.FsReadBlockParams, {**base, "len": bad}), "invalid number")
        cases: list[tuple[object, str]] = [
            ("1", 'invalid type: string "1", expected'),
            (None, "invalid type: null, expected"),
            (True, "invalid type: boolean `true`, expected"),
        ]
        for other, message in cases:
            self.assertEqual(
                error(p.FsReadBlockParams, {**base, "offset": other}), message + " u64"
            )
            self.assertEqual(error(p.FsReadBlockParams, {**base, "len": other}), message + " usize")
        self.assertEqual(
            error(p.FsReadBlockParams, {**base, "handleId": 5}),
            "invalid type: number, expected a string",
        )
        got = p.parse171(p.FsReadBlockParams, {**base, "offset": 2**64 - 1})
        self.assertEqual(got.offset, 2**64 - 1)

    def test_booleans(self) -> None:
        for bad, message in [
            (1, "invalid type: number, expected a boolean"),
            (1.5, "invalid type: number, expected a boolean"),
            ("s", 'invalid type: string "s", expected a boolean'),
            ([], "invalid type: sequence, expected a boolean"),
            ({}, "invalid type: map, expected a boolean"),
        ]:
            self.assertEqual(
                error(
                    p.FsWalkParams,
                    {"path": U, "options": {**OPTIONS, "followDirectorySymlinks": bad}},
                ),
                message,
            )


class StructTests(SynchronousTestCase):
    def test_canonicalize(self) -> None:
        cls = p.FsCanonicalizeParams
        self.assertEqual(error(cls, {}), "missing field `path`")
        self.assertEqual(
            error(cls, [U]),
            "invalid length 1, expected struct WireFsCanonicalizeParams with 2 elements",
        )
        self.assertEqual(p.parse171(cls, [U, None]).path.hostPath(), "/work/x")
        self.assertEqual(p.parse171(cls, {"path": "file:///a%20b/../c"}).path.hostPath(), "/c")
        self.assertEqual(error(cls, {"path": 5}), "invalid type: number, expected a string")
        self.assertEqual(error(cls, {"path": "/etc"}), "invalid URI: relative URL without a base")
        for sandbox, message in (
            (5, "invalid type: number, expected struct WireFileSystemSandboxContext"),
            ({}, "missing field `permissions`"),
            ([], "invalid length 0, expected struct WireFileSystemSandboxContext with 10 elements"),
        ):
            self.assertEqual(error(cls, {"path": U, "sandbox": sandbox}), message)
        self.assertEqual(
            error(cls, [U, None, 1]), "invalid length 3, expected fewer elements in array"
        )

    def test_open(self) -> None:
        cls = p.FsOpenParams
        self.assertEqual(error(cls, {"path": U}), "missing field `handleId`")
        self.assertEqual(error(cls, {"handleId": "z"}), "missing field `path`")
        self.assertEqual(p.parse171(cls, {"path": U, "handleId": "h"}).mode, "read")
        self.assertEqual(
            p.parse171(cls, {"path": U, "handleId": "h", "mode": "replace"}).mode, "replace"
        )
        self.assertEqual(
            p.parse171(cls, {"path": U, "handleId": "h", "mode": {"read": None}}).mode, "read"
        )
        for bad, message in [
            ("bogus", "unknown variant `bogus`, expected `read` or `replace`"),
            ("Read", "unknown variant `Read`, expected `read` or `replace`"),
            (None, "invalid type: null, expected string or map"),
            (5, "invalid type: number, expected string or map"),
        ]:
            self.assertEqual(error(cls, {"path": U, "handleId": "h", "mode": bad}), message)
        self.assertEqual(
            error(cls, ["h9", U]),
            "invalid length 3, expected struct WireFsOpenParams with 4 elements",
        )
        self.assertEqual(error(cls, ["h9", U, None]), "invalid type: null, expected string or map")
        self.assertEqual(error(cls, [U, "h9"]), "invalid URI: relative URL without a base")

    def test_blocksAndClose(self) -> None:
        self.assertEqual(
            error(p.FsReadBlockParams, {"handleId": "h", "offset": 0}), "missing field `len`"
        )
        self.assertEqual(
            error(p.FsReadBlockParams, {"handleId": "h", "len": 3}), "missing field `offset`"
        )
        self.assertEqual(
            error(p.FsReadBlockParams, {"offset": 0, "len": 3}), "missing field `handleId`"
        )
        self.assertEqual(
            error(p.FsReadBlockParams, ["h", 0]),
            "invalid length 2, expected struct FsReadBlockParams with 3 elements",
        )
        self.assertEqual(
            error(p.FsReadBlockParams, None),
            "invalid type: null, expected struct FsReadBlockParams",
        )
        self.assertEqual(p.parse171(p.FsReadBlockParams, ["h", 0, 3]).len, 3)
        write = {"handleId": "w", "offset": 0}
        self.assertEqual(error(p.FsWriteBlockParams, write), "missing field `chunk`")
        self.assertEqual(p.decodeChunk("aGk="), b"hi")
        for bad, message in (
            ("!!", "Invalid symbol 33, offset 0."),
            ("aGk", "Invalid padding"),
            ("aGk==", "Invalid symbol 61, offset 3."),
        ):
            with self.assertRaises(RpcError) as caught:
                p.decodeChunk(bad)
            self.assertEqual((caught.exception.code, caught.exception.message), (-32602, message))
        self.assertEqual(
            error(p.FsWriteBlockParams, {**write, "chunk": None}),
            "invalid type: null, expected a string",
        )
        self.assertEqual(
            error(p.FsWriteBlockParams, ["h9", 0, "aGk=", 4]),
            "invalid length 4, expected fewer elements in array",
        )
        self.assertEqual(p.parse171(p.FsWriteBlockParams, {**write, "chunk": ""}).chunk, "")
        # the chunk stays text until the handler decodes it off the reactor thread
        self.assertEqual(p.parse171(p.FsWriteBlockParams, {**write, "chunk": "!!"}).chunk, "!!")
        # ... but when the struct is bad, the chunk's own error still comes first if it is first
        self.assertEqual(
            error(p.FsWriteBlockParams, {"chunk": "!!", "offset": -1}),
            "Invalid symbol 33, offset 0.",
        )
        self.assertEqual(
            error(p.FsWriteBlockParams, {"offset": -1, "chunk": "!!"}), "invalid number"
        )
        self.assertEqual(
            error(p.FsWriteBlockParams, {"chunk": "!!"}), "Invalid symbol 33, offset 0."
        )
        self.assertEqual(error(p.FsCloseParams, {}), "missing field `handleId`")
        self.assertEqual(
            error(p.FsCloseParams, None), "invalid type: null, expected struct FsCloseParams"
        )
        self.assertEqual(
            error(p.FsCloseParams, ["h9", 1]), "invalid length 2, expected fewer elements in array"
        )

    def test_walk(self) -> None:
        cls = p.FsWalkParams
        options = dict(WALK_OPTIONS)
        for name in ("maxDepth", "maxDirectories", "maxEntries", "followDirectorySymlinks"):
            partial = {k: v for k, v in options.items() if k != name}
            self.assertEqual(error(cls, {"path": U, "options": partial}), f"missing field `{name}`")
        partial = {k: v for k, v in options.items() if k != "pruneHiddenDirectories"}
        self.assertFalse(
            p.parse171(cls, {"path": U, "options": partial}).options.pruneHiddenDirectories
        )
        self.assertEqual(error(cls, {"path": U}), "missing field `options`")
        self.assertEqual(error(cls, {"options": options}), "missing field `path`")
        self.assertEqual(
            error(cls, {"path": U, "options": None}),
            "invalid type: null, expected struct WalkOptions",
        )
        self.assertEqual(
            error(cls, {"path": U, "options": []}),
            "invalid length 0, expected struct WalkOptions with 5 elements",
        )
        self.assertEqual(
            p.parse171(cls, {"path": U, "options": [10, 100, 1000, False, False]}).options.maxDepth,
            10,
        )
        self.assertEqual(
            error(cls, [U, options]),
            "invalid length 2, expected struct WireFsWalkParams with 3 elements",
        )
        self.assertEqual(
            error(cls, {"path": U, "options": {**options, "maxDepth": -1}}), "invalid number"
        )
        self.assertEqual(
            error(cls, {"path": U, "options": {**options, "followDirectorySymlinks": None}}),
            "invalid type: null, expected a boolean",
        )

    def test_watchMissing(self) -> None:
        cls = p.FsWatchMissingParams
        base = {"watchId": 1, "missing": [U], "present": U}
        self.assertEqual(
            error(cls, {**base, "watchId": "s"}), 'invalid type: string "s", expected u64'
        )
        self.assertEqual(error(cls, {**base, "watchId": -1}), "invalid number")
        self.assertEqual(error(cls, {**base, "watchId": 2**64}), "invalid number")
        self.assertEqual(error(cls, {**base, "watchId": 1.0}), "invalid number")
        self.assertEqual(p.parse171(cls, {**base, "watchId": 2**64 - 1}).watchId, 2**64 - 1)
        self.assertEqual(error(cls, {"missing": [U]}), "missing field `watchId`")
        self.assertEqual(error(cls, {"watchId": 3, "present": U}), "missing field `missing`")
        self.assertIsNone(p.parse171(cls, {"watchId": 3, "missing": [U]}).present)
        self.assertIsNone(p.parse171(cls, {**base, "present": None}).present)
        self.assertEqual(
            error(cls, {**base, "missing": None}), "invalid type: null, expected a sequence"
        )
        self.assertEqual(
            error(cls, {**base, "missing": U}), f'invalid type: string "{U}", expected a sequence'
        )
        self.assertEqual(
            error(cls, {**base, "missing": [5]}), "invalid type: number, expected a string"
        )
        self.assertEqual(
            error(cls, {**base, "missing": ["/abs"]}), "invalid URI: relative URL without a base"
        )
        self.assertEqual(
            error(cls, {**base, "present": "/abs"}), "invalid URI: relative URL without a base"
        )
        self.assertEqual(
            error(cls, None), "invalid type: null, expected struct FsWatchMissingParams"
        )
        self.assertEqual(p.parse171(cls, [8, [U], U]).watchId, 8)
        self.assertEqual(
            error(cls, [2, [U]]),
            "invalid length 2, expected struct FsWatchMissingParams with 3 elements",
        )
