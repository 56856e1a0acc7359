"""Scenario load: many streams running commands that print unique tokens; no cross-talk."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import DeferredList, ensureDeferred

from twisted_exec.testing.rendezvous import HarnessStream, Rendezvous
from twisted_exec.testing.soak import common


@dataclass
class LoadResult(common.Common):
    streams: int = 0
    processes: int = 0
    crossTalk: int = 0
    wrongOutput: int = 0
    rssAfterWarmup: int = 0


async def load(
    reactor: Any, streams: int = 8, seconds: float = 3.0, executorArgs: tuple[str, ...] = ()
) -> LoadResult:
    """``streams`` streams, each running ``echo <unique token>`` in a loop for ``seconds``."""
    result = LoadResult(streams=streams)

    async def body(cloud: common.Cloud) -> LoadResult:
        run = common.Run(cloud, result, executorArgs)
        executor = run.executor
        ids = [f"load-{i}" for i in range(streams)]
        conn, harness = await common.connectAndInitialize(cloud, ids)
        run.sampleRss(0.5)
        until = time.monotonic() + seconds
        warmup = time.monotonic() + seconds / 4  # sessions reach their retention caps
        salt = os.urandom(4).hex()

        async def loop(index: int, stream: HarnessStream) -> None:
            n = 0
            while time.monotonic() < until:
                n += 1
                token = f"{salt}-{index}-{n}"
                try:
                    out = await common.runProcess(
                        reactor, stream, f"{index}-{n}", ["/bin/echo", token], cloud.tmp
                    )
                except AssertionError as err:
                    if "cross-talk" in str(err):
                        result.crossTalk += 1
                        return
                    raise
                result.processes += 1
                if out != token.encode() + b"\n":
                    result.wrongOutput += 1
                    if re.match(rb"[0-9a-f]+-\d+-\d+", out):
                        result.crossTalk += 1
                if result.rssAfterWarmup == 0 and time.monotonic() > warmup:
                    result.rssAfterWarmup = executor.rss()

        await common.bounded(
            reactor,
            DeferredList(
                [ensureDeferred(loop(i, harness[sid])) for i, sid in enumerate(ids)],
                fireOnOneErrback=True,
                consumeErrors=True,
            ),
            seconds + common.STEP_TIMEOUT,
        )
        # every message on every stream belongs to that stream's own processes
        for i, sid in enumerate(ids):
            for message in harness[sid].messages:
                pid = message.get("params", {}).get("processId")
                if pid is not None and not str(pid).startswith(f"{i}-"):
                    result.crossTalk += 1
        if conn.orphans:
            result.crossTalk += len(conn.orphans)
        await run.finish()
        return result

    return await common.withCloud(reactor, Rendezvous(reactor), body)
