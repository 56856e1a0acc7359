"""ProcessTable with real processes: process/read (waits, timeouts) and process/write (statuses,
the strict base64 of its chunks).
"""

from __future__ import annotations

import os

from twisted.internet import defer, reactor
from twisted.trial import unittest

from tests.support.processes import (
    TIMEOUT,
    ProcessTestCase,
    b64,
    execParams,
)
from twisted_exec.compat.base64strict import decodeBase64Strict as decodeBase64
from twisted_exec.compat.params import (
    ReadParams,
    TerminateParams,
    WriteParams,
    parse,
)
from twisted_exec.wire.errors import RpcError


class ReadTests(ProcessTestCase):
    async def test_unknown(self) -> None:
        await self.assertRpcError(
            -32600, "unknown process id zz", self.table.read(ReadParams("zz"))
        )

    async def test_waitReturnsOnOutput(self) -> None:
        await self.table.start(execParams("c", ["cat"], pipeStdin=True))
        pending = defer.ensureDeferred(self.table.read(ReadParams("c", afterSeq=0, waitMs=60_000)))
        pending.addTimeout(TIMEOUT, reactor)
        self.assertNoResult(pending)
        self.table.write(WriteParams("c", b"ping\n"))
        result = await pending
        self.assertEqual(
            result["chunks"], [{"seq": 1, "stream": "stdout", "chunk": b64(b"ping\n")}]
        )
        self.assertEqual(result["nextSeq"], 2)
        self.assertFalse(result["exited"])

    async def test_waitOnClosedReturnsAtOnce(self) -> None:
        await self.run_("t", ["true"])
        d = defer.ensureDeferred(self.table.read(ReadParams("t", afterSeq=100, waitMs=60_000)))
        result = self.successResultOf(d)
        self.assertEqual(result["nextSeq"], 3)
        self.assertTrue(result["closed"])

    async def test_waitTimesOut(self) -> None:
        await self.table.start(execParams("s", ["sleep", "30"]))
        start = reactor.seconds()
        result = await self.table.read(ReadParams("s", waitMs=50))
        self.assertGreaterEqual(reactor.seconds() - start, 0.04)
        self.assertEqual(result["chunks"], [])
        self.assertEqual(result["nextSeq"], 1)


class WriteTests(ProcessTestCase):
    async def test_statuses(self) -> None:
        await self.table.start(execParams("c", ["cat"], pipeStdin=True))
        await self.table.start(execParams("s", ["sleep", "30"]))
        self.assertEqual(self.table.write(WriteParams("c", b"")), {"status": "accepted"})
        big = os.urandom(256 * 1024)
        self.assertEqual(self.table.write(WriteParams("c", big)), {"status": "accepted"})
        self.assertEqual(self.table.write(WriteParams("s", b"hi")), {"status": "stdinClosed"})
        self.assertEqual(self.table.write(WriteParams("zz", b"hi")), {"status": "unknownProcess"})
        with self.assertRaises(RpcError) as ctx:
            parse(WriteParams, {"processId": "c", "chunk": "!"})
        self.assertEqual(
            (ctx.exception.code, ctx.exception.message), (-32602, "Invalid symbol 33, offset 0.")
        )
        await self.notes.waitFor(lambda: len(self.notes.output("c")) == len(big))
        self.assertEqual(self.notes.output("c"), big)
        self.assertEqual(self.table.terminate(TerminateParams("c")), {"running": True})
        await self.notes.closed("c")
        with self.assertRaises(RpcError) as ctx:
            self.table.write(WriteParams("c", b"hi"))
        self.assertEqual(
            (ctx.exception.code, ctx.exception.message),
            (-32603, "failed to write to process stdin"),
        )

    async def test_writeAfterNaturalExitAccepted(self) -> None:
        """Only process/terminate makes writes fail; after a natural exit, or once the child
        closed its stdin, the reference still answers ``accepted`` (probed)."""
        await self.table.start(execParams("e", ["sh", "-c", "exit 0"], pipeStdin=True))
        await self.notes.closed("e")
        self.assertEqual(self.table.write(WriteParams("e", b"hi")), {"status": "accepted"})
        await self.table.start(
            execParams("n", ["sh", "-c", "exec 0<&-; read x; sleep 30"], pipeStdin=True)
        )
        self.assertEqual(self.table.write(WriteParams("n", b"hi")), {"status": "accepted"})
        self.assertEqual(self.table.write(WriteParams("n", b"hi")), {"status": "accepted"})
        self.assertEqual(self.table.terminate(TerminateParams("n")), {"running": True})
        await self.notes.closed("n")


class Base64Tests(unittest.TestCase):
    CASES = {
        "!": "Invalid symbol 33, offset 0.",
        "aGk": "Invalid padding",
        "a": "Invalid input length: 1",
        "aGl=": "Invalid last symbol 108, offset 2.",
        "aG=k": "Invalid symbol 61, offset 2.",
        "aGk==": "Invalid symbol 61, offset 3.",
        "aGk=aGk=": "Invalid symbol 61, offset 3.",
        " aGk=": "Invalid symbol 32, offset 0.",
        "aGk=\n": "Invalid symbol 10, offset 4.",
        "====": "Invalid symbol 61, offset 0.",
        "aB==": "Invalid last symbol 66, offset 1.",
        "aGk=a": "Invalid symbol 61, offset 3.",
        "ab=c": "Invalid symbol 61, offset 2.",
        "ab==": "Invalid last symbol 98, offset 1.",
        "a===": "Invalid symbol 61, offset 1.",
        "aGVsbG8-": "Invalid symbol 45, offset 7.",
        "aGVsbG8_": "Invalid symbol 95, offset 7.",
        "YQ": "Invalid padding",
        "YWJj=": "Invalid symbol 61, offset 4.",
        "YQ=": "Invalid padding",
        "Y===": "Invalid symbol 61, offset 1.",
        "=": "Invalid symbol 61, offset 0.",
        "YQ==YQ==": "Invalid symbol 61, offset 2.",
        "Y\u00e9Q=": "Invalid symbol 195, offset 1.",
    }

    def test_referenceMessages(self) -> None:
        for text, message in self.CASES.items():
            with self.assertRaises(ValueError, msg=text) as ctx:
                decodeBase64(text)
            self.assertEqual(str(ctx.exception), message, text)

    def test_valid(self) -> None:
        for text, data in {"": b"", "aA==": b"h", "abc=": b"i\xb7", "aGk=": b"hi"}.items():
            self.assertEqual(decodeBase64(text), data)
