"""The ``hostile`` soak scenario (issue 15): careless and hostile harnesses on one executor.

Against a real ``twistd codex-executor --remote`` child, while one well-behaved stream
measures the latency of its RPCs:

- a routed harness runs ``yes`` and stops reading its websocket (it stays open), for the
  whole run; the first ``seconds`` measure the good stream beside it alone (p99 < 50 ms);
- then, for ``seconds`` more, rounds of a hostile stream: ``fs/readFile`` of a 50 MiB file
  (larger than a reply may be), ten ``fs/readFile`` calls on a FIFO, ``fs/readFile
  /dev/zero``, a 10 MiB ``process/write`` flood (256 KiB writes) into a child that never
  reads, and a grandchild that calls ``setsid``; then the stream is reset (its session
  detaches and ends after ``--session-ttl``).

Acceptance: the good stream's p99 under 50 ms beside the stalled harness (under
:data:`MIXED_P99_BOUND` during the CPU-heavy hostile rounds), the websocket never dropped,
every hostile call refused with its error, every ``setsid`` grandchild gone once its session
ended, and the executor's RSS growth within :data:`HOSTILE_RSS_BOUND`.
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.task import deferLater

from twisted_exec.harness.connection import connectHarness
from twisted_exec.testing.executorproc import processGone
from twisted_exec.testing.rendezvous import HarnessStream, Rendezvous
from twisted_exec.testing.soak import common

#: Bound on the executor's RSS growth over its start (peak minus start) in this scenario:
#: the stalled stream's window (4 MiB, mostly in kernel buffers), a 4 MiB stdin backlog per
#: flood, one inbound message of ~1.4 MB at a time, the retained output of the processes.
HOSTILE_RSS_BOUND = 64 * 1024 * 1024
P99_BOUND = 0.050
#: During the hostile rounds the good stream also waits for the executor's CPU (decoding a
#: 256 KiB stdin write takes a few ms, more on a loaded machine): no stall, not 50 ms.
MIXED_P99_BOUND = 0.250
#: What the suite checks instead of the two bounds above (benchmarks are not tests: the
#: latency goals belong to ``scripts/soak.py``): nobody is starved, a good-stream call that
#: waits on the stalled harness or the hostile rounds takes seconds, not ms.
UNSTARVED_BOUND = 2.0
#: Seconds between hostile rounds (a round is a burst of ~15 MB of requests); the stalled
#: harness stays stalled throughout.
ROUND_PAUSE = 0.25

MiB = 1024 * 1024
FLOOD_WRITE = 256 * 1024


@dataclass
class HostileResult:
    """Fields added to :class:`~twisted_exec.testing.soak.Common` by :func:`hostile`."""

    rounds: int = 0
    phase: str = ""
    stalledOutstanding: int = 0  # bytes the rendezvous holds for the stalled harness
    rpcsStalled: int = 0
    p99StalledMs: float = 0.0  # phase 1: only the stalled harness
    rpcs: int = 0
    p99Ms: float = 0.0  # phase 2: the hostile rounds too
    maxMs: float = 0.0
    websocketDrops: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    grandchildren: int = 0
    grandchildrenLeft: int = 0
    rssGrowth: int = 0
    #: The slowest good-stream RPCs: (seconds since start, ms, what the hostile stream did).
    slowest: list[tuple[float, float, str]] = field(default_factory=list)


def _percentileMs(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000, 2)


async def _pause(reactor: Any, seconds: float) -> None:
    await deferLater(reactor, seconds, lambda: None)


def _start(processId: str, argv: list[str], cwd: str, **extra: Any) -> dict[str, Any]:
    return {
        "processId": processId,
        "argv": argv,
        "cwd": cwd,
        "env": {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        "tty": False,
        **extra,
    }


async def hostileRound(
    reactor: Any, stream: HarnessStream, tmp: str, result: HostileResult, grandchildren: list[int]
) -> None:
    """One round of every hostile call on ``stream``; refusals counted, surprises noted."""
    big = os.path.join(tmp, "big")
    fifo = os.path.join(tmp, "fifo")

    def phase(name: str) -> None:
        result.phase = name

    def refused(kind: str, reply: dict[str, Any], needle: str) -> None:
        message = reply.get("error", {}).get("message", "")
        if needle in message:
            result.refusals[kind] = result.refusals.get(kind, 0) + 1
        else:
            result.unexpected.append(f"{kind}: {str(reply)[:200]}")

    phase("readFile50MiB")
    reply = await common.bounded(reactor, stream.request("fs/readFile", {"path": big}))
    refused("readFile50MiB", reply, "file is too large to read")
    phase("readFileFifo")
    for _ in range(10):
        reply = await common.bounded(reactor, stream.request("fs/readFile", {"path": fifo}))
        refused("readFileFifo", reply, "is not a file")
    reply = await common.bounded(reactor, stream.request("fs/readFile", {"path": "/dev/zero"}))
    refused("readFileDevZero", reply, "is not a file")
    await common.bounded(
        reactor,
        stream.request("process/start", _start("sink", ["sleep", "600"], tmp, pipeStdin=True)),
    )
    phase("stdinFlood")
    # 10 MiB in 256 KiB writes, as a harness streams stdin (each write costs the executor a
    # few ms of base64 decoding on its reactor thread, which other streams wait for).
    chunk = base64.b64encode(b"x" * FLOOD_WRITE).decode()
    for _ in range(10 * MiB // FLOOD_WRITE):
        reply = await common.bounded(
            reactor, stream.request("process/write", {"processId": "sink", "chunk": chunk})
        )
        if "error" in reply:
            refused("stdinFlood", reply, "process stdin backlog would exceed")
            break
    else:
        result.unexpected.append("stdinFlood: 10 MiB accepted")
    phase("flooded")
    phase("setsid")
    script = "setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!; exec sleep 600"
    await common.bounded(
        reactor, stream.request("process/start", _start("gc", ["/bin/sh", "-c", script], tmp))
    )
    read = await common.bounded(
        reactor,
        stream.request("process/read", {"processId": "gc", "afterSeq": 0, "waitMs": 5000}),
    )
    chunks = read.get("result", {}).get("chunks", [])
    if chunks:
        grandchildren.append(int(base64.b64decode(chunks[0]["chunk"]).split()[0]))
    else:
        result.unexpected.append(f"setsid grandchild: no pid ({str(read)[:200]})")


@dataclass
class HostileSoakResult(common.Common, HostileResult):
    """The scenario's numbers: :class:`common.Common` plus :class:`HostileResult`."""


