"""What start-up imports: stdio needs no websocket, HTTP or protobuf stack, and the local
websocket mode prints its URL before it imports autobahn and twisted.web.

Start-up time is what a client pays for every stdio session it spawns (bench/startup.py
measures it; nothing is timed here). Each check runs in a fresh interpreter, so ``sys.modules``
shows exactly what that path imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

ROOT = Path(__file__).resolve().parent.parent
HEAVY = (
    "autobahn",
    "treq",
    "google.protobuf",
    "twisted.web",
    "twisted_exec.executor.transports.relay",
)

STDIO = """
import json, sys
from twisted.internet import reactor
from twisted_exec.executor.options import ExecutorOptions, makeService
options = ExecutorOptions()
options.parseOptions(["--listen", "stdio", "--concurrent-requests", "2"])
makeService(options, reactor)
print(json.dumps(sorted(sys.modules)))
"""

WEBSOCKET = """
import json, sys
from twisted.internet import reactor
from twisted_exec.executor.options import ExecutorOptions, makeService
options = ExecutorOptions()
options.parseOptions(["--listen", "ws://127.0.0.1:0"])
top = makeService(options, reactor)
[local] = list(top)
announced = []
local.announce = announced.append
local.privilegedStartService()
before = sorted(sys.modules)
local._listening.site()  # what the next reactor turn does
print(json.dumps({"url": announced, "before": before, "after": sorted(sys.modules)}))
local.port.stopListening()
"""


def run(script: str) -> object:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        check=True,
        timeout=60,
        env=env,
        cwd=str(ROOT),
    ).stdout
    return json.loads(out.splitlines()[-1])


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


class StartupImportTests(SynchronousTestCase):
    def test_stdioImportsNoWebsocketStack(self) -> None:
        modules = run(STDIO)
        assert isinstance(modules, list)
        self.assertEqual(heavy(modules), [])

    def test_urlBeforeTheWebsocketStack(self) -> None:
        result = run(WEBSOCKET)
        assert isinstance(result, dict)
        self.assertEqual(len(result["url"]), 1)
        self.assertTrue(result["url"][0].startswith("ws://127.0.0.1:"))
        self.assertEqual(heavy(result["before"]), [])
        self.assertIn("autobahn.twisted.websocket", result["after"])
        self.assertIn("twisted.web.server", result["after"])
