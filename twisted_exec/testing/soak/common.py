"""What every soak scenario shares: the in-process test cloud, bounded waits, RSS sampling."""

from __future__ import annotations

import base64
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.task import deferLater

from twisted_exec.testing.executorproc import ExecutorProcess
from twisted_exec.testing.registry import FakeRegistry
from twisted_exec.testing.rendezvous import ExecutorConnection, HarnessStream, Rendezvous
from twisted_exec.testing.slowpeer import SlowRendezvous

T = TypeVar("T")


TOKEN = "tok-SOAK-never-logged-7f3a"


EXECUTOR_ID = "soak-executor"


STEP_TIMEOUT = 30.0


PATH = os.environ.get("PATH", "/usr/bin:/bin")


def bounded(reactor: Any, d: Deferred[T], seconds: float = STEP_TIMEOUT) -> Deferred[T]:
    return d.addTimeout(seconds, reactor)


def pause(reactor: Any, seconds: float) -> Deferred[None]:
    return deferLater(reactor, seconds, lambda: None)


async def poll(reactor: Any, predicate: Callable[[], bool], seconds: float) -> bool:
    """True once ``predicate()`` holds, False if it still does not after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await pause(reactor, 0.05)
    return True


def startParams(processId: str, argv: list[str], cwd: str) -> dict[str, Any]:
    return {"processId": processId, "argv": argv, "cwd": cwd, "env": {"PATH": PATH}, "tty": False}


@dataclass
class Common:
    """What every scenario reports about the executor process."""

    seconds: float = 0.0
    rssStart: int = 0
    rssEnd: int = 0
    rssPeak: int = 0
    logLines: int = 0
    unhandledErrors: int = 0
    errorSamples: list[str] = field(default_factory=list)
    secretLogLines: int = 0
    exitCode: int | None = None
    shutdownSeconds: float = 0.0

    def asDict(self) -> dict[str, Any]:
        return asdict(self)


class Cloud:
    """Registry + rendezvous in this process, the executor as a child; torn down in ``close``."""

    def __init__(self, reactor: Any, rendezvous: Rendezvous | SlowRendezvous) -> None:
        self.reactor = reactor
        self.rendezvous = rendezvous
        rendezvous.listen()
        self.registry = FakeRegistry(TOKEN, self._url)
        self.registry.listen(reactor)
        self.executor: ExecutorProcess | None = None
        self.tmp = tempfile.mkdtemp(prefix="twisted-exec-soak-")

    def _url(self, executorId: str) -> str:
        url = self.rendezvous.executorUrl(executorId)
        if self.executor is not None:
            self.executor.addSecret(url.partition("?")[2])
        return url

    def start(self, extraArgs: tuple[str, ...] = ()) -> ExecutorProcess:
        self.executor = ExecutorProcess(
            self.reactor, self.registry.baseUrl, EXECUTOR_ID, TOKEN, extraArgs=extraArgs
        )
        return self.executor

    async def stop(self, common: Common) -> None:
        """SIGTERM the executor (timing it), then collect its log numbers."""
        executor = self.executor
        assert executor is not None
        began = time.monotonic()
        common.exitCode = await bounded(self.reactor, executor.terminate(), 10)
        common.shutdownSeconds = time.monotonic() - began
        scan = executor.scan
        common.logLines = scan.lines
        common.unhandledErrors = len(scan.errorLines)
        common.errorSamples = scan.errorLines[:5]
        common.secretLogLines = scan.secretLines

    async def close(self) -> None:
        if self.executor is not None:
            self.executor.kill()
        if isinstance(self.rendezvous, Rendezvous):
            self.rendezvous.closeAll()
        await self.rendezvous.stopListening()
        await self.registry.stopListening()
        for root, dirs, files in os.walk(self.tmp, topdown=False):
            for name in files:
                os.unlink(os.path.join(root, name))
            for name in dirs:
                os.rmdir(os.path.join(root, name))
        os.rmdir(self.tmp)


async def withCloud(
    reactor: Any,
    rendezvous: Rendezvous | SlowRendezvous,
    body: Callable[[Cloud], Awaitable[T]],
) -> T:
    cloud = Cloud(reactor, rendezvous)
    try:
        return await body(cloud)
    finally:
        await cloud.close()


class _RssSampler:
    """Samples the executor's RSS every ``interval`` seconds (for the peak and the curve)."""

    def __init__(self, reactor: Any, executor: ExecutorProcess, interval: float = 0.1) -> None:
        from twisted.internet.task import LoopingCall

        self.executor = executor
        self.peak = 0
        self.samples: list[int] = []
        self._loop = LoopingCall(self._sample)
        self._loop.clock = reactor
        self._loop.start(interval)

    def _sample(self) -> None:
        if self.executor.running:
            rss = self.executor.rss()
            self.samples.append(rss)
            self.peak = max(self.peak, rss)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()


class Run:
    """One scenario's executor from its start to its SIGTERM, with the numbers every ``Common``
    reports: how long it ran, its RSS at the start, at the end and at the peak."""

    def __init__(self, cloud: Cloud, result: Common, extraArgs: tuple[str, ...] = ()) -> None:
        self.cloud = cloud
        self.result = result
        self.executor = cloud.start(extraArgs)
        self.began = time.monotonic()
        self.sampler: _RssSampler | None = None

    def sampleRss(self, interval: float) -> _RssSampler:
        """The RSS now is the start; from now on it is sampled every ``interval`` for the peak."""
        self.result.rssStart = self.executor.rss()
        self.sampler = _RssSampler(self.cloud.reactor, self.executor, interval)
        return self.sampler

    async def finish(self) -> None:
        """The RSS at the end, the peak (sampled, or the kernel's high-water mark when nothing
        was sampled) and the duration; then SIGTERM the executor (``Cloud.stop``)."""
        result = self.result
        result.rssEnd = self.executor.rss()
        if self.sampler is None:
            result.rssPeak = self.executor.peakRss()
        else:
            self.sampler.stop()
            result.rssPeak = self.sampler.peak
        result.seconds = time.monotonic() - self.began
        await self.cloud.stop(result)


async def connectAndInitialize(
    cloud: Cloud, streamIds: list[str]
) -> tuple[ExecutorConnection, dict[str, HarnessStream]]:
    assert isinstance(cloud.rendezvous, Rendezvous)
    conn = await bounded(cloud.reactor, cloud.rendezvous.waitForConnection(1))
    streams = {sid: conn.stream(sid) for sid in streamIds}
    for stream in streams.values():
        stream.resume()
    await bounded(
        cloud.reactor,
        DeferredList([s.initialize() for s in streams.values()], fireOnOneErrback=True),
    )
    return conn, streams


async def runProcess(
    reactor: Any,
    stream: HarnessStream,
    processId: str,
    argv: list[str],
    cwd: str,
    others: frozenset[str] = frozenset(),
) -> bytes:
    """Start a process and collect its output from notifications until ``process/closed``.

    A notification for any other process of the stream than those in ``others`` is cross-talk.
    """
    reply = await bounded(
        reactor, stream.request("process/start", startParams(processId, argv, cwd))
    )
    if reply.get("result") != {"processId": processId}:
        raise AssertionError(f"process/start {processId}: {reply!r}")
    output = b""
    while True:
        note = await bounded(reactor, stream.notifications.get())
        params = note.get("params", {})
        if params.get("processId") in others:
            continue
        if params.get("processId") != processId:
            raise AssertionError(f"cross-talk on {stream.streamId}: {note!r}")
        if note["method"] == "process/output":
            output += base64.b64decode(params["chunk"])
        elif note["method"] == "process/closed":
            return output
