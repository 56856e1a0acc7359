"""Sans-IO routing of relay frames between harness and executor websockets, by ``stream_id``.

The rendezvous is a switch, not an endpoint: it reads only a frame's ``stream_id`` and body kind
and forwards the original bytes. Sequencing, acks, segmentation and JSON-RPC are the endpoints'
business. What it owns is the *route table*: which harness websocket a stream belongs to, and
which executor websocket (one connection of one executor id) the stream was opened on.

- A stream is claimed by the first harness that sends a frame on it (normally its opening
  ``resume``); another harness using the same id gets a ``reset`` ("stream_id in use ...").
- A ``reset`` in either direction is forwarded and ends the route.
- A harness that disconnects: each of its streams is reset towards the executor, so the
  executor detaches the sessions at once instead of serving a dead peer.
- An executor whose websocket ends (or is replaced by a newer connection of the same id): each
  stream routed to it is reset towards its harness with :data:`EXECUTOR_DISCONNECTED`, so the
  harness fails its pending calls instead of waiting forever. Stream ids do not survive an
  executor's reconnect (the executor forgets them), so neither do routes; a harness opens a new
  stream and may resume its session there (``initialize {resumeSessionId}``).
- Frames for an executor that is not connected are answered with a reset
  (:data:`EXECUTOR_NOT_CONNECTED`), never queued.

Flow control: when a websocket's outbound buffer is full (:meth:`Router.peerPaused`, from the
transport's producer), the router stops reading the websockets that feed it, until it has
drained (:meth:`Router.peerResumed`). A slow executor pauses the harnesses sending to it.

A slow *harness* no longer pauses its executor's websocket (that stalled every other harness of
the executor, issue 15). Instead the router acknowledges delivery per stream
(:mod:`~twisted_exec.rendezvous.credits`): a stream whose harness stops reading stops getting
acks, and our executor pauses that stream alone at its source. Only when a slow harness has
more than ``DeliveryAcks.fallbackBytes`` outstanding (an executor that ignores acks) does the
router fall back to pausing the executor's websocket. Harness ``ack_frame`` frames are not
forwarded to executors (the reference ignores them; ours takes acks from the router only).

Peers are :class:`~.interfaces.IRelayPeer` providers; the websocket layer adapts autobahn
protocols to it, and tests drive the router with plain recording objects. The route table and
its indexes are in :mod:`.routes`, the little a frame is parsed for in :mod:`.frame_head`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger, LogLevel

from twisted_exec.net.ratelimit import RateLimitedLog
from twisted_exec.rendezvous.credits import DeliveryAcks
from twisted_exec.rendezvous.frame_head import FrameHead, readHead
from twisted_exec.rendezvous.routes import Route, RouteKey, RouteTable
from twisted_exec.wire.frames import encodeReset
from twisted_exec.wire.reasons import (
    EXECUTOR_DISCONNECTED,
    EXECUTOR_NOT_CONNECTED,
    HARNESS_DISCONNECTED,
    STREAM_IN_USE,
)

log = Logger()

#: Routes one harness websocket may hold (the executor's own --max-streams default is the same).
MAX_STREAMS_PER_HARNESS = 4096


@dataclass
class ExecutorRecord:
    """What the rendezvous knows of one executor id (for listings and the harness checks)."""

    executorId: str
    registeredAt: float | None = None
    connectedAt: float | None = None
    disconnectedAt: float | None = None
    connections: int = 0  # websockets accepted so far
    name: str | None = None  # the executor's --name, from its registration (ours send it)
    link: Any = None  # the current IRelayPeer, or None while disconnected
    waiters: list[tuple[int, Deferred[None]]] = field(default_factory=list)

    @property
    def connected(self) -> bool:
        return self.link is not None


class Router:
    """The route table and the rules above; the clock timestamps listings and paces log lines.

    Every operation a peer can trigger per frame or per write is O(1) in the number of routes
    (a harness may hold thousands of streams): flow control keeps, per peer, a count of routes
    to each counterpart, so a pause visits the distinct counterparts only, and a repeated pause
    (Twisted calls ``pauseProducing`` on every write while the buffer stays full) is a no-op.
    ``maxStreamsPerHarness`` caps the routes one harness websocket may hold; a frame opening
    one more is answered with a reset naming the limit.
    """

    def __init__(
        self,
        clock: IReactorTime,
        maxStreamsPerHarness: int | None = MAX_STREAMS_PER_HARNESS,
        *,
        deliveryAcks: bool = True,
    ) -> None:
        self._clock = clock
        self.maxStreamsPerHarness = maxStreamsPerHarness
        self._executors: dict[str, ExecutorRecord] = {}
        self._routes = RouteTable()
        self._slow: set[Any] = set()  # peers whose outbound buffer is full
        self._pausedBy: dict[Any, set[Any]] = {}  # peer not being read -> the slow peers why
        self._holding: dict[Any, set[Any]] = {}  # slow peer -> the peers it keeps paused
        self._refusedOpens: dict[Any, int] = {}  # harness -> streams refused in a row
        self._harnesses: set[Any] = set()  # peers that are harness websockets
        #: Per-stream delivery acks towards executors (credits.py); off for the byte-for-byte
        #: environment relays, where round 1's rule alone applies.
        self.acks = DeliveryAcks(clock, enabled=deliveryAcks)
        self.log = RateLimitedLog(clock, log)
        self.onUnrouted: Callable[[Any, str, bytes], None] = self._logUnrouted
        #: ``onRouted(direction, size)`` after each forwarded frame (metrics), when set.
        self.onRouted: Callable[[str, int], None] | None = None

    # -- executors -------------------------------------------------------------------------

    def record(self, executorId: str) -> ExecutorRecord | None:
        return self._executors.get(executorId)

    def records(self) -> list[ExecutorRecord]:
        return sorted(self._executors.values(), key=lambda r: r.executorId)

    def _recordFor(self, executorId: str) -> ExecutorRecord:
        record = self._executors.get(executorId)
        if record is None:
            record = self._executors[executorId] = ExecutorRecord(executorId)
        return record

    def registered(self, executorId: str, name: str | None = None) -> None:
        """The registry handed ``executorId`` a URL (it is *known* from now on)."""
        record = self._recordFor(executorId)
        record.registeredAt = self._clock.seconds()
        if name is not None:
            record.name = name

    def executorConnected(self, executorId: str, link: Any) -> Any:
        """``link`` is now ``executorId``'s websocket; returns the link it replaces, if any.

        The replaced link's streams are reset towards their harnesses at once; the caller
        closes the old websocket (a reconnect while the old one is half-open).
        """
        record = self._recordFor(executorId)
        old = record.link
        if old is not None:
            self.executorLost(executorId, old)
        record.link = link
        record.connections += 1
        record.connectedAt = self._clock.seconds()
        for waiter in [w for w in record.waiters if w[0] <= record.connections]:
            record.waiters.remove(waiter)
            waiter[1].callback(None)
        return old

    def executorLost(self, executorId: str, link: Any) -> None:
        """``link`` ended: reset every stream routed through it towards its harness."""
        record = self._executors.get(executorId)
        if record is not None and record.link is link:
            record.link = None
            record.disconnectedAt = self._clock.seconds()
        self._forgetFlow(link)
        for key in self._routes.keysOf(link):
            route = self._drop(key)
            if route is not None:
                route.harness.sendFrame(encodeReset(route.streamId, EXECUTOR_DISCONNECTED))
        self._routes.forgetPeer(link)

    def waitForExecutor(self, executorId: str, connections: int = 1) -> Deferred[None]:
        """Fires once ``executorId`` has had ``connections`` websockets accepted in total."""
        record = self._recordFor(executorId)
        if record.connections >= connections:
            return succeed(None)
        d: Deferred[None] = Deferred()
        record.waiters.append((connections, d))
        return d

    def fromExecutor(self, executorId: str, link: Any, raw: bytes) -> None:
        head = self._head(raw, executorId, "frame from executor {ident!r} dropped: {why}")
        if head is None:
            return
        key = (executorId, head.streamId)
        route = self._routes.get(key)
        if route is None or route.executor is not link:
            self.onUnrouted(link, head.streamId, raw)
            return
        route.harness.sendFrame(raw)
        if self.onRouted is not None:
            self.onRouted("to_harness", len(raw))
        if head.kind == "reset":
            self._drop(key)
        elif head.kind == "data":
            self.acks.forwarded(key, len(raw))
            if self.acks.overFallback(route.harness):
                self._pause(route.executor, route.harness)  # it ignores acks: round 1's rule

    # -- harnesses -------------------------------------------------------------------------

    def fromHarness(self, harness: Any, executorId: str, raw: bytes) -> None:
        head = self._head(raw, executorId, "frame from a harness of {ident!r} dropped: {why}")
        if head is None:
            return
        key = (executorId, head.streamId)
        isReset = head.kind == "reset"
        self._harnesses.add(harness)
        route = self._routes.get(key)
        if route is not None and route.harness is not harness:
            if not isReset:
                harness.sendFrame(encodeReset(head.streamId, STREAM_IN_USE))
            return
        record = self._executors.get(executorId)
        link = record.link if record is not None else None
        if route is not None and route.executor is not link:
            self._drop(key)  # stale: its executor connection is gone
            route = None
        if link is None:
            if not isReset:
                harness.sendFrame(encodeReset(head.streamId, EXECUTOR_NOT_CONNECTED))
            return
        if route is None and not isReset:
            cap = self.maxStreamsPerHarness
            if cap is not None and self._routes.countOf(harness) >= cap:
                self._refuseStream(harness, executorId, head.streamId, cap)
                return
            self._refusedOpens.pop(harness, None)
            route = Route(executorId, head.streamId, harness, link)
            self._routes.add(route)
            self.acks.opened(key, link, harness)
            if link in self._slow:
                self._pause(harness, link)
            if self.acks.overFallback(harness):
                self._pause(link, harness)
        if head.kind == "ack_frame":
            return  # acks towards an executor are the router's (credits.py)
        link.sendFrame(raw)
        if self.onRouted is not None:
            self.onRouted("to_executor", len(raw))
        if isReset and route is not None:
            self._drop(key)

    def _refuseStream(self, harness: Any, executorId: str, streamId: str, cap: int) -> None:
        """A stream over the cap gets a reset; a harness that goes on opening streams (more than
        ``cap`` refusals in a row) is a flood, and its websocket is closed (1008)."""
        reason = f"too many streams on this harness connection (limit {cap})"
        harness.sendFrame(encodeReset(streamId, reason))
        refused = self._refusedOpens[harness] = self._refusedOpens.get(harness, 0) + 1
        self.log.info(
            "a harness of {ident!r} is over its stream limit ({cap})", ident=executorId, cap=cap
        )
        if refused > cap:
            self._refusedOpens.pop(harness, None)
            self.log.warn(
                "a harness of {ident!r} opened {refused} streams over its limit: closing it",
                ident=executorId,
                refused=refused,
            )
            # A close frame for a peer that reads, then the TCP connection: what it sent
            # beyond this point is not even parsed.
            for name, args in (("close", (1008, reason)), ("abort", ())):
                method = getattr(harness, name, None)
                if method is not None:
                    method(*args)

    def harnessLost(self, harness: Any) -> None:
        """``harness`` ended: reset each of its streams towards the executor it was opened on."""
        self._forgetFlow(harness)
        self._refusedOpens.pop(harness, None)
        self._harnesses.discard(harness)
        for key in self._routes.keysOf(harness):
            route = self._drop(key)
            if route is None:
                continue
            record = self._executors.get(route.executorId)
            if record is not None and record.link is route.executor:
                route.executor.sendFrame(encodeReset(route.streamId, HARNESS_DISCONNECTED))

    def routeCount(self) -> int:
        return self._routes.count()

    def streamCount(self, executorId: str) -> int:
        return self._routes.streamCount(executorId)

    def harnessStreams(self, harness: Any) -> int:
        return self._routes.countOf(harness)

    # -- flow control ----------------------------------------------------------------------

    def peerPaused(self, slow: Any) -> None:
        """``slow``'s outbound buffer is full: stop reading the peers that feed it.

        Idempotent: Twisted calls this on every write while the buffer stays full.

        A slow harness only stops getting delivery acks (its streams pause at the executor);
        its executor is paused only past the fallback budget (see the module docstring).
        """
        if slow in self._slow:
            return
        self._slow.add(slow)
        if slow in self._harnesses:
            self.acks.harnessSlow(slow)
            if not self.acks.overFallback(slow):
                return
        for other in self._routes.counterparts(slow):
            self._pause(other, slow)

    def peerResumed(self, slow: Any) -> None:
        """``slow`` has drained its buffer: read the peers it held back again."""
        self._slow.discard(slow)
        if slow in self._harnesses:
            self.acks.harnessResumed(slow)
        for other in self._holding.pop(slow, ()):
            causes = self._pausedBy.get(other)
            if causes is None:
                continue
            causes.discard(slow)
            if not causes:
                del self._pausedBy[other]
                other.resumeReading()

    def isPaused(self, peer: Any) -> bool:
        """Whether the router stopped reading ``peer``."""
        return peer in self._pausedBy

    def _pause(self, other: Any, slow: Any) -> None:
        causes = self._pausedBy.setdefault(other, set())
        if not causes:
            other.pauseReading()
        causes.add(slow)
        self._holding.setdefault(slow, set()).add(other)

    def _forgetFlow(self, peer: Any) -> None:
        """A peer that went away holds nobody back, and is paused by nobody."""
        self.peerResumed(peer)
        for slow in self._pausedBy.pop(peer, ()):
            held = self._holding.get(slow)
            if held is not None:
                held.discard(peer)

    # -- internals -------------------------------------------------------------------------

    def _head(self, raw: bytes, executorId: str, dropped: str) -> FrameHead | None:
        """The frame's head; ``None`` (and the rate-limited line ``dropped``) when unroutable."""
        head = readHead(raw)
        if isinstance(head, str):
            self.log.warn(dropped, ident=executorId, why=head)
            return None
        return head

    def _drop(self, key: RouteKey) -> Route | None:
        self.acks.closed(key)
        return self._routes.drop(key)

    def _logUnrouted(self, link: Any, streamId: str, raw: bytes) -> None:
        # A stream's late frames after its reset or its harness's departure: expected, and
        # a peer can send any number of them, so rate-limited.
        self.log.emit(
            LogLevel.debug, "frame on unrouted stream {streamId!r} dropped", streamId=streamId
        )
