"""ProcessTable with real processes: process/terminate, process groups and grandchildren,
the exit grace, and killAll.
"""

from __future__ import annotations

from twisted.internet import defer

from tests.support.processes import (
    ProcessTestCase,
    execParams,
    until,
)
from twisted_exec.compat.params import (
    TerminateParams,
)
from twisted_exec.testing.executorproc import processGone


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
