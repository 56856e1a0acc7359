"""``codex-exec`` escapes remote text and redacts URLs in everything it prints."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from tests.logguard import GUARD
from tests.support.children import ChildOutput, spawnChild
from tests.support.relay import startRemoteExecutor, startRendezvous
from twisted_exec.cli.safetext import escapeControl, redactUrls, safe
from twisted_exec.executor.executor import Executor
from twisted_exec.rendezvous.auth import TokenSet
from twisted_exec.testing.executorproc import SOURCE_ROOT

TOKEN = "tok-CLISAFETY-0123456789"
EVIL = "evil\x1b]0;pwned\x07\x1b[2J\u202etxt.exe\nname"


class SafeTextTests(TestCase):
    def test_escapeControl(self) -> None:
        self.assertEqual(
            escapeControl(EVIL), "evil\\x1b]0;pwned\\x07\\x1b[2J\\u202etxt.exe\\x0aname"
        )
        self.assertEqual(escapeControl("naïve café ✓"), "naïve café ✓")
        self.assertEqual(escapeControl("c1\x9bx del\x7f"), "c1\\x9bx del\\x7f")

    def test_redactUrls(self) -> None:
        text = (
            "cannot reach http://alice:s3cretTOKEN@relay.example:8765/base?token=abc#frag: "
            "refused (see https://h/p?sig=1.2.3)."
        )
        self.assertEqual(
            redactUrls(text),
            "cannot reach http://relay.example:8765/base?<redacted>: refused "
            "(see https://h/p?<redacted>).",
        )
        self.assertEqual(redactUrls("at http://127.0.0.1:9\n"), "at http://127.0.0.1:9\n")
        self.assertNotIn("\x1b", safe("x \x1b[31m http://u:p@h/"))


def codexExec(case: TestCase, *args: str, env: dict[str, str] | None = None) -> ChildOutput:
    run = ChildOutput()
    environ = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT), **(env or {})}
    argv = [sys.executable, "-m", "twisted_exec.cli", *args]
    spawnChild(case, run, argv, environ, path=str(SOURCE_ROOT))
    return run


class CodexExecOverSocketsTests(TestCase):
    timeout = 90

    async def test_remoteFileNamesAreEscaped(self) -> None:
        GUARD.learn(TOKEN)
        server, _, url = startRendezvous(self, TokenSet([TOKEN]))
        executor = Executor(reactor)
        self.addCleanup(executor.shutdown)
        startRemoteExecutor(self, executor, url, "box", TOKEN)
        await server.router.waitForExecutor("box").addTimeout(15, reactor)
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        with open(os.path.join(directory, EVIL), "w") as f:
            f.write("x")
        run = codexExec(
            self,
            "ls",
            directory,
            "-e",
            "box",
            env={"CODEX_RENDEZVOUS_URL": url, "CODEX_RENDEZVOUS_TOKEN": TOKEN},
        )
        code = await run.ended.addTimeout(60, reactor)
        self.assertEqual(code, 0, run.stderr)
        self.assertNotIn(b"\x1b", run.stdout)
        self.assertNotIn(b"\x07", run.stdout)
        self.assertIn(b"evil\\x1b]0;pwned\\x07\\x1b[2J\\u202etxt.exe\\x0aname", run.stdout)

    async def test_urlSecretsNeverShown(self) -> None:
        from twisted.internet.protocol import ServerFactory

        port: Any = reactor.listenTCP(0, ServerFactory(), interface="127.0.0.1")
        closed = port.getHost().port
        await port.stopListening()
        secret = "userinfo-SECRET-0123"
        GUARD.learn(secret)
        run = codexExec(
            self,
            "ls-executors",
            "--rendezvous",
            f"http://alice:{secret}@127.0.0.1:{closed}/?token={secret}",
            env={"CODEX_RENDEZVOUS_TOKEN": TOKEN},
        )
        code = await run.ended.addTimeout(60, reactor)
        self.assertEqual(code, 125, run.stderr)
        self.assertNotIn(secret.encode(), run.stderr + run.stdout)
        self.assertIn(f"http://127.0.0.1:{closed}/?<redacted>".encode(), run.stderr)
