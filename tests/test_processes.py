"""ProcessTable with real processes: notifications, reads, writes, groups, PTYs, spawn errors."""

from __future__ import annotations

import base64
import os
import tempfile
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from twisted_exec.compat.base64strict import decodeBase64Strict as decodeBase64
from twisted_exec.compat.params import (
    ExecEnvPolicy,
    ExecParams,
    ReadParams,
    TerminateParams,
    WriteParams,
    parse,
)
from twisted_exec.executor.resources.processes import ProcessTable
from twisted_exec.testing.executorproc import processGone
from twisted_exec.wire.errors import RpcError

TIMEOUT = 10
ENVIRON = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Collector:
    """The ``notify`` callable: records every notification and lets a test wait for one."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._waiting: list[tuple[Any, defer.Deferred[None]]] = []

    def __call__(self, method: str, params: dict[str, Any]) -> None:
        self.messages.append((method, params))
        for entry in list(self._waiting):
            predicate, d = entry
            if predicate():
                self._waiting.remove(entry)
                d.callback(None)

    def waitFor(self, predicate: Any) -> defer.Deferred[None]:
        d: defer.Deferred[None] = defer.Deferred()
        if predicate():
            d.callback(None)
        else:
            self._waiting.append((predicate, d))
        d.addTimeout(TIMEOUT, reactor)
        return d

    def of(self, processId: str) -> list[tuple[str, dict[str, Any]]]:
        return [m for m in self.messages if m[1]["processId"] == processId]

    def closed(self, processId: str) -> defer.Deferred[None]:
        return self.waitFor(lambda: ("process/closed", processId) in self._methods())

    def exited(self, processId: str) -> defer.Deferred[None]:
        return self.waitFor(lambda: ("process/exited", processId) in self._methods())

    def _methods(self) -> set[tuple[str, str]]:
        return {(m, p["processId"]) for m, p in self.messages}

    def output(self, processId: str) -> bytes:
        return b"".join(
            base64.b64decode(p["chunk"]) for m, p in self.of(processId) if m == "process/output"
        )

    def outputContains(self, processId: str, data: bytes) -> defer.Deferred[None]:
        return self.waitFor(lambda: data in self.output(processId))


def execParams(processId: str, argv: list[str], **kw: Any) -> ExecParams:
    kw.setdefault("cwd", "/")
    kw.setdefault("env", {"PATH": ENVIRON["PATH"]})
    kw.setdefault("tty", False)
    return ExecParams(processId=processId, argv=argv, **kw)


async def until(predicate: Any, seconds: float = TIMEOUT) -> None:
    """Poll ``predicate`` on the reactor clock (for facts no callback reports, like /proc)."""
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await task.deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("condition not reached in time")


class ProcessTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.notes = Collector()
        self.table = ProcessTable(reactor, self.notes, environ=ENVIRON)
        self.tables = [self.table]
        self.addCleanup(self.reapAll)

    def newTable(self, **kw: Any) -> ProcessTable:
        table = ProcessTable(reactor, self.notes, **kw)
        self.tables.append(table)
        return table

    async def reapAll(self) -> None:
        """Kill every process and wait until each is closed: no reader or timer outlives a test."""
        waits = []
        for table in self.tables:
            table.killAll()
            waits += [self.notes.closed(pid) for pid, e in table._entries.items()]
        await defer.gatherResults(waits)

    async def run_(self, processId: str, argv: list[str], **kw: Any) -> None:
        await self.table.start(execParams(processId, argv, **kw))
        await self.notes.closed(processId)

    async def assertRpcError(self, code: int, message: str, coro: Any) -> None:
        try:
            await coro
        except RpcError as err:
            self.assertEqual((err.code, err.message), (code, message))
        else:
            self.fail("no RpcError")


class NotificationTests(ProcessTestCase):
    async def test_exactNotifications(self) -> None:
        result = await self.table.start(execParams("p1", ["bash", "-c", "echo hi; exit 3"]))
        self.assertEqual(result, {"processId": "p1"})
        await self.notes.closed("p1")
        self.assertEqual(
            self.notes.messages,
            [
                (
                    "process/output",
                    {"processId": "p1", "seq": 1, "stream": "stdout", "chunk": "aGkK"},
                ),
                ("process/exited", {"processId": "p1", "seq": 2, "exitCode": 3}),
                ("process/closed", {"processId": "p1", "seq": 3}),
            ],
        )

    async def test_orderingFiftyTimes(self) -> None:
        ids = [f"o{i}" for i in range(50)]
        for pid in ids:
            await self.table.start(execParams(pid, ["bash", "-c", "echo; echo >&2; exit 3"]))
        await defer.gatherResults([self.notes.closed(pid) for pid in ids])
        for pid in ids:
            events = self.notes.of(pid)
            self.assertEqual([p["seq"] for _, p in events], [1, 2, 3, 4], pid)
            self.assertEqual(
                [m for m, _ in events],
                ["process/output", "process/output", "process/exited", "process/closed"],
            )
            self.assertEqual(
                sorted(p["stream"] for m, p in events if m == "process/output"),
                ["stderr", "stdout"],
            )
            self.assertEqual(events[2][1]["exitCode"], 3)

    async def test_readAfterClose(self) -> None:
        await self.run_("r", ["bash", "-c", "echo hi; exit 3"])
        result = await self.table.read(ReadParams("r"))
        self.assertEqual(
            result,
            {
                "chunks": [{"seq": 1, "stream": "stdout", "chunk": "aGkK"}],
                "nextSeq": 2,
                "exited": True,
                "exitCode": 3,
                "closed": True,
                "failure": None,
            },
        )
        self.assertEqual((await self.table.read(ReadParams("r", afterSeq=1)))["nextSeq"], 4)

    async def test_largeOutputRetention(self) -> None:
        table = self.newTable(environ=ENVIRON, retainBytes=100_000)
        await table.start(execParams("big", ["head", "-c", "1000000", "/dev/zero"]))
        await self.notes.closed("big")
        self.assertEqual(len(self.notes.output("big")), 1_000_000)
        result = await table.read(ReadParams("big", afterSeq=0))
        total = sum(len(base64.b64decode(c["chunk"])) for c in result["chunks"])
        self.assertLessEqual(total, 100_000)
        self.assertGreater(total, 100_000 - 65536)
        seqs = [c["seq"] for c in result["chunks"]]
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))))
        last = self.notes.of("big")[-3][1]["seq"]
        self.assertEqual(seqs[-1], last)

    async def test_outputPendingAtGraceIsSentBeforeExited(self) -> None:
        # The reactor does not read the pipes (as when it is busy): the grace timer drains them.
        table = self.newTable(environ=ENVIRON, exitGrace=0.05)
        await table.start(execParams("d", ["bash", "-c", "echo out; echo err >&2; exit 3"]))
        pipes = table._entries["d"].transport.pipes
        for fd in (1, 2):
            pipes[fd].stopReading()
        await self.notes.exited("d")
        self.assertEqual(
            self.notes.of("d"),
            [
                (
                    "process/output",
                    {"processId": "d", "seq": 1, "stream": "stdout", "chunk": b64(b"out\n")},
                ),
                (
                    "process/output",
                    {"processId": "d", "seq": 2, "stream": "stderr", "chunk": b64(b"err\n")},
                ),
                ("process/exited", {"processId": "d", "seq": 3, "exitCode": 3}),
            ],
        )
        for fd in (1, 2):
            pipes[fd].startReading()
        await self.notes.closed("d")
        self.assertEqual(self.notes.of("d")[-1], ("process/closed", {"processId": "d", "seq": 4}))


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


class StartTests(ProcessTestCase):
    async def test_errors(self) -> None:
        start = self.table.start
        await self.assertRpcError(-32602, "argv must not be empty", start(execParams("a", [])))
        enoent = "No such file or directory (os error 2)"
        await self.assertRpcError(-32603, enoent, start(execParams("a", ["no-such-program"])))
        await self.assertRpcError(-32603, enoent, start(execParams("a", ["true"], cwd="/nonexist")))
        await self.assertRpcError(
            -32603, "Permission denied (os error 13)", start(execParams("a", ["/tmp"]))
        )
        await self.assertRpcError(
            -32603,
            "Not a directory (os error 20)",
            start(execParams("a", ["true"], cwd="/etc/passwd")),
        )
        await self.assertRpcError(
            -32603, "nul byte found in provided data", start(execParams("a", ["echo", "a\0b"]))
        )
        await self.assertRpcError(
            -32603, "missing program for pipe spawn", start(execParams("a", [""]))
        )
        # every failed spawn left the id free
        await self.run_("a", ["true"])
        await self.assertRpcError(
            -32600, "process a already exists", start(execParams("a", ["true"]))
        )
        await self.assertRpcError(-32602, "argv must not be empty", start(execParams("a", [])))

    async def test_execFormatError(self) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
            f.write("echo no shebang\n")
        self.addCleanup(os.unlink, f.name)
        os.chmod(f.name, 0o755)
        await self.assertRpcError(
            -32603, "Exec format error (os error 8)", self.table.start(execParams("x", [f.name]))
        )

    async def test_exactEnvAndExecutorPath(self) -> None:
        await self.run_("e", ["env"], env={"A": "1"})
        self.assertEqual(self.notes.output("e"), b"A=1\n")

    async def test_childPathWins(self) -> None:
        directory = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, directory)
        prog = os.path.join(directory, "myprog")
        with open(prog, "w") as f:
            f.write("#!/bin/sh\necho mine\n")
        self.addCleanup(os.unlink, prog)
        os.chmod(prog, 0o755)
        await self.run_("m", ["myprog"], env={"PATH": directory})
        self.assertEqual(self.notes.output("m"), b"mine\n")
        await self.assertRpcError(
            -32603,
            "No such file or directory (os error 2)",
            self.table.start(execParams("n", ["env"], env={"PATH": "/nonexistent"})),
        )

    async def test_envPolicy(self) -> None:
        table = self.newTable(environ={**ENVIRON, "MY_TOKEN": "t", "KEEP": "k"})
        policy = ExecEnvPolicy("all", False, [], {}, [])
        await table.start(execParams("ep", ["env"], env={"X": "1"}, envPolicy=policy))
        await self.notes.closed("ep")
        lines = sorted(self.notes.output("ep").decode().splitlines())
        self.assertEqual(
            lines, sorted([f"HOME={ENVIRON['HOME']}", "KEEP=k", f"PATH={ENVIRON['PATH']}", "X=1"])
        )

    async def test_arg0CwdAndSession(self) -> None:
        await self.run_(
            "s",
            ["sh", "-c", 'pwd; tr "\\0" " " </proc/$$/cmdline; echo; cat /proc/$$/stat; echo $$'],
            arg0="renamed",
            cwd="/usr",
        )
        lines = self.notes.output("s").decode().splitlines()
        self.assertEqual(lines[0], "/usr")
        self.assertTrue(lines[1].startswith("renamed -c "), lines[1])
        fields = lines[2].rsplit(")", 1)[1].split()
        ppid, pgrp, session = int(fields[1]), int(fields[2]), int(fields[3])
        pid = int(lines[3])
        self.assertEqual(ppid, os.getpid())  # our direct child
        self.assertEqual((pgrp, session), (pid, pid))  # leads its own session and group

    async def test_stdinIsDevNullWithoutPipeStdin(self) -> None:
        await self.run_("d", ["sh", "-c", "readlink /proc/$$/fd/0"])
        self.assertEqual(self.notes.output("d"), b"/dev/null\n")


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


class TerminateTests(ProcessTestCase):
    async def test_terminate(self) -> None:
        await self.table.start(execParams("s", ["sleep", "30"]))
        self.assertEqual(self.table.terminate(TerminateParams("s")), {"running": True})
        await self.notes.closed("s")
        self.assertEqual(
            self.notes.of("s"),
            [
                ("process/exited", {"processId": "s", "seq": 1, "exitCode": -1}),
                ("process/closed", {"processId": "s", "seq": 2}),
            ],
        )
        self.assertEqual(self.table.terminate(TerminateParams("s")), {"running": False})
        self.assertEqual(self.table.terminate(TerminateParams("zz")), {"running": False})

    async def test_backgroundGrandchildDies(self) -> None:
        await self.table.start(
            execParams("g", ["bash", "-c", "trap '' TERM; sleep 30 & echo $!; wait"])
        )
        await self.notes.waitFor(lambda: self.notes.output("g").endswith(b"\n"))
        grandchild = int(self.notes.output("g"))
        self.assertFalse(processGone(grandchild))
        self.assertEqual(self.table.terminate(TerminateParams("g")), {"running": True})
        await self.notes.closed("g")
        await until(lambda: processGone(grandchild))

    async def test_exitGraceWhenGrandchildHoldsPipe(self) -> None:
        await self.table.start(execParams("h", ["bash", "-c", "sleep 30 & echo $!; exit 4"]))
        await self.notes.exited("h")
        grandchild = int(self.notes.output("h"))
        self.assertEqual([m for m, _ in self.notes.of("h")], ["process/output", "process/exited"])
        self.assertEqual(self.notes.of("h")[1][1], {"processId": "h", "seq": 2, "exitCode": 4})
        # exited, so terminate reports not running (as the reference) and leaves the group
        self.assertEqual(self.table.terminate(TerminateParams("h")), {"running": False})
        self.assertFalse(processGone(grandchild))
        self.table.killAll()
        await self.notes.closed("h")
        await until(lambda: processGone(grandchild))

    async def test_killAll(self) -> None:
        await self.table.start(execParams("a", ["sleep", "30"]))
        await self.table.start(execParams("b", ["bash", "-c", "sleep 30 & echo $!; wait"]))
        await self.table.start(execParams("c", ["sleep", "30"], tty=True))
        await self.notes.waitFor(lambda: self.notes.output("b").endswith(b"\n"))
        pids = [e.pgid for e in self.table._entries.values() if e.pgid] + [
            int(self.notes.output("b"))
        ]
        self.table.killAll()
        await defer.gatherResults([self.notes.closed(x) for x in "abc"])
        await until(lambda: all(processGone(pid) for pid in pids))
        self.assertEqual(self.notes.of("c")[-2][1]["exitCode"], 1)  # a pty reports 1 (portable-pty)


class TtyTests(ProcessTestCase):
    async def test_terminalFacts(self) -> None:
        await self.run_(
            "t",
            ["bash", "-c", "[ -t 0 ] && [ -t 1 ] && echo TTY; stty size; echo err >&2; exit 2"],
            tty=True,
        )
        self.assertEqual(self.notes.output("t"), b"TTY\r\n24 80\r\nerr\r\n")
        self.assertEqual(
            {p.get("stream") for m, p in self.notes.of("t") if m == "process/output"}, {"pty"}
        )
        self.assertEqual(self.notes.of("t")[-2][1]["exitCode"], 2)

    async def test_echoAndControllingTerminal(self) -> None:
        await self.table.start(
            execParams(
                "e", ["bash", "-c", "read x; echo got:$x; exec </dev/tty && echo ctty"], tty=True
            )
        )
        self.assertEqual(self.table.write(WriteParams("e", b"typed\n")), {"status": "accepted"})
        await self.notes.closed("e")
        self.assertEqual(self.notes.output("e"), b"typed\r\ngot:typed\r\nctty\r\n")
        # after a normal exit the reference still accepts tty writes
        self.assertEqual(self.table.write(WriteParams("e", b"hi")), {"status": "accepted"})

    async def test_ptySpawnErrors(self) -> None:
        start = self.table.start
        await self.assertRpcError(
            -32603,
            "Unable to spawn true because:\nUnable to resolve the PATH",
            start(execParams("a", ["true"], env={}, tty=True)),
        )
        await self.assertRpcError(
            -32603,
            'Unable to spawn nope because:\nNo viable candidates found in PATH "/usr/bin:/bin"',
            start(execParams("a", ["nope"], env={"PATH": "/usr/bin:/bin"}, tty=True)),
        )
        await self.assertRpcError(
            -32603,
            "Unable to spawn /tmp because it is a directory",
            start(execParams("a", ["/tmp"], tty=True)),
        )
        await self.assertRpcError(
            -32603, "missing program for PTY spawn", start(execParams("a", [""], tty=True))
        )

    async def test_missingCwdFallsBackToHome(self) -> None:
        await self.run_(
            "h", ["pwd"], env={"PATH": ENVIRON["PATH"], "HOME": "/usr"}, cwd="/nonexist", tty=True
        )
        self.assertEqual(self.notes.output("h"), b"/usr\r\n")


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
