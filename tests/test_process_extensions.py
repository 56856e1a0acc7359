"""Our ``process/closeStdin`` and ``process/resize`` extensions, on real processes.

Neither Codex dialect has them (probed: -32601); ``codex-exec run -i`` ends a piped stdin with the
first, ``run --tty`` follows the local terminal's size with the second.
"""

from __future__ import annotations

from tests.support.processes import ProcessTestCase, execParams
from twisted_exec.compat import params
from twisted_exec.wire.errors import RpcError


class CloseStdinTests(ProcessTestCase):
    async def test_wcSeesEofAfterEveryByte(self) -> None:
        await self.table.start(execParams("p", ["wc", "-c"], pipeStdin=True))
        written = self.table.write(params.WriteParams("p", b"x" * 100_000))
        self.assertEqual(written, {"status": "accepted"})
        self.assertEqual(self.table.closeStdin(params.CloseStdinParams("p")), {})
        await self.notes.closed("p")
        self.assertEqual(self.notes.output("p").strip(), b"100000")
        # after the close, writes are refused as for a process without a piped stdin
        self.assertEqual(
            self.table.write(params.WriteParams("p", b"more")), {"status": "stdinClosed"}
        )

    async def test_errors(self) -> None:
        with self.assertRaises(RpcError) as unknown:
            self.table.closeStdin(params.CloseStdinParams("nope"))
        self.assertEqual(unknown.exception.message, "unknown process id nope")
        await self.table.start(execParams("t", ["cat"], tty=True))
        with self.assertRaises(RpcError) as onPty:
            self.table.closeStdin(params.CloseStdinParams("t"))
        self.assertIn("runs on a pty", onPty.exception.message)
        # without pipeStdin the stdin is /dev/null already: nothing to do
        await self.table.start(execParams("n", ["true"]))
        self.assertEqual(self.table.closeStdin(params.CloseStdinParams("n")), {})

    def test_paramsDecodeLikeTheOthers(self) -> None:
        self.assertEqual(
            params.parse(params.ResizeParams, {"processId": "p", "rows": 50, "cols": 132}),
            params.ResizeParams("p", 50, 132),
        )
        with self.assertRaises(RpcError) as missing:
            params.parse(params.ResizeParams, {"processId": "p", "rows": 50})
        self.assertEqual(missing.exception.message, "missing field `cols`")


class ResizeTests(ProcessTestCase):
    async def test_resizeReachesThePtyAndSignalsWinch(self) -> None:
        script = (
            "trap 'stty size; exit 0' WINCH; stty size; echo ready; while :; do sleep 0.05; done"
        )
        await self.table.start(execParams("r", ["/bin/sh", "-c", script], tty=True))
        await self.notes.outputContains("r", b"ready")
        self.assertIn(b"24 80", self.notes.output("r"))
        self.assertEqual(self.table.resize(params.ResizeParams("r", 50, 132)), {})
        await self.notes.closed("r")
        self.assertIn(b"50 132", self.notes.output("r"))

    async def test_resizeErrors(self) -> None:
        await self.table.start(execParams("p", ["sleep", "30"]))
        with self.assertRaises(RpcError) as noPty:
            self.table.resize(params.ResizeParams("p", 10, 10))
        self.assertEqual(noPty.exception.message, "process p has no pty to resize")
        await self.table.start(execParams("t", ["sleep", "30"], tty=True))
        with self.assertRaises(RpcError):
            self.table.resize(params.ResizeParams("t", 0, 10))


class IgnoredSignalsTests(ProcessTestCase):
    """An executor started with ``&`` from a script ignores SIGINT and SIGQUIT; its children
    must not inherit that, or Ctrl-C on a remote pty (and ``kill -INT``) stops nothing."""

    async def test_childrenGetDefaultDispositions(self) -> None:
        import signal

        for sig in (signal.SIGINT, signal.SIGQUIT):
            previous = signal.signal(sig, signal.SIG_IGN)
            self.addCleanup(signal.signal, sig, previous)
        probe = ["sh", "-c", "grep SigIgn /proc/self/status"]
        await self.table.start(execParams("pipe", probe))
        await self.table.start(execParams("pty", probe, tty=True))
        await self.notes.closed("pipe")
        await self.notes.closed("pty")
        for processId in ("pipe", "pty"):
            line = self.notes.output(processId).decode()
            mask = int(line.split(":")[1].strip(), 16)
            self.assertEqual(
                mask & ((1 << (signal.SIGINT - 1)) | (1 << (signal.SIGQUIT - 1))), 0, line
            )
