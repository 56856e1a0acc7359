"""Clean shutdown of a real ``twistd -n codex-executor``: SIGTERM kills every process group,
closes the websocket with a close frame (1000) and exits 0 within 5 s."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase

from tests.support.waiting import pidFromOutput, pollUntil
from twisted_exec.testing.wsclient import connectJsonRpc

ROOT = Path(__file__).resolve().parent.parent
TWISTD = Path(sys.executable).with_name("twistd")
TIMEOUT = 30


class _Executor(ProcessProtocol):
    """A twistd child: its first stdout line is the URL; stderr is kept for failure messages."""

    def __init__(self) -> None:
        self.url: Deferred[str] = Deferred()
        self.ended: Deferred[int | None] = Deferred()
        self._out = b""
        self.err = b""

    def outReceived(self, data: bytes) -> None:
        self._out += data
        if not self.url.called and b"\n" in self._out:
            self.url.callback(self._out.split(b"\n", 1)[0].decode().strip())

    def errReceived(self, data: bytes) -> None:
        self.err += data

    def processEnded(self, reason: Failure) -> None:
        code = getattr(reason.value, "exitCode", None)
        if not self.url.called:
            self.url.errback(RuntimeError(f"twistd ended ({code}): {self.err.decode()[-2000:]}"))
        self.ended.callback(code)


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class TwistdShutdownTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        if not TWISTD.exists():
            raise SkipTest(f"no twistd next to {sys.executable}")

    def test_sigtermKillsGroupsClosesWebsocketExitsZero(self) -> Any:
        async def go() -> None:
            executor = _Executor()
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            transport = reactor.spawnProcess(  # type: ignore[attr-defined]
                executor,
                str(TWISTD),
                [
                    str(TWISTD),
                    "-n",
                    "--pidfile=",
                    "codex-executor",
                    "--listen",
                    "ws://127.0.0.1:0",
                ],
                env=env,
                path=str(ROOT),
            )

            def killIfRunning() -> None:
                if not executor.ended.called:
                    transport.signalProcess("KILL")

            self.addCleanup(killIfRunning)
            url = await executor.url.addTimeout(TIMEOUT, reactor)
            self.assertRegex(url, r"^ws://127\.0\.0\.1:\d+$")
            client = await connectJsonRpc(reactor, url)
            await client.handshake()

            starts = {
                # a child that prints its own pid and stays
                "plain": (["sh", "-c", "echo pid=$$; exec sleep 1000"], False),
                # a background grandchild in the same group, whose parent waits
                "grand": (["sh", "-c", "sleep 1000 & echo pid=$!; wait"], False),
                # a shell on a pty
                "tty": (["sh", "-c", "echo pid=$$; exec sleep 1000"], True),
            }
            pids: dict[str, int] = {}
            for processId, (argv, tty) in starts.items():
                await client.call(
                    "process/start",
                    {
                        "processId": processId,
                        "argv": argv,
                        "cwd": str(ROOT),
                        "env": {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                        "tty": tty,
                    },
                )
                pids[processId] = await pidFromOutput(client.nextNotification, processId)
            for processId, pid in pids.items():
                self.assertTrue(_alive(pid), processId)

            began = time.monotonic()
            transport.signalProcess("TERM")
            code = await executor.ended.addTimeout(10, reactor)
            elapsed = time.monotonic() - began
            closeCode = await client.closed.addTimeout(5, reactor)

            self.assertEqual(code, 0, executor.err.decode()[-2000:])
            self.assertLess(elapsed, 5.0)
            self.assertEqual(closeCode, 1000)
            # SIGKILL went out before twistd exited; give the kernel a moment to finish them.
            await pollUntil(lambda: not any(_alive(pid) for pid in pids.values()), 0.02, 5)
            for pid in pids.values():
                if _alive(pid):  # pragma: no cover - failure path; do not leak
                    os.kill(pid, signal.SIGKILL)

        return ensureDeferred(go()).addTimeout(TIMEOUT, reactor)


class _NeverClosing:
    """A connection whose close frame never leaves (its peer stopped reading).

    Only an abort ends it, and its loss is then reported on a later turn, as a TCP transport's.
    """

    def __init__(self, clock: Any) -> None:
        self.transport = self
        self.disconnected = False
        self.closes: list[int | None] = []
        self.aborted = False
        self._clock = clock
        self._lost: list[Deferred[None]] = []

    def whenLost(self) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self._lost.append(d)
        return d

    def sendClose(self, code: int | None = None, reason: str | None = None) -> None:
        self.closes.append(code)

    def dropConnection(self, abort: bool = False) -> None:
        pass

    def abortConnection(self) -> None:
        self.aborted = True
        self._clock.callLater(0, self._connectionLost)

    def _connectionLost(self) -> None:
        self.disconnected = True
        waiters, self._lost = self._lost, []
        for d in waiters:
            if not d.called:
                d.callback(None)


class StopTimeoutTests(TestCase):
    """``LocalWebSocketService`` waits ``closeTimeout`` for close frames, then aborts."""

    def test_abortsAfterCloseTimeout(self) -> None:
        from twisted.internet.task import Clock

        from twisted_exec.executor.service import LocalWebSocketService

        clock = Clock()
        service = LocalWebSocketService(clock, object(), "ws://127.0.0.1:0")  # type: ignore[arg-type]
        stuck = _NeverClosing(clock)
        service.factory.connections.add(stuck)  # type: ignore[arg-type]
        service.running = True
        stopped = service.stopService()
        self.assertEqual(stuck.closes, [1000])
        self.assertNoResult(stopped)
        clock.advance(service.closeTimeout - 0.01)
        self.assertFalse(stuck.aborted)
        clock.advance(0.02)
        self.assertTrue(stuck.aborted)
        self.assertTrue(stuck.disconnected)  # the stop waited for the abort to end it
        self.successResultOf(stopped)
