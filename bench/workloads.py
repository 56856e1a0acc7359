"""The measurements the relay benchmark runs, written against a harness side of the rendezvous.

``bench/relay.py`` runs them either in its own process, on the rendezvous's
:class:`~twisted_exec.testing.rendezvous.ExecutorConnection` (in-process mode, for profiling), or
in a separate harness process (``bench/harness_worker.py``, ``--harness-process``) on a real
harness websocket: the same code, so the two modes differ only in where the harness runs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from twisted.internet import defer, task
from twisted.internet.defer import Deferred

from bench.benchlib import b64len, cpuSeconds, percentile
from twisted_exec.testing.rendezvous import HarnessStream


class StreamHost(Protocol):
    """What a harness needs of its connection: streams by id, and records it may drop."""

    frames: list[bytes]
    orphans: list[bytes]

    def stream(self, streamId: str) -> HarnessStream: ...

    def forgetStream(self, streamId: str) -> None: ...


def startParams(processId: str, argv: list[str], cwd: str, tty: bool = False) -> dict[str, Any]:
    """``process/start`` params of the workloads: a fixed minimal ``PATH``, no other variable."""
    return {
        "processId": processId,
        "argv": argv,
        "cwd": cwd,
        "env": {"PATH": "/usr/bin:/bin"},
        "tty": tty,
    }


def sleep(reactor: Any, seconds: float) -> Deferred[None]:
    return task.deferLater(reactor, seconds, lambda: None)


def forgetRecords(connection: StreamHost, streams: Sequence[HarnessStream]) -> None:
    """Drop what the test doubles record (every frame and message), so memory stays flat."""
    connection.frames.clear()
    connection.orphans.clear()
    for s in streams:
        s.messages.clear()
        s.seqs.clear()


async def openStreams(
    reactor: Any, connection: StreamHost, count: int, batch: int = 100
) -> list[HarnessStream]:
    """``count`` initialized streams (``initialize`` in batches of ``batch`` at a time)."""
    streams = [connection.stream(f"bench-{uuid.uuid4()}") for _ in range(count)]
    try:
        for i in range(0, count, batch):
            part = streams[i : i + batch]
            pending = defer.gatherResults([s.initialize("bench") for s in part], consumeErrors=True)
            await pending.addTimeout(30, reactor)
    except BaseException:
        # Give the executor its streams back, or the rows after this one start over a limit.
        closeStreams(connection, streams)
        raise
    forgetRecords(connection, streams)
    return streams


def closeStreams(connection: StreamHost, streams: Sequence[HarnessStream]) -> None:
    for s in streams:
        s.reset("bench done")
        connection.forgetStream(s.streamId)
    forgetRecords(connection, [])


async def driveCalls(
    reactor: Any,
    streams: Sequence[HarnessStream],
    inflight: int,
    path: str,
    warmup: float,
    window: float,
    pid: int | None,
    method: str = "fs/getMetadata",
    watch: dict[str, int] | None = None,
) -> dict[str, float]:
    """``fs/getMetadata`` of ``path``, ``inflight`` calls outstanding per stream, for one window.

    ``watch`` names other processes (the rendezvous, the harness) whose CPU per call is also
    reported, as ``NAME_cpu_us``: where the rest of the machine's two cores go.

    Each reply sends the next call on the same stream. Calls answered inside the window count;
    their latency is measured from sending to the reply. ``method`` may instead be
    ``process/terminate`` (of an unknown process id: an answer that touches no file).
    """
    params = {"path": path} if method == "fs/getMetadata" else {"processId": "none"}
    state = {"measuring": False, "stopping": False, "outstanding": 0, "errors": 0}
    latencies: list[float] = []
    drained: Deferred[None] = Deferred()
    # The window opens after the warm-up *and* once every stream's first call was answered:
    # with 1,000 streams x 4 the first replies can take longer than the warm-up on a busy box.
    flowing: Deferred[None] = Deferred()
    firstAnswered: set[int] = set()
    clock = time.perf_counter

    def send(stream: HarnessStream) -> None:
        stream.request(method, params).addCallback(answered, stream, clock())

    def answered(reply: dict[str, Any], stream: HarnessStream, sent: float) -> None:
        if not flowing.called:
            firstAnswered.add(id(stream))
            if len(firstAnswered) == len(streams):
                flowing.callback(None)
        if state["measuring"]:
            latencies.append(clock() - sent)
        if "result" not in reply:
            state["errors"] += 1
        if state["stopping"]:
            state["outstanding"] -= 1
            if state["outstanding"] == 0 and not drained.called:
                drained.callback(None)
            return
        send(stream)

    for stream in streams:
        for _ in range(inflight):
            state["outstanding"] += 1
            send(stream)
    await sleep(reactor, warmup)
    await flowing.addTimeout(60, reactor)
    state["measuring"] = True
    start = clock()
    cpu0 = cpuSeconds(pid)
    watched0 = {name: cpuSeconds(other) for name, other in (watch or {}).items()}
    await sleep(reactor, window)
    state["measuring"] = False
    elapsed = clock() - start
    cpu1 = cpuSeconds(pid)
    watched1 = {name: cpuSeconds(other) for name, other in (watch or {}).items()}
    state["stopping"] = True
    await drained.addTimeout(30, reactor)
    if state["errors"]:
        raise RuntimeError(f"{state['errors']} error replies")
    if not latencies:
        raise RuntimeError("no call answered in the window")
    latencies.sort()
    result = {
        "calls_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }
    if cpu0 is not None and cpu1 is not None and latencies:
        result["cpu_us"] = (cpu1 - cpu0) / len(latencies) * 1e6
    for name, before in watched0.items():
        after = watched1[name]
        if before is not None and after is not None:
            result[f"{name}_cpu_us"] = (after - before) / len(latencies) * 1e6
    return result


async def processOutput(
    reactor: Any, connection: StreamHost, cwd: str, size: int, tty: bool, pid: int | None
) -> dict[str, float]:
    """MB/s (10^6 bytes) of ``head -c SIZE /dev/zero`` from ``process/start`` to ``closed``,
    and the executor's CPU time per MB."""
    [stream] = await openStreams(reactor, connection, 1)
    queue = stream.notifications
    got = 0
    try:
        start = time.perf_counter()
        cpu0 = cpuSeconds(pid)
        reply = await stream.request(
            "process/start",
            startParams("out", ["head", "-c", str(size), "/dev/zero"], cwd, tty),
        ).addTimeout(30, reactor)
        if "result" not in reply:
            raise RuntimeError(f"process/start failed: {reply.get('error')}")
        while True:
            message = await queue.get()
            forgetRecords(connection, [stream])
            method = message.get("method")
            if method == "process/output":
                got += b64len(message["params"]["chunk"])
            elif method == "process/closed":
                break
        elapsed = time.perf_counter() - start
        cpu1 = cpuSeconds(pid)
    finally:
        queue.pending.clear()
        closeStreams(connection, [stream])
    if got != size:
        raise RuntimeError(f"expected {size} bytes of output, got {got}")
    result = {"mb_s": size / elapsed / 1e6}
    if cpu0 is not None and cpu1 is not None:
        result["cpu_ms_mb"] = (cpu1 - cpu0) * 1000 / (size / 1e6)
    return result


