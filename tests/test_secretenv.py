"""Secrets never reach a child, and leave our own environment (``/proc/<pid>/environ``)."""

from __future__ import annotations

import os
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from twisted_exec.net.secretenv import SECRET_VARIABLES, SecretScrubber, scrubOwnEnvironment
from twisted_exec.testing.executorproc import SOURCE_ROOT

TOKEN = "tok-SECRETENV-0123456789"


class ScrubberTests(TestCase):
    def test_namesAndValues(self) -> None:
        scrubber = SecretScrubber()
        scrubber.learn(TOKEN)
        scrubber.learn("short")  # too short to match by value
        env = {
            "PATH": "/bin",
            "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN": TOKEN,
            "CODEX_API_KEY": "sk-other",
            "MY_COPY": f"Bearer {TOKEN}",
            "NOTE": "short",
        }
        self.assertEqual(scrubber.scrub(env), {"PATH": "/bin", "NOTE": "short"})
        self.assertIn("CODEX_API_KEY", SECRET_VARIABLES)
        self.assertNotIn(TOKEN, repr(scrubber))

    def test_ownEnvironmentMapping(self) -> None:
        env = {"CODEX_API_KEY": "sk-x", "HOME": "/root", "COPY": TOKEN}
        scrubber = SecretScrubber()
        scrubber.learn(TOKEN)
        self.assertFalse(scrubOwnEnvironment(scrubber=scrubber, environ=env))
        self.assertEqual(env, {"HOME": "/root"})


CHILD = """
import sys
from twisted_exec.net.secretenv import SecretScrubber, scrubOwnEnvironment
scrubber = SecretScrubber()
scrubber.learn(sys.argv[1])
print("rewritten" if scrubOwnEnvironment(scrubber=scrubber) else "not-rewritten", flush=True)
sys.stdin.read()
"""


class _Child(ProcessProtocol):
    def __init__(self) -> None:
        self.ready: Deferred[str] = Deferred()
        self.ended: Deferred[None] = Deferred()
        self.out = b""

    def outReceived(self, data: bytes) -> None:
        self.out += data
        if b"\n" in self.out and not self.ready.called:
            self.ready.callback(self.out.decode().strip())

    def processEnded(self, reason: Failure) -> None:
        if not self.ready.called:
            self.ready.errback(reason)
        self.ended.callback(None)


class ProcEnvironTests(TestCase):
    timeout = 30

    async def test_procEnvironNoLongerShowsTheValues(self) -> None:
        """The value is gone from ``/proc/<pid>/environ``, read from outside the process."""
        child = _Child()
        env = {
            **os.environ,
            "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN": TOKEN,
            "UNRELATED_COPY": TOKEN,
            "KEEP_ME": "visible",
            "PYTHONPATH": str(SOURCE_ROOT),  # trial runs from _trial_temp
        }
        transport: Any = reactor.spawnProcess(
            child,
            sys.executable,
            [sys.executable, "-c", CHILD, "tok-SECRETENV"],
            env=env,
            path=str(SOURCE_ROOT),
        )
        # argv[1] is a prefix only: the value scrub matches substrings.
        self.addCleanup(lambda: child.ended)
        try:
            said = await child.ready.addTimeout(20, reactor)
            with open(f"/proc/{transport.pid}/environ", "rb") as f:
                block = f.read()
        finally:
            transport.closeStdin()
        self.assertEqual(said, "rewritten")
        self.assertNotIn(TOKEN.encode(), block)
        self.assertIn(b"CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN=\0", block)
        self.assertIn(b"KEEP_ME=visible\0", block)
