"""The relay benchmark's harness in its own OS process (``bench/relay.py --harness-process``).

Why: a production harness runs elsewhere. When the harness shares the benchmark's Twisted
process (and its core) with the rendezvous, both executors are throttled by the same Python
loop and the ratios look kinder than they are. Here the harness is a second interpreter that
dials the rendezvous's real ``/harness/{executor id}`` websocket (TCP_NODELAY set, as a real
harness would), so the rendezvous routes every frame the way it routes a cloud harness's.

The driver talks to it over a pipe, one JSON object per line each way::

    -> {"seq": 1, "op": "connect", "target": "ours", "url": "ws://.../harness/ID"}
    <- {"seq": 1, "ok": {}}
    -> {"seq": 2, "op": "calls", "target": "ours", "streams": 16, "inflight": 4, ...}
    <- {"seq": 2, "ok": {"calls_s": ..., "p50_ms": ..., "p99_ms": ..., "cpu_us": ...}}

Operations: ``connect``, ``disconnect``, ``open`` (hold ``count`` initialized streams under
``handle``), ``close`` (reset a held handle), ``calls`` (on a held ``handle`` or on ``streams``
fresh ones), ``output`` and ``spawn``. The workloads are :mod:`bench.workloads`, the same code the
in-process mode runs; the executor's CPU and RSS are read from ``/proc/PID`` here, on the same
machine. An error becomes ``{"seq": N, "error": TEXT}`` and the worker goes on.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, cast

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import connectionDone
from twisted.internet.stdio import StandardIO
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from twisted_exec.net.nodelay import NoDelayMixin
from twisted_exec.testing.rendezvous import ExecutorConnection, HarnessStream
from twisted_exec.wire import relay_pb2
from twisted_exec.wire.wsframe import binaryFrame, newMaskKey

# This source tree's bench package (bench.workloads), as for the driver.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import workloads


class HarnessHost:
    """The harness side of one websocket (a :class:`workloads.StreamHost`): streams by id."""

    def __init__(self) -> None:
        self.opened: Deferred[HarnessHost] = Deferred()
        self.frames: list[bytes] = []  # nothing is recorded here
        self.orphans: list[bytes] = []
        self.protocol: HarnessSocket | None = None
        self._streams: dict[str, HarnessStream] = {}

    def stream(self, streamId: str) -> HarnessStream:
        if streamId not in self._streams:
            self._streams[streamId] = HarnessStream(cast(ExecutorConnection, self), streamId)
        return self._streams[streamId]

    def forgetStream(self, streamId: str) -> None:
        self._streams.pop(streamId, None)

    def sendFrame(self, raw: bytes) -> None:
        """One masked binary websocket frame, one write (what the executor's relay does)."""
        assert self.protocol is not None
        transport: Any = self.protocol.transport
        transport.write(binaryFrame(raw, newMaskKey()))

    def frameReceived(self, raw: bytes) -> None:
        frame = relay_pb2.RelayMessageFrame()
        frame.ParseFromString(raw)
        if frame.WhichOneof("body") != "data":
            return
        stream = self._streams.get(frame.stream_id)
        if stream is not None:
            stream._deliver(frame.data.seq, frame.data.payload)

    def abort(self) -> None:
        if self.protocol is not None:
            self.protocol.dropConnection(abort=True)


class HarnessSocket(NoDelayMixin, WebSocketClientProtocol):  # type: ignore[misc]
    factory: HarnessFactory

    def connectionMade(self) -> None:
        super().connectionMade()
        self.factory.harness.protocol = self

    def onOpen(self) -> None:
        self.factory.harness.opened.callback(self.factory.harness)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.factory.harness.frameReceived(payload)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        opened = self.factory.harness.opened
        if not opened.called:
            opened.errback(RuntimeError(f"harness websocket refused: {code} {reason}"))


class HarnessFactory(WebSocketClientFactory):  # type: ignore[misc]
    protocol = HarnessSocket  # type: ignore[assignment]

    def __init__(self, url: str, host: HarnessHost) -> None:
        super().__init__(url)
        self.harness = host
        self.setProtocolOptions(
            maxMessagePayloadSize=0,
            maxFramePayloadSize=0,
            openHandshakeTimeout=0,
            closeHandshakeTimeout=0,
        )


class Worker(LineReceiver):
    """Reads commands from stdin, runs them one after another, answers on stdout."""

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.sockets: dict[str, HarnessHost] = {}
        self.held: dict[str, tuple[str, list[HarnessStream]]] = {}
        self.done: Deferred[None] = Deferred()
        self._queue: defer.DeferredLock = defer.DeferredLock()

    def lineReceived(self, line: bytes) -> None:
        command = json.loads(line)
        self._queue.run(lambda: Deferred.fromCoroutine(self._run(command)))

    async def _run(self, command: dict[str, Any]) -> None:
        seq = command.get("seq")
        try:
            result = await self.handle(command)
            answer: dict[str, Any] = {"seq": seq, "ok": result}
        except Exception as caught:
            err: BaseException = caught
            if isinstance(err, defer.FirstError) and err.subFailure.value is not None:
                err = err.subFailure.value
            if isinstance(err, defer.TimeoutError | defer.CancelledError):
                text = "timeout"
            else:
                text = str(err).splitlines()[0] if str(err) else type(err).__name__
            answer = {"seq": seq, "error": text}
        transport: Any = self.transport
        transport.write(json.dumps(answer).encode() + b"\n")

    async def handle(self, c: dict[str, Any]) -> dict[str, Any]:
        op = c["op"]
        if op == "connect":
            await self.connect(c["target"], c["url"])
            return {}
        if op == "disconnect":
            sock = self.sockets.pop(c["target"], None)
            if sock is not None:
                sock.abort()
            return {}
        if op == "close":
            target, streams = self.held.pop(c["handle"])
            workloads.closeStreams(self.sockets[target], streams)
            return {}
        sock = self.sockets[c["target"]]
        pid = c.get("pid")
        if op == "open":
            streams = await workloads.openStreams(self.reactor, sock, c["count"])
            self.held[c["handle"]] = (c["target"], streams)
            return {}
        if op == "calls":
            if "handle" in c:
                streams = self.held[c["handle"]][1]
            else:
                streams = await workloads.openStreams(self.reactor, sock, c["streams"])
            try:
                return await workloads.driveCalls(
                    self.reactor,
                    streams,
                    c["inflight"],
                    c["path"],
                    c["warmup"],
                    c["window"],
                    pid,
                    method=c.get("method", "fs/getMetadata"),
                    watch={"harness": os.getpid(), **c.get("watch", {})},
                )
            finally:
                if "handle" not in c:
                    workloads.closeStreams(sock, streams)
        if op == "output":
            return await Deferred.fromCoroutine(
                workloads.processOutput(self.reactor, sock, c["cwd"], c["size"], c["tty"], pid)
            ).addTimeout(120, self.reactor)
        if op == "sequential":
            return await workloads.sequentialLifecycles(self.reactor, sock, c["cwd"], c["count"])
        if op == "spawn":
            return await workloads.spawnRate(self.reactor, sock, c["cwd"], c["count"], pid)
        raise ValueError(f"unknown op {op!r}")

    async def connect(self, target: str, url: str) -> None:
        old = self.sockets.pop(target, None)
        if old is not None:
            old.abort()
        host = HarnessHost()
        factory = HarnessFactory(url, host)
        self.reactor.connectTCP(factory.host, factory.port, factory, timeout=10)
        await host.opened.addTimeout(10, self.reactor)
        self.sockets[target] = host

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        for sock in self.sockets.values():
            sock.abort()
        if not self.done.called:
            self.done.callback(None)


def main(workerClass: type[Worker] = Worker) -> None:
    """Serve commands on stdin/stdout until stdin closes (``bench/noise_worker.py`` passes its
    own :class:`Worker` subclass)."""

    def run(reactor: Any) -> Deferred[None]:
        worker = workerClass(reactor)
        StandardIO(worker, reactor=reactor)
        return worker.done

    task.react(run)


if __name__ == "__main__":
    main()