async def hostile(reactor: Any, seconds: float = 5.0) -> HostileSoakResult:
    """The scenario (see the module docstring)."""
    result = HostileSoakResult()

    async def body(cloud: common.Cloud) -> HostileSoakResult:
        assert isinstance(cloud.rendezvous, Rendezvous)
        run = common.Run(cloud, result, ("--session-ttl", "1"))
        conn = await common.bounded(reactor, cloud.rendezvous.waitForConnection(1))
        with open(os.path.join(cloud.tmp, "big"), "wb") as f:
            f.truncate(50 * MiB)
        os.mkfifo(os.path.join(cloud.tmp, "fifo"))
        good = conn.stream("good")
        good.resume()
        await common.bounded(reactor, good.initialize())
        run.sampleRss(0.2)

        stalled = await common.bounded(
            reactor, connectHarness(reactor, cloud.rendezvous.httpUrl, common.EXECUTOR_ID, None)
        )
        session = await common.bounded(reactor, stalled.openSession())
        await common.bounded(
            reactor, session.call("process/start", _start("flood", ["yes", "y" * 60], cloud.tmp))
        )
        protocol: Any = stalled._protocol
        protocol.transport.pauseProducing()
        # Steady state first: the flood's window (4 MiB) queued ahead of the good stream on the
        # shared connection has reached the rendezvous once its outstanding bytes stop growing.
        router = cloud.rendezvous.router
        last, steadySince = -1, time.monotonic()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and time.monotonic() - steadySince < 1.0:
            slowHarnesses = [h for h in router._harnesses if router.acks.isSlow(h)]
            outstanding = sum(router.acks.outstanding(h) for h in slowHarnesses)
            if not slowHarnesses or outstanding != last:
                last, steadySince = outstanding, time.monotonic()
            await _pause(reactor, 0.05)
        result.stalledOutstanding = last

        latencies: list[float] = []
        slow: list[tuple[float, float, str]] = []
        grandchildren: list[int] = []
        done = False

        async def goodLoop() -> None:
            while not done:
                t0 = time.monotonic()
                reply = await common.bounded(
                    reactor, good.request("fs/getMetadata", {"path": cloud.tmp})
                )
                latencies.append(time.monotonic() - t0)
                slow.append(
                    (round(t0 - run.began, 2), round(latencies[-1] * 1000, 1), result.phase)
                )
                if not reply.get("result", {}).get("isDirectory"):
                    result.unexpected.append(f"good stream: {str(reply)[:200]}")
                await _pause(reactor, 0.01)

        from twisted.internet.defer import ensureDeferred

        # Phase 1: only the stalled harness, for ``seconds``: the good stream's p99.
        result.phase = "stalled"
        loop = ensureDeferred(goodLoop())
        await _pause(reactor, seconds)
        result.p99StalledMs = _percentileMs(latencies, 0.99)
        result.rpcsStalled = len(latencies)
        # Phase 2: hostile rounds as well, for ``seconds`` more.
        mark = len(latencies)
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            result.rounds += 1
            stream = conn.stream(f"hostile-{result.rounds}")
            stream.resume()
            await common.bounded(reactor, stream.initialize())
            await hostileRound(reactor, stream, cloud.tmp, result, grandchildren)
            result.phase = "reset"
            stream.reset("hostile round over")
            conn.forgetStream(stream.streamId)
            await _pause(reactor, ROUND_PAUSE)
            result.phase = "idle"
        done = True
        await common.bounded(reactor, loop)
        result.rpcs = len(latencies)
        result.p99Ms = _percentileMs(latencies[mark:], 0.99)
        result.maxMs = round(max(latencies) * 1000, 2)
        result.slowest = sorted(slow, key=lambda entry: -entry[1])[:5]
        result.websocketDrops = len(cloud.rendezvous.connections) - 1 + (conn.closeInfo is not None)
        # Sessions end --session-ttl (1 s) after their reset: their grandchildren with them.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(processGone(p) for p in grandchildren):
            await _pause(reactor, 0.1)
        result.grandchildren = len(grandchildren)
        result.grandchildrenLeft = sum(not processGone(p) for p in grandchildren)
        stalled.abort()
        await run.finish()
        result.rssGrowth = result.rssPeak - result.rssStart
        for pid in grandchildren:  # never leave one behind, whatever the verdict
            if not processGone(pid):
                os.kill(pid, 9)
        return result

    return await common.withCloud(reactor, Rendezvous(reactor), body)


