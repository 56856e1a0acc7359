"""``--exit-on-stdin-close``: a websocket executor ends with its parent's stdin pipe."""

from __future__ import annotations

import os
import signal
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from tests.support.children import ChildOutput
from tests.support.twistd import pluginInstalled, spawnTwistd
from twisted_exec.executor.stdin_watch import StdinWatch, wantedByEnvironment
from twisted_exec.testing.wsclient import connectJsonRpc


class _FakeStandardIO:
    def __init__(self, protocol: Any, reactor: Any = None) -> None:
        self.protocol = protocol


class _Reactor:
    stopped = 0

    def stop(self) -> None:
        self.stopped += 1


class StdinWatchTests(SynchronousTestCase):
    def test_eofStopsTheReactorOnce(self) -> None:
        fakeReactor = _Reactor()
        made: list[_FakeStandardIO] = []

        def standardIO(protocol: Any, reactor: Any = None) -> _FakeStandardIO:
            made.append(_FakeStandardIO(protocol, reactor))
            return made[-1]

        watch = StdinWatch(fakeReactor, standardIO)
        watch.startService()
        made[0].protocol.dataReceived(b"anything at all")
        self.assertEqual(fakeReactor.stopped, 0)
        made[0].protocol.connectionLost()
        self.assertEqual(fakeReactor.stopped, 1)
        watch.stopService()
        made[0].protocol.connectionLost()  # after stop: nothing more
        self.assertEqual(fakeReactor.stopped, 1)

    def test_environmentForm(self) -> None:
        self.assertTrue(wantedByEnvironment({"CODEX_EXEC_SERVER_EXIT_ON_STDIN_CLOSE": "1"}))
        self.assertTrue(wantedByEnvironment({"CODEX_EXEC_SERVER_EXIT_ON_STDIN_CLOSE": "true"}))
        for off in ("", "0", "false"):
            self.assertFalse(wantedByEnvironment({"CODEX_EXEC_SERVER_EXIT_ON_STDIN_CLOSE": off}))
        self.assertFalse(wantedByEnvironment({}))


class ExitOnStdinCloseTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        if not pluginInstalled():
            raise SkipTest("the codex-executor twistd plugin is not installed (pip install .)")

    def spawn(self, *args: str) -> tuple[Any, ChildOutput]:
        return spawnTwistd(self, "codex-executor", *args)

    def test_closingStdinEndsTheExecutor(self) -> Any:
        async def go() -> None:
            transport, proto = self.spawn("--listen", "ws://127.0.0.1:0", "--exit-on-stdin-close")
            url = await proto.firstLine.addTimeout(20, reactor)
            client = await connectJsonRpc(reactor, url)
            await client.handshake()
            transport.closeStdin()
            code = await proto.ended.addTimeout(10, reactor)
            self.assertEqual(code, 0, proto.stderr.decode()[-2000:])
            self.assertIn(b"stdin closed (--exit-on-stdin-close): exiting", proto.stderr)

        return ensureDeferred(go())

    def test_withoutTheFlagStdinDoesNotMatter(self) -> Any:
        async def go() -> None:
            transport, proto = self.spawn("--listen", "ws://127.0.0.1:0")
            url = await proto.firstLine.addTimeout(20, reactor)
            transport.closeStdin()
            client = await connectJsonRpc(reactor, url)  # still serving after the EOF
            await client.handshake()
            meta = await client.call("fs/getMetadata", {"path": "/"})
            self.assertTrue(meta["isDirectory"])
            await client.close()
            os.kill(transport.pid, signal.SIGTERM)
            self.assertEqual(await proto.ended.addTimeout(10, reactor), 0)

        return ensureDeferred(go())
