"""Containment: a ``setsid`` grandchild dies with its session; children get default signals.

Round 1 killed each child's process group only: a grandchild that called ``setsid`` left the
group and survived both the session and the executor. These tests run real processes.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from typing import Any

from twisted.internet import reactor
from twisted.trial import unittest

from tests.support.processes import ENVIRON, Collector, execParams, until
from twisted_exec.executor.resources.containment import (
    Containment,
    descendants,
    isChildSubreaper,
    sessionOf,
)
from twisted_exec.executor.resources.processes import ProcessTable
from twisted_exec.testing.executorproc import processGone

#: Prints the pid of a grandchild in a session of its own, then exits (or waits, with "wait").
SETSID_GRANDCHILD = "setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $!"


def pidFromOutput(notes: Collector, processId: str) -> int:
    return int(notes.output(processId).split()[0])


class SubreaperTests(unittest.TestCase):
    """ProcessTable with the executor's Containment (subreaper enabled for this process)."""

    timeout = 30

    def setUp(self) -> None:
        self.containment = Containment()
        self.wasSubreaper = isChildSubreaper()
        if not self.containment.enable():
            raise unittest.SkipTest("PR_SET_CHILD_SUBREAPER is not available here")
        self.addCleanup(self._restore)
        self.notes = Collector()
        self.table = ProcessTable(
            reactor, self.notes, environ=ENVIRON, containment=self.containment
        )
        self.strays: list[int] = []

    def _restore(self) -> None:
        for pid in self.strays:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.table.killAll()
        self.containment.sweep()
        if not self.wasSubreaper:
            from twisted_exec.executor.resources.containment import setChildSubreaper

            setChildSubreaper(False)

    async def test_orphanedSetsidGrandchildKilledWithSession(self) -> None:
        """The child exits at once; its setsid grandchild is re-parented to us, then killed."""
        await self.table.start(execParams("p1", ["/bin/sh", "-c", SETSID_GRANDCHILD]))
        await self.notes.closed("p1")
        grandchild = pidFromOutput(self.notes, "p1")
        self.strays.append(grandchild)
        self.assertFalse(processGone(grandchild))
        self.assertNotEqual(sessionOf(grandchild), sessionOf(os.getpid()))
        self.table.killAll()  # the session ends
        await until(lambda: processGone(grandchild))
        # ... and its zombie is ours to reap (re-parented to us, not to init): the executor's
        # periodic sweep does it.
        self.assertIn(grandchild, self.containment.adopted())

        def reaped() -> bool:
            self.containment.sweep()
            return not os.path.exists(f"/proc/{grandchild}")

        await until(reaped)

    async def test_setsidGrandchildUnderLiveParentKilled(self) -> None:
        await self.table.start(
            execParams("p1", ["/bin/sh", "-c", SETSID_GRANDCHILD + "; exec sleep 300"])
        )
        await self.notes.outputContains("p1", b"\n")
        grandchild = pidFromOutput(self.notes, "p1")
        self.strays.append(grandchild)
        self.table.killAll()
        await self.notes.closed("p1")
        await until(lambda: processGone(grandchild))

    async def test_adoptedZombiesReaped(self) -> None:
        """An adopted orphan that exits on its own does not stay a zombie of ours."""
        script = "setsid sh -c 'sleep 0.2' </dev/null >/dev/null 2>&1 & echo $!"
        await self.table.start(execParams("p1", ["/bin/sh", "-c", script]))
        await self.notes.closed("p1")
        orphan = pidFromOutput(self.notes, "p1")

        def reaped() -> bool:
            self.containment.sweep()
            return not os.path.exists(f"/proc/{orphan}")

        await until(reaped)

    def test_descendantsWalk(self) -> None:
        child = subprocess.Popen(["/bin/sh", "-c", "sleep 30 & sleep 30 & wait"])
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        for _ in range(200):
            if len(descendants(child.pid)) == 2:
                break
            os.sched_yield()
            import time

            time.sleep(0.01)
        found = descendants(child.pid)
        self.assertEqual(len(found), 2)
        for pid in found:
            os.kill(pid, signal.SIGKILL)


class ExecutorSigtermTests(unittest.TestCase):
    """A real executor process: SIGTERM kills the setsid grandchild of a running session."""

    timeout = 60

    async def test_grandchildGoneAfterSigterm(self) -> None:
        from twisted_exec.testing.wsclient import connectJsonRpc

        tmp = tempfile.mkdtemp()
        portFile = os.path.join(tmp, "url")
        urlFile = open(portFile, "wb")  # noqa: SIM115 - the child writes it; closed below
        self.addCleanup(urlFile.close)
        executor = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from twisted_exec.executor.options import main; main(sys.argv[1:])",
                "--listen",
                "ws://127.0.0.1:0",
            ],
            stdout=urlFile,
            stderr=subprocess.DEVNULL,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )

        def stopExecutor() -> None:
            if executor.poll() is None:
                executor.kill()
            executor.wait()

        self.addCleanup(stopExecutor)
        await until(lambda: os.path.getsize(portFile) > 0, 20)
        with open(portFile) as f:
            url = f.read().split()[0]
        client: Any = await connectJsonRpc(reactor, url)
        self.addCleanup(client.close)
        await client.handshake()
        script = SETSID_GRANDCHILD + "; exec sleep 300"
        await client.call(
            "process/start",
            {
                "processId": "p",
                "argv": ["/bin/sh", "-c", script],
                "cwd": tmp,
                "env": {"PATH": ENVIRON["PATH"]},
                "tty": False,
            },
        )
        read = await client.call("process/read", {"processId": "p", "waitMs": 5000})
        grandchild = int(base64.b64decode(read["chunks"][0]["chunk"]).split()[0])

        def killGrandchild() -> None:
            if not processGone(grandchild):
                os.kill(grandchild, signal.SIGKILL)

        self.addCleanup(killGrandchild)
        executor.send_signal(signal.SIGTERM)
        await until(lambda: executor.poll() is not None, 20)
        await until(lambda: processGone(grandchild), 10)


class ChildSignalTests(unittest.TestCase):
    """Children start with default SIGINT/SIGQUIT even when the executor ignores them."""

    timeout = 20

    def setUp(self) -> None:
        saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGQUIT)}
        for signum in saved:
            signal.signal(signum, signal.SIG_IGN)  # as under nohup or a shell's "&"

        def restore() -> None:
            for signum, handler in saved.items():
                signal.signal(signum, handler)

        self.addCleanup(restore)

    async def test_defaultDispositionsInChild(self) -> None:
        notes = Collector()
        table = ProcessTable(reactor, notes, environ=ENVIRON)
        self.addCleanup(table.killAll)
        await table.start(execParams("p", ["grep", "SigIgn", "/proc/self/status"]))
        await notes.closed("p")
        ignored = int(notes.output("p").split()[1], 16)
        # The executor itself still ignores them (a handler that does nothing).
        for signum in (signal.SIGINT, signal.SIGQUIT):
            self.assertNotIn(signal.getsignal(signum), (signal.SIG_DFL, signal.default_int_handler))
        self.assertFalse(ignored & (1 << (signal.SIGINT - 1)), hex(ignored))
        self.assertFalse(ignored & (1 << (signal.SIGQUIT - 1)), hex(ignored))
