"""Per-call CPU of the executor's Noise relay path (0.171), in one process, without sockets.

Usage::

    python bench/noisepath.py [--calls 20000] [--profile] [--clear]

The Noise twin of ``bench/callpath.py``: a harness-side :class:`NoiseHarnessStream` opens one
stream on :class:`NoiseRelayDemux` (hybrid IK handshake, a validator that says yes at once),
sends ``initialize``, then the timed part feeds pre-encrypted ``data`` frames of the 0.171
``fs/getMetadata`` (a ``file:`` URI, answered by the real 0.171 handler on a pool that runs the
``stat`` inline and hands back a fired Deferred, so no thread) and counts the process CPU per
call from the inbound frame to the outbound masked websocket frame: record decryption, the
demux, the 0.171 params (URI parsing), dispatch, the reply's framing and encryption. What
the Noise path adds over the clear one is the difference to ``bench/callpath.py --gated``;
``--clear`` prints that too, measured in the same process. ``--profile`` prints the top
functions (cProfile). A tree from another commit is measured with ``PYTHONPATH=DIR``.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock

if __name__ == "__main__" and "PYTHONPATH" not in os.environ:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this source tree
from twisted_exec.executor.core.processor_factory import ExecProcessorFactory
from twisted_exec.executor.core.session import SessionRegistry
from twisted_exec.executor.methods import buildRegistry, fs171
from twisted_exec.executor.resources.filesystem import FileSystem
from twisted_exec.executor.transports.relay.noise_demux import NoiseRelayDemux
from twisted_exec.harness.noise_stream import ConnectBundle, NoiseHarnessStream
from twisted_exec.wire import noise
from twisted_exec.wire.wsframe import binaryFrame, maskPayload, newMaskKey

STREAM = "8a5f0c3e-0000-4000-8000-000000000001"


class _InlinePool:
    """The offload pool's ``deferToPool`` run inline: the ``stat`` costs what it costs, but
    there is no thread hand-off to time (that is the same for both relays)."""

    def deferToPool(self, reactor: Any, f: Callable[..., Any], *args: Any) -> Deferred[Any]:
        try:
            return succeed(f(*args))
        except BaseException:
            return fail()

    def callInThreadWithCallback(
        self, onResult: Callable[[bool, Any], None], func: Callable[..., Any], *args: Any
    ) -> None:
        raise AssertionError("noisepath: every call should take deferToPool")


class _Resources:
    def __init__(self, session: Any) -> None:
        self.processes = None
        self.http = None

    def close(self) -> None:
        pass


def _validate(key: noise.NoisePublicKey, authorization: str, streamId: str) -> Deferred[bool]:
    return succeed(True)


class _Stream:
    """One Noise stream opened on a fresh demux, initialized, with the harness's end."""

    def __init__(self) -> None:
        clock = Clock()
        registry = SessionRegistry(clock, cast(Any, _Resources), ttl=10.0)
        methods = buildRegistry()
        pool = _InlinePool()
        fs171.register(methods, fs171.FsStreams(clock, pool, hub=cast(Any, object())))
        filesystem = FileSystem(cast(Any, clock), threadpool=cast(Any, pool))
        factory = ExecProcessorFactory(registry, filesystem, methods=methods)
        self.out: list[bytes] = []
        executor = noise.NoiseIdentity.generate()
        self.demux = NoiseRelayDemux(
            factory,
            lambda raw: self.out.append(binaryFrame(raw, newMaskKey())),
            identity=executor,
            environmentId="env-bench",
            executorRegistrationId="reg-bench",
            validator=_validate,
            clock=clock,
            onExhausted=lambda: None,
        )
        bundle = ConnectBundle("env-bench", "ws://x", "reg-bench", executor.publicKey, "auth")
        self.harness = NoiseHarnessStream(noise.NoiseIdentity.generate(), bundle, STREAM)
        for raw in self.harness.openingFrames():
            self.demux.frameReceived(raw)
        self.exchange([])
        assert self.harness.established
        initialize = {"id": 0, "method": "initialize", "params": {"clientName": "bench"}}
        [reply] = self.exchange([initialize, {"method": "initialized"}])
        assert "result" in reply, reply
        self.nextId = 1

    def frames(self, method: str, params: dict[str, Any], calls: int) -> list[bytes]:
        """``calls`` requests, encrypted as the harness sends them."""
        out = []
        for _ in range(calls):
            body = {"id": self.nextId, "method": method, "params": params}
            self.nextId += 1
            out.extend(self.harness.encodeMessage(json.dumps(body).encode()))
        return out

    def exchange(self, messages: list[dict[str, Any]]) -> list[Any]:
        """Send ``messages`` (not timed) and read every reply back."""
        for message in messages:
            for raw in self.harness.encodeMessage(json.dumps(message).encode()):
                self.demux.frameReceived(raw)
        replies = [json.loads(m) for f in self.out for m in self.harness.frameReceived(_open(f))]
        self.out.clear()
        return replies

    def timed(self, frames: list[bytes], profiler: cProfile.Profile | None) -> float:
        """Process CPU seconds to take in ``frames`` and write every reply."""
        if profiler is not None:
            profiler.enable()
        start = time.process_time()
        for raw in frames:
            self.demux.frameReceived(raw)
        elapsed = time.process_time() - start
        if profiler is not None:
            profiler.disable()
        return elapsed


