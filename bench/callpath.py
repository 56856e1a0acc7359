"""Per-call CPU of the executor's protocol path, in one process, without sockets or threads.

Usage::

    python bench/callpath.py [--calls 20000] [--profile]

Feeds relay frames of ``fs/getMetadata`` (answered synchronously by a fake filesystem, so no
thread hand-off) to :class:`RelayDemux` over one initialized stream and counts the CPU time per
call from the inbound frame to the outbound masked websocket frame: what the relay path costs
before the socket and the system call. ``--profile`` prints the top functions (cProfile).
Deterministic enough to compare commits on a busy machine (it measures process CPU time).
``--gated``: the fs call goes through a session fs gate (``DeferredSemaphore``) and is answered
with a fired Deferred, the executor's shape without the thread hand-off.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any, cast

from twisted.internet.defer import DeferredSemaphore, succeed
from twisted.internet.task import Clock

if __name__ == "__main__" and "PYTHONPATH" not in os.environ:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this source tree
try:
    from twisted_exec.executor.core.processor_factory import ExecProcessorFactory
except ImportError:  # a tree from before the split (PYTHONPATH=DIR, for a before/after)
    from twisted_exec.executor.core.processor import (  # type: ignore[attr-defined,no-redef]
        ExecProcessorFactory,
    )
from twisted_exec.executor.core.session import SessionRegistry
from twisted_exec.executor.methods import buildRegistry
from twisted_exec.executor.transports.relay.demux import RelayDemux
from twisted_exec.wire.frames import encodeData
from twisted_exec.wire.wsframe import binaryFrame, newMaskKey


class _Resources:
    gated = False  # --gated: the session's fs gate, as the executor's SessionResources has

    def __init__(self, session: Any) -> None:
        self.processes = None
        self.http = None
        if self.gated:
            self.fsGate = DeferredSemaphore(4)

    def close(self) -> None:
        pass


class _FileSystem:
    deferred = False  # --gated: answered with a fired Deferred, as the thread pool would

    def getMetadata(self, p: Any) -> Any:
        result = {
            "isDirectory": True,
            "isFile": False,
            "isSymlink": False,
            "createdAtMs": 0,
            "modifiedAtMs": 1796316679636,
        }
        return succeed(result) if self.deferred else result


def run(calls: int) -> float:
    registry = SessionRegistry(Clock(), cast(Any, _Resources), ttl=10.0)
    factory = ExecProcessorFactory(registry, _FileSystem(), methods=buildRegistry())
    out: list[bytes] = []

    def send(raw: bytes) -> None:
        out.append(binaryFrame(raw, newMaskKey()))

    demux = RelayDemux(factory, send)
    stream = "8a5f0c3e-0000-4000-8000-000000000001"
    seq = 0

    def frame(message: dict[str, Any]) -> bytes:
        nonlocal seq
        seq += 1
        return encodeData(stream, seq - 1, json.dumps(message).encode())

    demux.frameReceived(frame({"id": 0, "method": "initialize", "params": {"clientName": "b"}}))
    demux.frameReceived(frame({"method": "initialized"}))
    params = {"path": "/work/scratch"}
    frames = [
        frame({"id": i + 1, "method": "fs/getMetadata", "params": params}) for i in range(calls)
    ]
    out.clear()
    start = time.process_time()
    for raw in frames:
        demux.frameReceived(raw)
    elapsed = time.process_time() - start
    assert len(out) == calls, len(out)
    return elapsed / calls * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--calls", type=int, default=20000)
    p.add_argument("--profile", action="store_true")
    p.add_argument(
        "--gated",
        action="store_true",
        help="the fs call through the session's gate, answered with a Deferred (no thread)",
    )
    args = p.parse_args()
    _Resources.gated = _FileSystem.deferred = args.gated
    run(1000)  # warm up
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run(args.calls)
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(25)
        return
    samples = sorted(run(args.calls) for _ in range(5))
    print(f"{samples[2]:.1f} µs per call (median of 5; min {samples[0]:.1f})")


if __name__ == "__main__":
    main()
