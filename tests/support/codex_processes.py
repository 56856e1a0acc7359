"""Child processes for the Codex CLI end-to-end tests: an exec-server in local websocket mode
(the reference ``codex exec-server --listen`` or ours under ``twistd``), ``codex exec`` itself,
and the directories and environment they run in.

Every wait is bounded; a child that outlives its test gets SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet import defer, error
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial import unittest

ROOT = Path(__file__).resolve().parent.parent.parent

# Starts twistd with our plugin from the source tree: ``twistd_plugins/`` is only mapped onto
# ``twisted/plugins/`` by a regular install, so add it to the plugin path unless installed.
OURS_LAUNCHER = """\
import sys, twisted.plugins
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
plugins = sys.argv.pop(1)
if not any(getattr(p, "tapname", "") == "codex-executor" for p in getPlugins(IServiceMaker)):
    twisted.plugins.__path__.append(plugins)
from twisted.scripts.twistd import run
sys.argv[0] = "twistd"
run()
"""

START_TIMEOUT = 20.0
CLI_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def isUnder(path: Path, ancestor: Path) -> bool:
    return path == ancestor or ancestor in path.parents


def freshBaseDir(case: unittest.TestCase) -> Path:
    """A fresh directory for one run, removed afterwards (unless $CODEX_E2E_KEEP is set).

    It is made in the current directory (trial's ``_trial_temp``, or the checkout under pytest)
    unless that is under /tmp or $TMPDIR, where the CLI refuses to set up CODEX_HOME; then
    under ``~/.cache``.  Runs share the parent, so their transcripts differ only in the name."""
    parent = Path.cwd().resolve()
    temps = [Path("/tmp").resolve(), Path(tempfile.gettempdir()).resolve()]
    if any(isUnder(parent, t) for t in temps):
        parent = Path.home() / ".cache" / "twisted-exec-e2e"
        parent.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="codex-e2e-", dir=parent))
    if not os.environ.get("CODEX_E2E_KEEP"):
        case.addCleanup(shutil.rmtree, base, True)
    return base


def childEnv(codexHome: Path, **extra: str) -> dict[str, str]:
    """A small, predictable environment; TMPDIR is dropped when it is an ancestor of
    CODEX_HOME (the CLI refuses to create helper binaries under a temporary dir)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(codexHome)),
        "LANG": "C.UTF-8",
        "CODEX_HOME": str(codexHome),
    }
    tmpdir = os.environ.get("TMPDIR")
    if tmpdir and not isUnder(codexHome.resolve(), Path(tmpdir).resolve()):
        env["TMPDIR"] = tmpdir
    env.update(extra)
    return env


class Collector(ProcessProtocol):
    """Collects a child's output; ``ended`` fires with its exit code (None when signalled).

    ``onLine`` sees every complete line of stdout."""

    def __init__(self, onLine: Callable[[str], None] | None = None) -> None:
        self.stdout = b""
        self.stderr = b""
        self.ended: Deferred[int | None] = Deferred()
        self._onLine = onLine
        self._partial = {1: b"", 2: b""}

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == 1:
            self.stdout += data
        elif childFD == 2:
            self.stderr += data
        if self._onLine is not None and childFD == 1:
            *lines, self._partial[childFD] = (self._partial[childFD] + data).split(b"\n")
            for line in lines:
                self._onLine(line.decode("utf-8", "replace").strip())

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(getattr(reason.value, "exitCode", None))


def firstOf(d: Deferred[Any], timeout: float, reactor: Any) -> Deferred[Any]:
    """A copy of ``d``'s result that times out, leaving ``d`` itself untouched."""
    copy: Deferred[Any] = Deferred()

    def passOn(result: Any) -> Any:
        if not copy.called:
            copy.callback(result)
        return result

    d.addBoth(passOn)
    return copy.addTimeout(timeout, reactor)


