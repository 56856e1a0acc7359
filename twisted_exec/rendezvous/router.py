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
transport's producer), the router stops reading every websocket that sends it frames, i.e. the
peers at the other end of its routes, until it has drained (:meth:`Router.peerResumed`). A slow
harness thus pauses its executor's websocket (and so, through the executor's own flow control,
the processes behind it) instead of growing the rendezvous's memory; the price is that the
other harnesses of that executor wait too (one TCP connection per executor is the relay's
design). A slow executor pauses the harnesses sending to it.

Peers are :class:`IRelayPeer` providers; the websocket layer adapts autobahn protocols to it,
and tests drive the router with plain recording objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from twisted_exec.rendezvous.interfaces import IRelayPeer
from twisted_exec.wire import relay_pb2
from twisted_exec.wire.frames import encodeReset, streamIdProblem
from twisted_exec.wire.reasons import (
    EXECUTOR_DISCONNECTED,
    EXECUTOR_NOT_CONNECTED,
    HARNESS_DISCONNECTED,
    STREAM_IN_USE,
)

log = Logger()

__all__ = ["IRelayPeer", "Router"]


@dataclass(frozen=True)
class FrameHead:
    """What the router reads of a frame: its stream and body kind (``None`` when absent)."""

    streamId: str
    kind: str | None


def readHead(raw: bytes) -> FrameHead | str:
    """The frame's head, or why it cannot be routed (a reason safe for a log line)."""
    frame = relay_pb2.RelayMessageFrame()
    try:
        frame.ParseFromString(raw)
    except DecodeError:
        return f"undecodable relay frame ({len(raw)} bytes)"
    except Exception as e:  # other protobuf backends; never let a frame break a connection
        return f"undecodable relay frame ({len(raw)} bytes): {type(e).__name__}"
    streamId: str = frame.stream_id
    problem = streamIdProblem(streamId)
    if problem is not None:
        return problem
    return FrameHead(streamId, frame.WhichOneof("body"))


@dataclass
class _Route:
    executorId: str
    streamId: str
    harness: Any  # IRelayPeer
    executor: Any  # IRelayPeer: the executor connection the stream was opened on


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
    """The route table and the rules above; the clock only timestamps listings."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._executors: dict[str, ExecutorRecord] = {}
        self._routes: dict[tuple[str, str], _Route] = {}
        self._byPeer: dict[Any, set[tuple[str, str]]] = {}  # peer -> its route keys
        self._slow: set[Any] = set()  # peers whose outbound buffer is full
        self._pausedBy: dict[Any, set[Any]] = {}  # peer not being read -> the slow peers why
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
        for key in sorted(self._byPeer.pop(link, set())):
            route = self._routes.pop(key, None)
            if route is None:
                continue
            self._unindex(route.harness, key)
            route.harness.sendFrame(encodeReset(route.streamId, EXECUTOR_DISCONNECTED))

    def waitForExecutor(self, executorId: str, connections: int = 1) -> Deferred[None]:
        """Fires once ``executorId`` has had ``connections`` websockets accepted in total."""
        record = self._recordFor(executorId)
        if record.connections >= connections:
            return succeed(None)
        d: Deferred[None] = Deferred()
        record.waiters.append((connections, d))
        return d

    def fromExecutor(self, executorId: str, link: Any, raw: bytes) -> None:
        head = readHead(raw)
        if isinstance(head, str):
            log.warn("frame from executor {ident!r} dropped: {why}", ident=executorId, why=head)
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

    # -- harnesses -------------------------------------------------------------------------

    def fromHarness(self, harness: Any, executorId: str, raw: bytes) -> None:
        head = readHead(raw)
        if isinstance(head, str):
            log.warn("frame from a harness of {ident!r} dropped: {why}", ident=executorId, why=head)
            return
        key = (executorId, head.streamId)
        isReset = head.kind == "reset"
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
            route = self._routes[key] = _Route(executorId, head.streamId, harness, link)
            self._byPeer.setdefault(harness, set()).add(key)
            self._byPeer.setdefault(link, set()).add(key)
            if link in self._slow:
                self._pause(harness, link)
            if harness in self._slow:
                self._pause(link, harness)
        link.sendFrame(raw)
        if self.onRouted is not None:
            self.onRouted("to_executor", len(raw))
        if isReset and route is not None:
            self._drop(key)

    def harnessLost(self, harness: Any) -> None:
        """``harness`` ended: reset each of its streams towards the executor it was opened on."""
        self._forgetFlow(harness)
        for key in sorted(self._byPeer.pop(harness, set())):
            route = self._routes.pop(key, None)
            if route is None:
                continue
            self._unindex(route.executor, key)
            record = self._executors.get(route.executorId)
            if record is not None and record.link is route.executor:
                route.executor.sendFrame(encodeReset(route.streamId, HARNESS_DISCONNECTED))

    def routeCount(self) -> int:
        return len(self._routes)

    def streamCount(self, executorId: str) -> int:
        return sum(1 for key in self._routes if key[0] == executorId)

    # -- flow control ----------------------------------------------------------------------

    def peerPaused(self, slow: Any) -> None:
        """``slow``'s outbound buffer is full: stop reading the peers that feed it."""
        self._slow.add(slow)
        for other in self._counterparts(slow):
            self._pause(other, slow)

    def peerResumed(self, slow: Any) -> None:
        """``slow`` has drained its buffer: read the peers it held back again."""
        self._slow.discard(slow)
        for other, causes in list(self._pausedBy.items()):
            if slow in causes:
                causes.discard(slow)
                if not causes:
                    del self._pausedBy[other]
                    other.resumeReading()

    def isPaused(self, peer: Any) -> bool:
        """Whether the router stopped reading ``peer``."""
        return peer in self._pausedBy

    def _counterparts(self, peer: Any) -> set[Any]:
        others = set()
        for key in self._byPeer.get(peer, ()):
            route = self._routes[key]
            others.add(route.executor if route.harness is peer else route.harness)
        return others

    def _pause(self, other: Any, slow: Any) -> None:
        causes = self._pausedBy.setdefault(other, set())
        if not causes:
            other.pauseReading()
        causes.add(slow)

    def _forgetFlow(self, peer: Any) -> None:
        """A peer that went away holds nobody back, and is paused by nobody."""
        self.peerResumed(peer)
        self._pausedBy.pop(peer, None)

    # -- internals -------------------------------------------------------------------------

    def _drop(self, key: tuple[str, str]) -> None:
        route = self._routes.pop(key, None)
        if route is not None:
            self._unindex(route.harness, key)
            self._unindex(route.executor, key)

    def _unindex(self, peer: Any, key: tuple[str, str]) -> None:
        keys = self._byPeer.get(peer)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._byPeer[peer]

    def _logUnrouted(self, link: Any, streamId: str, raw: bytes) -> None:
        log.debug("frame on unrouted stream {streamId!r} dropped", streamId=streamId)
