"""The harness client drives the reference executor (Codex CLI 0.131.0's ``codex exec-server
--remote``) through our rendezvous service: wire compatibility of the harness side.

Skipped when the binary is absent (``scripts/fetch_codex.sh`` fetches it).
"""

from __future__ import annotations

import os
import signal
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from tests.support.reference import binary131
from tests.test_full_loop import TOKEN, FullLoop, bounded
from twisted_exec.harness import CallError, StreamError
from twisted_exec.wire.reasons import EXECUTOR_DISCONNECTED


class _Reference(ProcessProtocol):
    def __init__(self) -> None:
        self.stderr = b""
        self.ended: Deferred[None] = Deferred()

    def errReceived(self, data: bytes) -> None:
        self.stderr += data

    def processEnded(self, reason: Failure) -> None:
        if not self.ended.called:
            self.ended.callback(None)


class HarnessAgainstReferenceTests(TestCase):
    timeout = 60

    async def test_referenceExecutorThroughOurRendezvous(self) -> None:
        binary = binary131()
        loop = FullLoop(self)
        codexHome = os.path.abspath(self.mktemp())  # under _trial_temp, not /tmp
        os.makedirs(codexHome)
        workdir = os.path.abspath(self.mktemp())
        os.makedirs(workdir)
        proto = _Reference()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/"),
            "CODEX_HOME": codexHome,
            "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN": TOKEN,
        }
        argv = [binary, "exec-server", "--remote", loop.url, "--executor-id", "ref"]
        transport = reactor.spawnProcess(proto, binary, argv, env=env, path=workdir)

        def stop() -> Any:
            if not proto.ended.called:
                transport.signalProcess("KILL")
            return proto.ended

        self.addCleanup(stop)
        await bounded(loop.server.router.waitForExecutor("ref"))
        self.assertIn(b"registered with executor_id ref", proto.stderr)

        connection = await loop.harness("ref")
        session = await bounded(connection.openSession())
        process = await bounded(
            session.spawn(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], workdir)
        )
        self.assertEqual(await bounded(process.finished), 3)
        self.assertEqual((process.stdout(), process.stderr()), (b"out\n", b"err\n"))

        data = os.urandom(10 * 1024 * 1024)
        path = os.path.join(workdir, "big.bin")
        await bounded(session.writeFile(path, data))
        self.assertTrue(await bounded(session.readFile(path)) == data)
        with self.assertRaises(CallError) as caught:
            await bounded(session.readFile(os.path.join(workdir, "missing")))
        self.assertEqual(caught.exception.code, -32004)

        # a second stream on the same websocket is an independent session
        other = await bounded(connection.openSession())
        self.assertNotEqual(other.sessionId, session.sessionId)
        entries = await bounded(other.readDirectory(workdir))
        self.assertEqual([e["fileName"] for e in entries], ["big.bin"])

        # the reference dies while a call waits: a clear stream error
        sleeper = await bounded(session.spawn(["/bin/sleep", "3"], workdir))
        waiting = session.read(sleeper.processId, afterSeq=0, waitMs=20_000)
        transport.signalProcess(signal.SIGKILL)
        with self.assertRaises(StreamError) as lost:
            await bounded(waiting, 5)
        self.assertEqual(lost.exception.reason, EXECUTOR_DISCONNECTED)