async def stopProcess(reactor: Any, transport: Any, proto: Collector) -> None:
    """SIGTERM, then SIGKILL, each with a bounded wait."""
    for sig in ("TERM", "KILL"):
        if proto.ended.called:
            return
        with contextlib.suppress(error.ProcessExitedAlready):
            transport.signalProcess(sig)
        try:
            await firstOf(proto.ended, STOP_TIMEOUT, reactor)
            return
        except defer.TimeoutError:
            continue


# Both print the bound URL alone on a line of stdout (port 0 picks a free port).
_URL_LINE = re.compile(r"^(ws://127\.0\.0\.1:(\d+))$")


@dataclass
class ChildProcess:
    """An exec-server or executor the test started (``kind``: ``reference`` or ``ours``);
    ``stop`` ends it, bounded."""

    kind: str
    pid: int
    transport: Any
    proto: Collector

    async def stop(self, reactor: Any) -> None:
        await stopProcess(reactor, self.transport, self.proto)


@dataclass
class ExecServer(ChildProcess):
    """An exec-server child process in local websocket mode, listening on ``url``."""

    url: str


def serverArgv(kind: str, codex: Path) -> list[str]:
    if kind == "reference":
        return [str(codex), "exec-server", "--listen", "ws://127.0.0.1:0"]
    return [
        sys.executable,
        "-c",
        OURS_LAUNCHER,
        str(ROOT / "twistd_plugins"),
        "-n",
        "--pidfile=",
        "codex-executor",
        "--listen",
        "ws://127.0.0.1:0",
    ]


async def startExecServer(reactor: Any, kind: str, codex: Path, base: Path) -> ExecServer:
    home = base / f"{kind}-server-home"
    home.mkdir()
    env = childEnv(home)
    if kind == "ours":
        env["PYTHONPATH"] = str(ROOT)
    found: Deferred[str] = Deferred()

    def onLine(line: str) -> None:
        match = _URL_LINE.match(line)
        if match and match.group(2) != "0" and not found.called:
            found.callback(match.group(1))

    proto = Collector(onLine)
    transport = reactor.spawnProcess(
        proto, serverArgv(kind, codex)[0], serverArgv(kind, codex), env=env, path=str(base)
    )

    def ended(code: int | None) -> int | None:
        if not found.called:
            found.errback(
                RuntimeError(f"{kind} exec-server exited ({code}): {proto.stderr[-2000:]!r}")
            )
        return code

    proto.ended.addCallback(ended)
    try:
        url = await found.addTimeout(START_TIMEOUT, reactor)
    except defer.TimeoutError:
        await stopProcess(reactor, transport, proto)
        raise AssertionError(
            f"{kind} exec-server printed no URL in {START_TIMEOUT} s; stdout "
            f"{proto.stdout[-2000:]!r}, stderr {proto.stderr[-2000:]!r}"
        ) from None
    except BaseException:
        await stopProcess(reactor, transport, proto)
        raise
    return ExecServer(kind, transport.pid, transport, proto, url)


@dataclass
class CliRun:
    exitCode: int | None
    stdout: str
    stderr: str


async def runCodexExec(
    reactor: Any, codex: Path, env: Mapping[str, str], workdir: Path, prompt: str
) -> CliRun:
    """``codex exec`` with stdin closed, bounded by CLI_TIMEOUT."""
    argv = [
        str(codex),
        "exec",
        "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",
        "--color",
        "never",
        "-C",
        str(workdir),
        prompt,
    ]
    proto = Collector()
    transport = reactor.spawnProcess(proto, argv[0], argv, env=dict(env), path=str(workdir))
    transport.closeStdin()
    try:
        code = await firstOf(proto.ended, CLI_TIMEOUT, reactor)
    except defer.TimeoutError:
        await stopProcess(reactor, transport, proto)
        raise
    return CliRun(
        code, proto.stdout.decode("utf-8", "replace"), proto.stderr.decode("utf-8", "replace")
    )
