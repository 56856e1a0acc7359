"""Scenario slow: a rendezvous reading at a fixed rate while a child writes a lot."""

from __future__ import annotations

import base64
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred

from twisted_exec.testing.slowpeer import SlowConnection, SlowRendezvous
from twisted_exec.testing.soak import common
from twisted_exec.wire.frames import encodeData, encodeResume


@dataclass
class SlowResult(common.Common):
    megabytes: int = 0
    rate: float = 0.0
    bytesReceived: int = 0
    intact: bool = False
    firstBadOffset: int | None = None
    wireBytes: int = 0
    rssIdle: int = 0
    rssGrowth: int = 0


BLOCK = 64 * 1024


WRITER = (
    "import sys\n"
    "out = sys.stdout.buffer\n"
    "for i in range(int(sys.argv[1])):\n"
    "    out.write(i.to_bytes(4, 'big') * 16384)\n"
    "out.flush()\n"
)


class PatternChecker:
    """Checks a stream of 64 KiB blocks ``i.to_bytes(4) * 16384`` incrementally (no copy kept)."""

    def __init__(self) -> None:
        self.offset = 0
        self.firstBad: int | None = None

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            block, within = divmod(self.offset, BLOCK)
            take = min(len(view), BLOCK - within)
            expected = (block.to_bytes(4, "big") * 16384)[within : within + take]
            if self.firstBad is None and view[:take] != expected:
                self.firstBad = self.offset
            self.offset += take
            view = view[take:]


async def slowConsumer(
    reactor: Any, megabytes: int = 20, rate: float = 10e6, sampleEvery: float = 0.1
) -> SlowResult:
    """A child writes ``megabytes`` MiB while the rendezvous reads ``rate`` bytes/s."""
    result = SlowResult(megabytes=megabytes, rate=rate)
    blocks = megabytes * 1024 * 1024 // BLOCK

    async def body(cloud: common.Cloud) -> SlowResult:
        assert isinstance(cloud.rendezvous, SlowRendezvous)
        run = common.Run(cloud, result)
        conn: SlowConnection = await common.bounded(reactor, cloud.rendezvous.waitForConnection())
        checker = PatternChecker()
        replies: dict[int, Deferred[dict[str, Any]]] = {}
        closed: Deferred[None] = Deferred()

        def onFrame(streamId: str, seq: int, payload: bytes) -> None:
            message = json.loads(payload)
            if "id" in message and message["id"] in replies:
                replies.pop(message["id"]).callback(message)
                return
            params = message.get("params", {})
            if message.get("method") == "process/output":
                checker.feed(base64.b64decode(params["chunk"]))
            elif message.get("method") == "process/closed" and not closed.called:
                closed.callback(None)

        conn.onFrame = onFrame
        seq = 0

        def request(ident: int, method: str, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
            nonlocal seq
            d: Deferred[dict[str, Any]] = Deferred()
            replies[ident] = d
            body = json.dumps({"id": ident, "method": method, "params": params}).encode()
            conn.sendFrame(encodeData("slow-1", seq, body))
            seq += 1
            return d

        conn.sendFrame(encodeResume("slow-1"))
        await common.bounded(reactor, request(1, "initialize", {"clientName": "slow"}))
        conn.sendFrame(encodeData("slow-1", seq, b'{"method":"initialized"}'))
        seq += 1
        await common.pause(reactor, 0.5)
        sampler = run.sampleRss(sampleEvery)
        result.rssIdle = result.rssStart
        script = os.path.join(cloud.tmp, "writer.py")
        with open(script, "w") as f:
            f.write(WRITER)
        reply = await common.bounded(
            reactor,
            request(
                2,
                "process/start",
                common.startParams("writer", [sys.executable, script, str(blocks)], cloud.tmp),
            ),
        )
        if "result" not in reply:
            raise AssertionError(f"writer: {reply!r}")
        expectedSeconds = blocks * BLOCK * 1.4 / rate
        await common.bounded(reactor, closed, expectedSeconds * 2 + common.STEP_TIMEOUT)
        sampler.stop()
        result.bytesReceived = checker.offset
        result.firstBadOffset = checker.firstBad
        result.intact = checker.firstBad is None and checker.offset == blocks * BLOCK
        result.wireBytes = conn.bytesRead
        await run.finish()
        result.rssPeak = max(result.rssPeak, result.rssEnd)  # sampling stopped with the writer
        result.rssGrowth = result.rssPeak - result.rssIdle
        return result

    return await common.withCloud(reactor, SlowRendezvous(reactor, rate), body)


#: The slow-consumer bound on the executor's RSS growth over idle (docs/flow-control.md):
#: the per-connection and per-stream buffers are a few MiB; without flow control a 20 MB
#: run alone grows it by more than this.
RSS_GROWTH_BOUND = 16 * 1024 * 1024
