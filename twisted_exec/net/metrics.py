"""Prometheus metrics of the executor and the rendezvous, and the ``/metrics`` resource.

Each service owns one :class:`ExecutorMetrics` or :class:`RendezvousMetrics` with its own
``CollectorRegistry`` (never prometheus_client's global one): two executors in one process, or
one per test, never mix their numbers.

Counters and histograms are moved by the code that sees the event, one method call each. The
ones moved per message or per request (bytes, routed frames, request latency) are summed in
plain ints on the reactor thread and added to prometheus_client's children when the registry is
rendered (:meth:`_Base.render`): prometheus_client's own ``inc``/``observe`` take a lock per
value, and ``Histogram.observe`` walks its buckets in Python, about 2 µs of a relay call. Every
reader goes through ``render``, so what a scrape shows is unchanged. Gauges of things the
executor already counts (sessions, streams, running processes) are *read at scrape time* through
:meth:`ExecutorMetrics.gaugeFrom`, so nothing on the hot path keeps them in step.

Why not ``prometheus_client.twisted.MetricsResource``: it imports the global reactor and answers
each scrape through WSGI on the reactor's thread pool. :class:`MetricsResource` here renders the
same text exposition (``generate_latest``) on the reactor thread: the registry lives in memory and
rendering it takes microseconds, so a thread buys nothing, and the reactor stays injected.
"""

from __future__ import annotations

from bisect import bisect_left
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
#: The pending-histogram key of every method folded into "other" (not a string: no clash).
_OTHER = ("other",)


def methodLabel(method: str) -> str:
    """The ``method`` label for a request: known method names as they are, else ``other``."""
    if len(method) <= _MAX_METHOD_LABEL and method.startswith(_KNOWN_METHOD_PREFIXES):
        return method
    return "other"


class PendingHistogram:
    """Observations of one histogram child, counted per bucket until the next render.

    ``observe`` is a bisect and two additions; :meth:`flush` adds the counts to the child's
    buckets and sum. prometheus_client has no public call that adds *n* observations to a
    bucket, so flush uses the child's ``_buckets``/``_sum`` values, stable across the 0.x
    releases we allow (``<1``; tests/test_ops_units.py checks the exposition)."""

    __slots__ = ("_bounds", "_child", "_counts", "_sum")

    def __init__(self, child: Any, bounds: tuple[float, ...]) -> None:
        self._child = child
        self._bounds = bounds  # finite upper bounds, ascending; +Inf is the last bucket
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0

    def observe(self, value: float) -> None:
        # prometheus_client's rule: the first bucket whose upper bound is >= value.
        self._counts[bisect_left(self._bounds, value)] += 1
        self._sum += value

    def flush(self) -> None:
        counts, self._counts = self._counts, [0] * len(self._counts)
        if not any(counts):
            return
        buckets = self._child._buckets
        for index, count in enumerate(counts):
            if count:
                buckets[index].inc(count)
        self._child._sum.inc(self._sum)
        self._sum = 0.0


class _Base:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        #: Values summed on the hot path, added to their children at render time.
        self._pendingCounts: dict[Any, list[Any]] = {}  # key -> [child, amount]
        self._pendingHistograms: dict[Any, PendingHistogram] = {}

    def _add(self, key: Any, counter: Any, labels: tuple[str, ...], amount: float) -> None:
        """``counter.labels(*labels).inc(amount)``, deferred to the next render."""
        pending = self._pendingCounts.get(key)
        if pending is None:  # prometheus_client's labels() costs a lock and a tuple per call
            pending = self._pendingCounts[key] = [counter.labels(*labels), 0]
        pending[1] += amount

    def gaugeFrom(self, name: str, documentation: str, read: Callable[[], float]) -> Gauge:
        """A gauge whose value is ``read()`` at scrape time."""
        gauge = Gauge(name, documentation, registry=self.registry)
        gauge.set_function(read)
        return gauge

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric in this registry, once the values
        summed since the last render are in their children."""
        self.flushPending()
        return generate_latest(self.registry)

    def flushPending(self) -> None:
        for pending in self._pendingCounts.values():
            if pending[1]:
                pending[0].inc(pending[1])
                pending[1] = 0
        for histogram in self._pendingHistograms.values():
            histogram.flush()


class ExecutorMetrics(_Base):
    """What an executor reports; see README "Operating it" for the meaning of each."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry
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
        pending = self._pendingCounts.get(("in", transport))
        if pending is None:
            self._add(("in", transport), self.bytesReceived, (transport,), size)
        else:
            pending[1] += size

    def sent(self, transport: str, size: int) -> None:
        pending = self._pendingCounts.get(("out", transport))
        if pending is None:
            self._add(("out", transport), self.bytesSent, (transport,), size)
        else:
            pending[1] += size

    def registration(self, outcome: str) -> None:
        self.registrations.labels(outcome).inc()

    def connection(self, outcome: str) -> None:
        self.connections.labels(outcome).inc()

    def requestDone(self, method: str, seconds: float) -> None:
        histogram = self._pendingHistograms.get(method)
        if histogram is None:
            # Keyed by the method as sent, so one peer's invented names are folded into
            # "other" here and cannot grow this dict past the label cap either.
            label = methodLabel(method)
            if label == "other":
                histogram = self._pendingHistograms.get(_OTHER)
            if histogram is None:
                child = self.requestLatency.labels(label)
                histogram = PendingHistogram(child, LATENCY_BUCKETS)
                self._pendingHistograms[method if label != "other" else _OTHER] = histogram
        histogram.observe(seconds)

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
        frames = self._pendingCounts.get(("frames", direction))
        if frames is None:
            self._add(("frames", direction), self.frames, (direction,), 1)
            self._add(("bytes", direction), self.bytes, (direction,), size)
            return
        frames[1] += 1
        self._pendingCounts["bytes", direction][1] += size
