"""ProcessTable with real processes: the notifications of a process, their order, and what
stays readable after it closed.
"""

from __future__ import annotations

import base64

from twisted.internet import defer

from tests.support.processes import (
    ENVIRON,
    ProcessTestCase,
    b64,
    execParams,
)
from twisted_exec.compat.params import (
    ReadParams,
)


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
