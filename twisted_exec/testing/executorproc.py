"""A real ``twistd -n codex-executor --remote ...`` child, and /proc accounting of it.

Hardening scenarios (``twisted_exec.testing.soak``) run the executor as its own process so that
what they measure (RSS, open file descriptors, leftover children) is the executor's alone, not
the test harness's. Its stderr (the log) is scanned line by line, never kept whole: long runs
write hundreds of thousands of lines.

Linux only (``/proc``).
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

#: What marks a log line as an unhandled error (a traceback or twisted's "Unhandled ...").
ERROR_MARKERS = ("Traceback (most recent call last)", "Unhandled", "CRITICAL")

TWISTD = Path(sys.executable).with_name("twistd")
SOURCE_ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class LogScan:
    """Counts over the executor's log lines; keeps the last few and every suspicious one."""

    secrets: tuple[str, ...] = ()
    lines: int = 0
    errorLines: list[str] = field(default_factory=list)
    secretLines: int = 0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=40))

    def feed(self, line: str) -> None:
        self.lines += 1
        self.tail.append(line)
        if any(marker in line for marker in ERROR_MARKERS) and len(self.errorLines) < 100:
            self.errorLines.append(line)
        if any(secret and secret in line for secret in self.secrets):
            self.secretLines += 1


class _ExecutorProtocol(ProcessProtocol):
    def __init__(self, scan: LogScan) -> None:
        self.scan = scan
        self.ended: Deferred[int | None] = Deferred()
        self.exitCode: int | None = None
        self._partial = b""

    def outReceived(self, data: bytes) -> None:
        self._lines(data)

    def errReceived(self, data: bytes) -> None:
        self._lines(data)

    def _lines(self, data: bytes) -> None:
        self._partial += data
        *complete, self._partial = self._partial.split(b"\n")
        for raw in complete:
            self.scan.feed(raw.decode("utf-8", "replace"))

    def processEnded(self, reason: Failure) -> None:
        if self._partial:
            self.scan.feed(self._partial.decode("utf-8", "replace"))
            self._partial = b""
        self.exitCode = getattr(reason.value, "exitCode", None)
        self.ended.callback(self.exitCode)


class ExecutorProcess:
    """One remote-mode executor child; ``secrets`` are strings its log must never contain."""

    def __init__(
        self,
        reactor: Any,
        registryUrl: str,
        executorId: str,
        token: str,
        *,
        extraArgs: Iterable[str] = (),
        secrets: Iterable[str] = (),
        extraEnv: dict[str, str] | None = None,
    ) -> None:
        self.scan = LogScan(secrets=(token, *secrets))
        self._protocol = _ExecutorProtocol(self.scan)
        env = dict(os.environ)
        env["CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN"] = token
        env["PYTHONPATH"] = str(SOURCE_ROOT)
        env.update(extraEnv or {})
        argv = [
            str(TWISTD),
            "-n",
            "--pidfile=",
            "codex-executor",
            "--remote",
            registryUrl,
            "--executor-id",
            executorId,
            *extraArgs,
        ]
        self._transport = reactor.spawnProcess(
            self._protocol, argv[0], argv, env=env, path=str(SOURCE_ROOT)
        )
        self.pid: int = self._transport.pid

    def addSecret(self, secret: str) -> None:
        """Another string the log must not contain from now on (e.g. a fresh URL signature)."""
        self.scan.secrets = (*self.scan.secrets, secret)

    @property
    def ended(self) -> Deferred[int | None]:
        return self._protocol.ended

    @property
    def running(self) -> bool:
        return not self._protocol.ended.called

    def terminate(self) -> Deferred[int | None]:
        """SIGTERM; fires with the exit code."""
        if self.running:
            self._transport.signalProcess("TERM")
        return self._protocol.ended

    def kill(self) -> None:
        if self.running:
            self._transport.signalProcess("KILL")

    # -- /proc accounting ------------------------------------------------------------------------

    def status(self, key: str) -> int:
        """A ``kB`` field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``) in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(key)

    def rss(self) -> int:
        return self.status("VmRSS")

    def peakRss(self) -> int:
        return self.status("VmHWM")

    def fds(self) -> list[str]:
        """What each open descriptor points at (``socket:[...]``, ``pipe:[...]``, paths)."""
        out = []
        base = f"/proc/{self.pid}/fd"
        for name in os.listdir(base):
            try:
                out.append(os.readlink(os.path.join(base, name)))
            except OSError:
                continue
        return sorted(out)

    def children(self) -> list[int]:
        """Live (or unreaped) processes whose parent is the executor."""
        return [pid for pid, ppid, _ in processTable() if ppid == self.pid]


def processTable() -> list[tuple[int, int, int]]:
    """``(pid, ppid, session id)`` of every process in /proc."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out.append((int(name), int(fields[1]), int(fields[3])))
    return out


def processGone(pid: int) -> bool:
    """No such process, or only a zombie waiting for its (new) parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def processesInSessions(sessions: Iterable[int]) -> list[int]:
    """Processes (zombies included) still in one of ``sessions`` (each child leads its own)."""
    wanted = set(sessions)
    return [pid for pid, _, sid in processTable() if sid in wanted]
