"""``twistd codex-executor`` as a user runs it: a real subprocess, real stdout and stderr."""

from __future__ import annotations

import os
import signal
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.trial.unittest import SkipTest, TestCase
from twisted.web import resource, server

from tests.support.children import ChildOutput
from tests.support.twistd import pluginInstalled, spawnTwistd
from twisted_exec.testing.wsclient import connectJsonRpc


class TwistdCommandLineTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        if not pluginInstalled():
            raise SkipTest("the codex-executor twistd plugin is not installed (pip install .)")

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> ChildOutput:
        return spawnTwistd(self, *args, env=env)[1]

    def test_localModePrintsOnlyTheUrlOnStdoutAndServes(self) -> Any:
        async def go() -> None:
            proto = self.spawn("codex-executor", "--listen", "ws://127.0.0.1:0")
            url = await proto.firstLine.addTimeout(20, reactor)
            self.assertRegex(url, r"^ws://127\.0\.0\.1:\d+$")
            client = await connectJsonRpc(reactor, url)
            await client.handshake()
            meta = await client.call("fs/getMetadata", {"path": "/"})
            self.assertTrue(meta["isDirectory"])
            await client.close()
            os.kill(proto.transport.pid, signal.SIGTERM)  # type: ignore[union-attr]
            code = await proto.ended.addTimeout(10, reactor)
            self.assertEqual(code, 0, proto.stderr.decode()[-2000:])
            self.assertEqual(proto.stdout.decode(), url + "\n")
            self.assertIn(b"codex exec-server listening on", proto.stderr)

        return ensureDeferred(go())

    def test_badListenIsAUsageError(self) -> Any:
        async def go() -> None:
            proto = self.spawn("codex-executor", "--listen", "http://x:1")
            code = await proto.ended.addTimeout(20, reactor)
            self.assertEqual(code, 2)
            # One line, message first, on stderr (not twistd's 40 lines of options on stdout).
            self.assertEqual(
                proto.stderr.decode().strip(),
                "Error: --listen expects ws://IP:PORT or stdio, got 'http://x:1' "
                "(see twistd codex-executor --help)",
            )
            self.assertEqual(proto.stdout, b"")

        return ensureDeferred(go())

    def test_missingTokenFailsClearly(self) -> Any:
        async def go() -> None:
            proto = self.spawn(
                "codex-executor", "--remote", "http://127.0.0.1:1", "--executor-id", "x"
            )
            code = await proto.ended.addTimeout(20, reactor)
            self.assertEqual(code, 1)
            self.assertIn(
                b"Error: executor registry authentication error: executor registry bearer "
                b"token environment variable `CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN` is not set",
                proto.stderr,
            )

        return ensureDeferred(go())

    def test_registry401ExitsNonZeroWithTheRegistrysMessage(self) -> Any:
        class Unauthorized(resource.Resource):
            isLeaf = True

            def render_POST(self, request: Any) -> bytes:
                request.setResponseCode(401)
                return b'{"error":{"code":"unauthorized","message":"token revoked"}}'

        site: Any = server.Site(Unauthorized())
        port: Any = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)

        async def go() -> None:
            token = "s3cr3t-token-value"
            proto = self.spawn(
                "codex-executor",
                "--remote",
                f"http://127.0.0.1:{port.getHost().port}",
                "--executor-id",
                "exec-1",
                env={"CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN": token},
            )
            code = await proto.ended.addTimeout(20, reactor)
            self.assertEqual(code, 1)
            self.assertIn(
                b"Error: executor registry authentication error: executor registry "
                b"authentication failed (401 Unauthorized): token revoked",
                proto.stderr,
            )
            self.assertNotIn(token.encode(), proto.stderr + proto.stdout)
            # a fatal exit announces no retry, and Twisted's factory lines are gone
            for noise in (b"Scheduling retry", b"reconnecting in", b"Starting factory", b"0x"):
                self.assertNotIn(noise, proto.stderr)

        return ensureDeferred(go())
