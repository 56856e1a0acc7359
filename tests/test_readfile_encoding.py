"""``fs/readFile``'s reply carries its own JSON (``EncodedParams``): the same bytes the encoder
would write for the dict, at every size around the base64 slice boundary."""

from __future__ import annotations

import base64
import json
import os

import orjson
from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.compat import base64strict
from twisted_exec.executor.resources.filesystem import readFile
from twisted_exec.wire.jsonrpc import EncodedParams, encodeResult

_SLICE = base64strict._RAW_SLICE


class ReadFileEncodingTests(SynchronousTestCase):
    def test_rawIsTheDictsJsonAtEverySize(self) -> None:
        root = self.mktemp()
        os.mkdir(root)
        for size in (0, 1, 2, 3, 4, _SLICE - 1, _SLICE, _SLICE + 1, 2 * _SLICE + 2):
            path = os.path.join(root, f"f{size}")
            data = os.urandom(size)
            with open(path, "wb") as f:
                f.write(data)
            result = readFile(path, None)
            self.assertIsInstance(result, EncodedParams)
            self.assertEqual(result, {"dataBase64": base64.b64encode(data).decode()}, size)
            self.assertEqual(result.raw, orjson.dumps(dict(result)), size)
            reply = json.loads(encodeResult(7, result))
            self.assertEqual(base64.b64decode(reply["result"]["dataBase64"]), data, size)

    def test_piecesJoinToTheStandardEncoding(self) -> None:
        data = os.urandom(3 * _SLICE + 5)
        pieces = base64strict.encodeBase64Pieces(data)
        self.assertEqual(len(pieces), 4)
        self.assertTrue(all(len(p) <= 1 << 20 for p in pieces))
        self.assertEqual(b"".join(pieces), base64.b64encode(data))
        self.assertEqual(base64strict.encodeBase64(data), base64.b64encode(data).decode())