async def spawnRate(
    reactor: Any, connection: StreamHost, cwd: str, count: int, pid: int | None
) -> dict[str, float]:
    """``process/start`` of ``true`` (with a cwd), 8 requests queued at a time, on one stream.

    ``starts_s``: replies per second; ``lifecycles_s``: until every process/closed arrived.
    """
    [stream] = await openStreams(reactor, connection, 1)
    closedAll: Deferred[None] = Deferred()
    repliedAll: Deferred[None] = Deferred()
    state = {"sent": 0, "replied": 0, "closed": 0, "errors": 0}
    stamps: dict[str, float] = {}

    def onNotification(message: dict[str, Any]) -> None:
        if message.get("method") == "process/closed":
            state["closed"] += 1
            if state["closed"] == count and not closedAll.called:
                stamps["closed"] = time.perf_counter()
                closedAll.callback(None)
        forgetRecords(connection, [stream])
        stream.notifications.get().addCallback(onNotification)

    def send() -> None:
        n = state["sent"]
        state["sent"] += 1
        stream.request("process/start", startParams(f"p{n}", ["true"], cwd)).addCallback(replied)

    def replied(reply: dict[str, Any]) -> None:
        state["replied"] += 1
        if "result" not in reply:
            state["errors"] += 1
        if state["sent"] < count:
            send()
        elif state["replied"] == count and not repliedAll.called:
            stamps["replied"] = time.perf_counter()
            repliedAll.callback(None)

    stream.notifications.get().addCallback(onNotification)
    start = time.perf_counter()
    cpu0 = cpuSeconds(pid)
    try:
        for _ in range(min(8, count)):
            send()
        await repliedAll.addTimeout(60, reactor)
        if state["errors"]:
            raise RuntimeError(f"{state['errors']} process/start errors")
        await closedAll.addTimeout(30, reactor)
        cpu1 = cpuSeconds(pid)
    finally:
        closeStreams(connection, [stream])
    result = {
        "starts_s": count / (stamps["replied"] - start),
        "lifecycles_s": count / (stamps["closed"] - start),
    }
    if cpu0 is not None and cpu1 is not None:
        result["cpu_us"] = (cpu1 - cpu0) / count * 1e6
    return result


async def sequentialLifecycles(
    reactor: Any, connection: StreamHost, cwd: str, count: int
) -> dict[str, float]:
    """``process/start`` of ``true``, one at a time: send, wait for ``process/closed``, repeat.

    The latency-bound case Nagle's algorithm hurts most (a reply and a notification in a row):
    ``p50_ms`` of start → closed, and lifecycles per second.
    """
    [stream] = await openStreams(reactor, connection, 1)
    latencies: list[float] = []
    try:
        start = time.perf_counter()
        for n in range(count):
            sent = time.perf_counter()
            params = startParams(f"seq{n}", ["true"], cwd)
            reply = await stream.request("process/start", params).addTimeout(30, reactor)
            if "result" not in reply:
                raise RuntimeError(f"process/start failed: {reply.get('error')}")
            while True:
                message = await stream.notifications.get().addTimeout(30, reactor)
                if message.get("method") == "process/closed":
                    break
            latencies.append(time.perf_counter() - sent)
            forgetRecords(connection, [stream])
        elapsed = time.perf_counter() - start
    finally:
        stream.notifications.pending.clear()
        closeStreams(connection, [stream])
    latencies.sort()
    return {"p50_ms": percentile(latencies, 0.5) * 1000, "per_s": count / elapsed}
