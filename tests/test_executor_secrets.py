"""The registry bearer is in neither a child's nor the executor's ``/proc/<pid>/environ``.

A real ``twistd codex-executor --remote`` child registers with the test cloud, then runs a
command with ``envPolicy {inherit: all, ignoreDefaultExcludes: true}`` (what the Codex CLI
sends); both environments are read from ``/proc`` while the command runs.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SkipTest, TestCase

from tests.logguard import GUARD
from tests.support.relay import startTestCloud
from twisted_exec.testing.executorproc import ExecutorProcess

TOKEN = "tok-EXECSECRETS-registry-0123456789"
API_KEY = "sk-EXECSECRETS-api-key-0123456789"


def bounded(d: Deferred[Any], seconds: float = 30) -> Deferred[Any]:
    return d.addTimeout(seconds, reactor)


class ChildAndExecutorEnvironTests(TestCase):
    timeout = 90

    async def test_bearerInNoProcEnviron(self) -> None:
        if not os.path.exists("/proc/self/environ"):
            raise SkipTest("needs Linux /proc")
        GUARD.learn(TOKEN)
        GUARD.learn(API_KEY)
        rendezvous, registry = startTestCloud(self, TOKEN)
        executor = ExecutorProcess(
            reactor,
            registry.baseUrl,
            "secrets-box",
            TOKEN,
            secrets=(API_KEY,),
            extraEnv={"CODEX_API_KEY": API_KEY, "COPY_OF_THE_BEARER": TOKEN},
        )
        self.addCleanup(lambda: executor.terminate() if executor.running else None)
        conn = await bounded(rendezvous.waitForConnection(1))
        stream = conn.stream("s1")
        await bounded(stream.initialize())
        reply = await bounded(
            stream.request(
                "process/start",
                {
                    "processId": "p1",
                    "argv": ["sh", "-c", "echo started; exec cat"],
                    "cwd": "/",
                    "env": {},
                    "envPolicy": {
                        "inherit": "all",
                        "ignoreDefaultExcludes": True,
                        "exclude": [],
                        "set": {},
                        "includeOnly": [],
                    },
                    "tty": False,
                    "pipeStdin": True,
                },
            )
        )
        self.assertIn("result", reply, reply)
        children = executor.children()
        self.assertTrue(children, "the command should be running")
        for pid in (executor.pid, *children):
            with open(f"/proc/{pid}/environ", "rb") as f:
                block = f.read()
            self.assertNotIn(TOKEN.encode(), block, pid)
            self.assertNotIn(API_KEY.encode(), block, pid)
            if pid != executor.pid:
                names = {entry.partition(b"=")[0] for entry in block.split(b"\0")}
                self.assertNotIn(b"CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN", names)
                self.assertNotIn(b"COPY_OF_THE_BEARER", names)
                self.assertIn(b"PATH", names)  # inherit: all did inherit the rest
        with open(f"/proc/{executor.pid}/environ", "rb") as f:
            self.assertIn(b"CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN=\0", f.read())
        await bounded(stream.request("process/terminate", {"processId": "p1"}))
        self.assertEqual(await bounded(executor.terminate()), 0)
        self.assertEqual(executor.scan.secretLines, 0)
