"""Prometheus metrics of the executor and the rendezvous, and the ``/metrics`` resource.

Each service owns one :class:`ExecutorMetrics` or :class:`RendezvousMetrics` with its own
``CollectorRegistry`` (never prometheus_client's global one): two executors in one process, or
one per test, never mix their numbers.

Counters and the latency histogram are moved by the code that sees the event (one method call
each, cheap enough for the hot path: a lock and an add). Gauges of things the executor already
counts (sessions, streams, running processes) are *read at scrape time* through
:meth:`ExecutorMetrics.gaugeFrom`, so nothing on the hot path keeps them in step.

Why not ``prometheus_client.twisted.MetricsResource``: it imports the global reactor and answers
each scrape through WSGI on the reactor's thread pool. :class:`MetricsResource` here renders the
same text exposition (``generate_latest``) on the reactor thread: the registry lives in memory and
rendering it takes microseconds, so a thread buys nothing, and the reactor stays injected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from twisted.logger import Logger

log = Logger()

__all__ = [
    "ExecutorMetrics",
    "RendezvousMetrics",
]

#: Request latency buckets, seconds: an RPC round trip is ~0.2 ms here, a process/read with
#: waitMs or an http/request can take many seconds.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
RTT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

#: Method label values beyond these are folded into "other": a peer choosing method names must
#: not grow the registry without bound.
_KNOWN_METHOD_PREFIXES = ("initialize", "process/", "fs/", "http/", "environment", "capabilit")
_MAX_METHOD_LABEL = 64


def methodLabel(method: str) -> str:
    """The ``method`` label for a request: known method names as they are, else ``other``."""
    if len(method) <= _MAX_METHOD_LABEL and method.startswith(_KNOWN_METHOD_PREFIXES):
        return method
    return "other"


class _Base:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)

    def gaugeFrom(self, name: str, documentation: str, read: Callable[[], float]) -> Gauge:
        """A gauge whose value is ``read()`` at scrape time."""
        gauge = Gauge(name, documentation, registry=self.registry)
        gauge.set_function(read)
        return gauge

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric in this registry."""
        return generate_latest(self.registry)


class ExecutorMetrics(_Base):
    """What an executor reports; see README "Operating it" for the meaning of each."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        #: Labelled children already looked up, by (metric, label).
        self._children: dict[tuple[str, str], Any] = {}
        self.processesStarted = Counter(
            "codex_exec_processes_started",
            "Processes started (process/start that spawned)",
            registry=r,
        )
        self.bytesReceived = Counter(
            "codex_exec_received_bytes",
            "Bytes of JSON-RPC messages received, by transport",
            ["transport"],
            registry=r,
        )
        self.bytesSent = Counter(
            "codex_exec_sent_bytes",
            "Bytes of JSON-RPC messages sent, by transport",
            ["transport"],
            registry=r,
        )
        self.registrations = Counter(
            "codex_exec_registrations",
            "Registrations with the executor registry, by outcome (ok, refused, failed)",
            ["outcome"],
            registry=r,
        )
        self.connections = Counter(
            "codex_exec_relay_connections",
            "Relay websocket connection attempts after a registration, by outcome (open, "
            "failed) ; every one after the first is a reconnect",
            ["outcome"],
            registry=r,
        )
        self.requestLatency = Histogram(
            "codex_exec_request_duration_seconds",
            "Time from a request's arrival to its reply, by method",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.relayRtt = Histogram(
            "codex_exec_relay_rtt_seconds",
            "Round trip of websocket pings to the rendezvous",
            buckets=RTT_BUCKETS,
            registry=r,
        )

    # -- event hooks (one call each, from the code that sees the event) --------------------

    def processStarted(self) -> None:
        self.processesStarted.inc()

    def received(self, transport: str, size: int) -> None:
        child = self._children.get(("in", transport))
        if child is None:  # prometheus_client's labels() costs a lock and a tuple per call
            child = self._children["in", transport] = self.bytesReceived.labels(transport)
        child.inc(size)

    def sent(self, transport: str, size: int) -> None:
        child = self._children.get(("out", transport))
        if child is None:
            child = self._children["out", transport] = self.bytesSent.labels(transport)
        child.inc(size)

    def registration(self, outcome: str) -> None:
        self.registrations.labels(outcome).inc()

    def connection(self, outcome: str) -> None:
        self.connections.labels(outcome).inc()

    def requestDone(self, method: str, seconds: float) -> None:
        label = methodLabel(method)  # the children kept are prometheus_client's own
        child = self._children.get(("latency", label))
        if child is None:
            child = self._children["latency", label] = self.requestLatency.labels(label)
        child.observe(seconds)

    def pingAnswered(self, seconds: float) -> None:
        self.relayRtt.observe(seconds)


class RendezvousMetrics(_Base):
    """What the rendezvous reports."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.registrations = Counter(
            "codex_rendezvous_registrations",
            "Executor registrations, by outcome (ok, refused)",
            ["outcome"],
            registry=r,
        )
        self.websockets = Counter(
            "codex_rendezvous_websockets",
            "Websockets admitted or refused, by role (executor, harness) and outcome",
            ["role", "outcome"],
            registry=r,
        )
        self.frames = Counter(
            "codex_rendezvous_frames",
            "Relay frames routed, by direction (to_executor, to_harness)",
            ["direction"],
            registry=r,
        )
        self.bytes = Counter(
            "codex_rendezvous_routed_bytes",
            "Bytes of relay frames routed, by direction (to_executor, to_harness)",
            ["direction"],
            registry=r,
        )

    def registration(self, outcome: str) -> None:
        self.registrations.labels(outcome).inc()

    def websocket(self, role: str, outcome: str) -> None:
        self.websockets.labels(role, outcome).inc()

    def routed(self, direction: str, size: int) -> None:
        self.frames.labels(direction).inc()
        self.bytes.labels(direction).inc(size)
