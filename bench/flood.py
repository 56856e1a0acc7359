"""``/readyz`` latency of a rendezvous while one harness opens 100,000 streams and reads nothing.

Usage::

    python bench/flood.py [--streams 100000] [--seconds 8] [--source DIR] [--json]

The rendezvous runs as its own process (``twistd codex-rendezvous``), so its event loop is
measured, not ours; the flooding harness and the ``/readyz`` prober are two more processes
(``bench/floodpeer.py``); an executor websocket in this process answers every stream it is
offered, so the replies back up behind the harness that does not read. ``GET /readyz`` is timed
every 20 ms, for 2 s on the idle rendezvous (what the machine's load alone costs) and then for
``--seconds`` during the flood. Before the fix, every write to the full harness buffer walked all
the harness's routes, and 20,000 streams froze the rendezvous for 54 s; with the O(1) pause, the
per-harness stream cap and paced reads the worst answer stays within ~100 ms of the idle worst
on a loaded 2-core machine. ``--source DIR`` runs the rendezvous from another checkout (before /
after).

The suite runs the same scenario (``tests/test_rendezvous_flood.py``) for what it guarantees
without a clock: every probe answered 200, no more streams than the cap reached the executor; the
pacing itself is counted in reactor turns by ``tests/test_rendezvous_pacing.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from twisted_exec.rendezvous.frame_head import readHead
from twisted_exec.testing.executorproc import SOURCE_ROOT, TWISTD
from twisted_exec.testing.rawhttp import rawExchange
from twisted_exec.wire.frames import encodeData

PEER = Path(__file__).with_name("floodpeer.py")


class Child(ProcessProtocol):
    def __init__(self) -> None:
        self.firstLine: Deferred[str] = Deferred()
        self.ended: Deferred[None] = Deferred()
        self.out = b""
        self.err = b""

    def outReceived(self, data: bytes) -> None:
        self.out += data
        if b"\n" in self.out and not self.firstLine.called:
            self.firstLine.callback(self.out.split(b"\n")[0].decode().strip())

    def errReceived(self, data: bytes) -> None:
        self.err = (self.err + data)[-8192:]

    def processEnded(self, reason: Failure) -> None:
        if not self.firstLine.called:
            self.firstLine.errback(RuntimeError(f"ended early: {self.err[-2000:]!r}"))
        self.ended.callback(None)


class _Executor(WebSocketClientProtocol):  # type: ignore[misc]
    """Answers the first frame of every stream with a small data frame."""

    answered = 0

    def onOpen(self) -> None:
        self.factory.opened.callback(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        head = readHead(payload)
        if not isinstance(head, str) and head.kind == "resume":
            self.sendMessage(encodeData(head.streamId, 0, b'{"id":0,"result":{}}'), isBinary=True)
            type(self).answered += 1


@dataclass
class Probes:
    """What the ``/readyz`` prober saw: (latency in seconds, HTTP status) per probe."""

    answers: list[tuple[float, str]] = field(default_factory=list)

    @property
    def latencies(self) -> list[float]:
        return [seconds for seconds, _ in self.answers]

    @property
    def statuses(self) -> list[str]:
        return [status for _, status in self.answers]


@dataclass
class FloodRun:
    streams: int
    said: str  # the flooder's "sent N" or "cut off after N"
    idle: Probes
    flood: Probes
    answered: int  # streams the executor was offered
    listedStreams: int  # the executor's streams in /cloud/executors after the flood


def _probes(out: bytes) -> Probes:
    lines = [line.split() for line in out.decode().splitlines() if line]
    return Probes([(float(ms) / 1000, status) for ms, status in lines])


async def runFlood(
    reactor: Any,
    token: str,
    streams: int,
    seconds: float = 8,
    source: str = str(SOURCE_ROOT),
    addCleanup: Callable[..., object] | None = None,
    learn: Callable[[str], object] = lambda url: None,
) -> FloodRun:
    """The whole scenario; ``addCleanup`` receives what must run at the end (the test's, or a
    list the script runs), ``learn`` the executor's signed URL (the test's log guard)."""
    cleanups: list[Callable[[], object]] = []
    add = addCleanup if addCleanup is not None else cleanups.append

    def spawn(argv: list[str], env: dict[str, str]) -> tuple[Any, Child]:
        child = Child()
        transport = reactor.spawnProcess(child, argv[0], argv, env=env, path=source)

        def stop() -> Deferred[None]:
            if not child.ended.called:
                transport.signalProcess("KILL")
            return child.ended

        add(stop)
        return transport, child

    try:
        env = {**os.environ, "PYTHONPATH": source, "CODEX_RENDEZVOUS_TOKENS": token}
        argv = [
            str(TWISTD),
            "-n",
            "--pidfile=",
            "codex-rendezvous",
            "--listen",
            "http://127.0.0.1:0",
        ]
        _, rendezvous = spawn(argv, env)
        url = await rendezvous.firstLine.addTimeout(30, reactor)
        port = int(url.rsplit(":", 1)[1])
        auth = f"Authorization: Bearer {token}\r\n"
        registration = await rawExchange(
            reactor,
            "127.0.0.1",
            port,
            (
                f"POST /cloud/executor/flood-box/register HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"{auth}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
            ).encode(),
        )
        executorUrl = json.loads(registration.body)["url"]
        learn(executorUrl)
        factory: Any = WebSocketClientFactory(executorUrl, reactor=reactor)
        factory.protocol = _Executor
        factory.opened = Deferred()
        factory.setProtocolOptions(openHandshakeTimeout=0, closeHandshakeTimeout=0)
        _Executor.answered = 0
        await TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=10).connect(factory)
        executor = await factory.opened.addTimeout(10, reactor)
        add(lambda: executor.dropConnection(abort=True))

        peerEnv = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT)}
        probe = [sys.executable, str(PEER), "probe", "127.0.0.1", str(port)]
        _, idleProber = spawn([*probe, "2"], peerEnv)
        await idleProber.ended.addTimeout(60, reactor)
        _, prober = spawn([*probe, str(seconds)], peerEnv)
        flood = [sys.executable, str(PEER), "127.0.0.1", str(port), "flood-box", token]
        flooderTransport, flooder = spawn([*flood, str(streams)], peerEnv)
        said = await flooder.firstLine.addTimeout(60, reactor)
        await prober.ended.addTimeout(60 + seconds, reactor)
        flooderTransport.closeStdin()
        request = (
            f"GET /cloud/executors HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
        )
        listing = await rawExchange(reactor, "127.0.0.1", port, request.encode(), timeout=30)
        listed = json.loads(listing.body)["executors"][0]["streams"]
        return FloodRun(
            streams, said, _probes(idleProber.out), _probes(prober.out), _Executor.answered, listed
        )
    finally:
        for cleanup in reversed(cleanups):
            result = cleanup()
            if isinstance(result, Deferred):
                await result


def summary(run: FloodRun) -> dict[str, Any]:
    flood = sorted(run.flood.latencies)
    idle = run.idle.latencies
    return {
        "streams": run.streams,
        "flooder": run.said,
        "probes": len(flood),
        "worstMs": round(max(flood) * 1000, 1) if flood else None,
        "medianMs": round(flood[len(flood) // 2] * 1000, 1) if flood else None,
        "idleWorstMs": round(max(idle) * 1000, 1) if idle else None,
        "loadAverage": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    from twisted.internet import task

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--source", default=str(SOURCE_ROOT), help="the rendezvous's checkout")
    parser.add_argument("--json", action="store_true", help="one JSON line")
    args = parser.parse_args(argv)

    async def run(reactor: Any) -> None:
        result = summary(
            await runFlood(reactor, "tok-FLOOD-bench", args.streams, args.seconds, args.source)
        )
        if args.json:
            print(json.dumps(result))
        else:
            print(
                f"{result['streams']} streams from one harness ({result['flooder']}): "
                f"{result['probes']} /readyz probes, worst {result['worstMs']} ms (idle worst "
                f"{result['idleWorstMs']} ms), median {result['medianMs']} ms; load average "
                f"{result['loadAverage']:.1f}"
            )

    task.react(lambda reactor: Deferred.fromCoroutine(run(reactor)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
