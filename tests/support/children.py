"""Child processes in the end-to-end tests: what they wrote, how they ended, and a cleanup that
never leaves one running after its test.

Every end-to-end file used to carry its own copy of this protocol and of the
kill-if-still-running closure; with one copy the cleanup always waits for the child's end, so
no test leaves a process behind for the next one to trip over.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IProcessTransport
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase


class ChildOutput(ProcessProtocol):
    """A child's stdout and stderr as they arrive, its first stdout line, and its exit code.

    ``ended`` fires with the exit code, -1 when a signal ended the child; ``firstLine`` with the
    first line of stdout (where our executors announce their URL).
    """

    def __init__(self) -> None:
        self.stdout = b""
        self.stderr = b""
        self.firstLine: Deferred[str] = Deferred()
        self.ended: Deferred[int] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.stdout += data
        if b"\n" in self.stdout and not self.firstLine.called:
            self.firstLine.callback(self.stdout.split(b"\n", 1)[0].decode(errors="replace"))

    def errReceived(self, data: bytes) -> None:
        self.stderr += data

    def processEnded(self, reason: Failure) -> None:
        code = getattr(reason.value, "exitCode", None)
        self.ended.callback(-1 if code is None else code)


_LOOPBACK_WS = re.compile(rb"ws://127\.0\.0\.1:\d+")


class AnnouncedUrl(ChildOutput):
    """A listening exec-server child: ``url`` fires with the loopback ``ws://`` URL it prints,
    or fails if the child ends before printing one (so a test waiting on it fails at once)."""

    def __init__(self) -> None:
        super().__init__()
        self.url: Deferred[str] = Deferred()

    def outReceived(self, data: bytes) -> None:
        super().outReceived(data)
        found = _LOOPBACK_WS.search(self.stdout)
        if found and not self.url.called:
            self.url.callback(found.group(0).decode())

    def processEnded(self, reason: Failure) -> None:
        if not self.url.called:
            self.url.errback(RuntimeError(f"the child exited before its URL: {self.stdout!r}"))
        super().processEnded(reason)


def spawnChild(
    case: SynchronousTestCase,
    proto: ChildOutput,
    argv: Sequence[str],
    env: Mapping[str, str],
    path: str | None = None,
    **options: Any,
) -> IProcessTransport:
    """Spawn ``argv`` (``argv[0]`` is the executable) for the length of ``case``.

    The cleanup kills the child if it still runs and waits for its end, so the test's reactor is
    clean when trial checks it. ``options`` go to ``spawnProcess`` (``usePTY``, ``childFDs``).
    """
    transport: IProcessTransport = reactor.spawnProcess(  # type: ignore[attr-defined]
        proto, argv[0], list(argv), env=dict(env), path=path, **options
    )

    def stop() -> Deferred[int]:
        if not proto.ended.called:
            transport.signalProcess("KILL")
        return proto.ended

    case.addCleanup(stop)
    return transport