def _open(frame: bytes) -> bytes:
    """The payload of one of our masked client frames (header, 4-byte key, masked payload)."""
    size = frame[1] & 0x7F
    start = 2 + {126: 2, 127: 8}.get(size, 0)
    return maskPayload(frame[start + 4 :], frame[start : start + 4])


def run(calls: int, path: str, profiler: cProfile.Profile | None = None) -> float:
    """µs of process CPU per ``fs/getMetadata`` through an open Noise stream (``profiler``:
    enabled for the timed calls only)."""
    stream = _Stream()
    params = {"path": Path(path).resolve().as_uri()}
    [check] = stream.exchange([{"id": 0, "method": "fs/getMetadata", "params": params}])
    assert "result" in check, check
    frames = stream.frames("fs/getMetadata", params, calls)
    elapsed = stream.timed(frames, profiler)
    assert len(stream.out) == calls, len(stream.out)
    return elapsed / calls * 1e6


def runRead(reads: int, size: int, profiler: cProfile.Profile | None = None) -> float:
    """ms of process CPU per MB (10^6 bytes of file) of ``fs/readFile`` of a ``size``-byte file:
    the file read and base64 run inline here, as on the executor's pool."""
    stream = _Stream()
    with tempfile.NamedTemporaryFile(prefix="noisepath-") as f:
        f.write(os.urandom(size))
        f.flush()
        params = {"path": Path(f.name).as_uri()}
        [check] = stream.exchange([{"id": 0, "method": "fs/readFile", "params": params}])
        assert len(check["result"]["dataBase64"]) >= size, check.get("error")
        frames = stream.frames("fs/readFile", params, reads)
        elapsed = stream.timed(frames, profiler)
    assert len(stream.out) >= reads, len(stream.out)
    return elapsed / (reads * size / 1e6) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--calls", type=int, default=20000)
    p.add_argument("--path", default=".", help="the directory fs/getMetadata asks about")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--clear", action="store_true", help="also bench/callpath.py --gated")
    p.add_argument(
        "--read",
        type=int,
        metavar="BYTES",
        help="fs/readFile of a file of BYTES instead (--calls reads): CPU per MB",
    )
    args = p.parse_args()
    measure = (
        functools.partial(runRead, size=args.read)
        if args.read
        else functools.partial(run, path=args.path)
    )
    unit, warmup = ("ms per MB of fs/readFile", 1) if args.read else ("µs per call", 1000)
    measure(warmup)
    if args.profile:
        profiler = cProfile.Profile()
        measure(args.calls, profiler=profiler)
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(30)
        return
    samples = sorted(measure(args.calls) for _ in range(5))
    print(f"noise: {samples[2]:.2f} {unit} (median of 5; min {samples[0]:.2f})")
    if args.clear and not args.read:
        from bench import callpath

        callpath._Resources.gated = callpath._FileSystem.deferred = True
        callpath.run(1000)
        clear = sorted(callpath.run(args.calls) for _ in range(5))
        print(f"clear: {clear[2]:.1f} µs per call (median of 5; min {clear[0]:.1f})")


if __name__ == "__main__":
    main()