def hostileProblems(result: HostileResult, *, timed: bool = True) -> list[str]:
    """The hostile scenario's checks; ``timed=False`` (the suite) holds the latencies only to
    :data:`UNSTARVED_BOUND`, so that a loaded machine does not fail a sound executor."""
    problems = []
    stalledBound = P99_BOUND if timed else UNSTARVED_BOUND
    mixedBound = MIXED_P99_BOUND if timed else UNSTARVED_BOUND
    if result.p99StalledMs >= stalledBound * 1000 or not result.rpcsStalled:
        problems.append(
            f"good stream p99 {result.p99StalledMs} ms beside a stalled harness "
            f"(bound {stalledBound * 1000:g} ms)"
        )
    if result.p99Ms >= mixedBound * 1000:
        problems.append(
            f"good stream p99 {result.p99Ms} ms during hostile rounds "
            f"(bound {mixedBound * 1000:g} ms)"
        )
    if result.websocketDrops:
        problems.append(f"the executor's websocket dropped {result.websocketDrops} time(s)")
    if result.unexpected:
        problems.append(f"{len(result.unexpected)} unexpected answer(s): {result.unexpected[:3]}")
    expected = {
        "readFile50MiB": result.rounds,
        "readFileFifo": 10 * result.rounds,
        "readFileDevZero": result.rounds,
        "stdinFlood": result.rounds,
    }
    if result.refusals != expected:
        problems.append(f"refusals {result.refusals}, expected {expected}")
    if result.grandchildrenLeft or result.grandchildren != result.rounds:
        problems.append(
            f"{result.grandchildrenLeft} of {result.grandchildren} setsid grandchildren left"
        )
    if result.rssGrowth > HOSTILE_RSS_BOUND:
        problems.append(f"RSS grew by {result.rssGrowth} bytes (bound {HOSTILE_RSS_BOUND})")
    return problems


__all__ = [
    "HOSTILE_RSS_BOUND",
    "HostileResult",
    "HostileSoakResult",
    "hostile",
    "hostileProblems",
]
