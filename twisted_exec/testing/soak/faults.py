"""Scenario faults: the rendezvous drops the websocket again and again while processes run."""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass, field
from typing import Any

from twisted_exec.testing.executorproc import processesInSessions
from twisted_exec.testing.rendezvous import HarnessStream, Rendezvous
from twisted_exec.testing.soak import common


@dataclass
class FaultsResult(common.Common):
    drops: int = 0
    reconnects: int = 0
    resumes: int = 0
    maxResumeSeconds: float = 0.0
    roundsChecked: int = 0
    fdsBefore: int = 0
    fdsAfter: int = 0
    fdsLeaked: list[str] = field(default_factory=list)
    processesSpawned: int = 0
    processesLeaked: int = 0


TICKER = "echo pid=$$; i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.05; done"


async def faults(reactor: Any, drops: int = 5) -> FaultsResult:
    """The rendezvous drops the websocket ``drops`` times (alternating close and abort)."""
    result = FaultsResult()

    async def readUntil(stream: HarnessStream, processId: str, afterSeq: int) -> dict[str, Any]:
        reply = await common.bounded(
            reactor,
            stream.request(
                "process/read", {"processId": processId, "afterSeq": afterSeq, "waitMs": 3000}
            ),
        )
        if "result" not in reply:
            raise AssertionError(f"process/read {processId}: {reply!r}")
        answer: dict[str, Any] = reply["result"]
        return answer

    async def body(cloud: common.Cloud) -> FaultsResult:
        assert isinstance(cloud.rendezvous, Rendezvous)
        run = common.Run(cloud, result)
        executor = run.executor
        conn, streams = await common.connectAndInitialize(cloud, ["s-0"])
        stream = streams["s-0"]
        # Baseline once registered and connected, with a session and no process.
        await common.pause(reactor, 0.5)
        before = executor.fds()
        result.fdsBefore = len(before)
        result.rssStart = executor.rss()
        sessionId = await _sessionIdOf(stream)
        reply = await common.bounded(
            reactor,
            stream.request(
                "process/start", common.startParams("ticker", ["sh", "-c", TICKER], "/")
            ),
        )
        if "result" not in reply:
            raise AssertionError(f"ticker: {reply!r}")
        sessions: set[int] = set()
        first = await readUntil(stream, "ticker", 0)
        text = b"".join(base64.b64decode(c["chunk"]) for c in first["chunks"])
        match = re.search(rb"pid=(\d+)", text)
        if match is None:
            raise AssertionError(f"no pid in {text!r}")
        sessions.add(int(match.group(1)))
        result.processesSpawned += 1
        nextSeq = first["nextSeq"]
        for n in range(1, drops + 1):
            dropped = time.monotonic()
            if n % 2:
                conn.abort()
            else:
                conn.close()
            result.drops += 1
            conn = await common.bounded(reactor, cloud.rendezvous.waitForConnection(n + 1))
            result.reconnects += 1
            stream = conn.stream(f"s-{n}")
            stream.resume()
            reply = await common.bounded(
                reactor,
                stream.request("initialize", {"clientName": "soak", "resumeSessionId": sessionId}),
            )
            if reply.get("result") != {"sessionId": sessionId}:
                raise AssertionError(f"resume {n}: {reply!r}")
            stream.notify("initialized")
            result.resumes += 1
            result.maxResumeSeconds = max(result.maxResumeSeconds, time.monotonic() - dropped)
            # the ticker ran on while we were away, and runs on now
            read = await readUntil(stream, "ticker", nextSeq)
            if not read["chunks"] or read["closed"]:
                raise AssertionError(f"ticker silent after drop {n}: {read!r}")
            nextSeq = read["nextSeq"]
            # a short process per round, its output complete
            token = f"round-{n}"
            out = await common.runProcess(
                reactor,
                stream,
                f"r{n}",
                ["sh", "-c", f"echo pid=$$; echo {token}"],
                "/",
                others=frozenset({"ticker"}),
            )
            match = re.search(rb"pid=(\d+)", out)
            if match is None or not out.endswith(token.encode() + b"\n"):
                raise AssertionError(f"round {n}: {out!r}")
            sessions.add(int(match.group(1)))
            result.processesSpawned += 1
            result.roundsChecked += 1
        reply = await common.bounded(
            reactor, stream.request("process/terminate", {"processId": "ticker"})
        )
        while not (await readUntil(stream, "ticker", nextSeq))["closed"]:
            pass
        stream.reset("soak done")
        await common.poll(reactor, lambda: not processesInSessions(sessions), 5)
        result.processesLeaked = len(processesInSessions(sessions)) + len(executor.children())
        await common.poll(reactor, lambda: len(executor.fds()) <= len(before), 5)
        after = executor.fds()
        result.fdsAfter = len(after)
        result.fdsLeaked = _fdDiff(before, after)
        await run.finish()
        return result

    return await common.withCloud(reactor, Rendezvous(reactor), body)


async def _sessionIdOf(stream: HarnessStream) -> str:
    for message in stream.messages:
        result = message.get("result")
        if isinstance(result, dict) and "sessionId" in result:
            return str(result["sessionId"])
    raise AssertionError("stream was not initialized")


def _fdDiff(before: list[str], after: list[str]) -> list[str]:
    """Descriptors in ``after`` beyond ``before``, by kind (socket/pipe numbers differ)."""

    def kind(target: str) -> str:
        return re.sub(r"\[\d+\]", "[]", target)

    remaining = [kind(t) for t in before]
    extra = []
    for target in after:
        k = kind(target)
        if k in remaining:
            remaining.remove(k)
        else:
            extra.append(target)
    return extra
