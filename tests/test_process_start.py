"""ProcessTable with real processes: process/start (errors, environment, cwd, session) and PTYs."""

from __future__ import annotations

import os
import tempfile

from tests.support.processes import (
    ENVIRON,
    ProcessTestCase,
    execParams,
)
from twisted_exec.compat.params import (
    ExecEnvPolicy,
    WriteParams,
)


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
