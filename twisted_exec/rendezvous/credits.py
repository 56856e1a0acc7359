"""Delivery acks from the rendezvous to an executor, per stream: fairness across harnesses.

All streams of an executor share its one websocket. Round 1's router stopped reading that
websocket whenever any harness behind it was slow, so one harness that ran ``yes`` and stopped
reading stalled every other harness of that executor within seconds.

Now the router keeps reading the executor and tells it, per stream, how far delivery has got:
an ``ack_frame`` on the stream whose ``ack`` is the number of executor-to-harness data frames of
that stream handed on to the harness's websocket (mod 2**32). The first one (ack 0) is sent when
the route opens, so the executor knows the stream is acknowledged before it sends anything; the
next ones are cumulative and coalesced, and only sent while the harness keeps up (its
websocket's write buffer is below the high-water mark): at the end of the reactor turn once
:data:`ACK_BYTES` wait to be acknowledged on the stream (or its harness drained its buffer),
otherwise at most :data:`ACK_DELAY` later. A stream of small replies thus gets an ack every
``ACK_DELAY`` rather than one per reply, which had doubled the executor's inbound frames per
call; a stream that sends enough to approach its window (4 MiB by default, far above
``ACK_BYTES``) is acknowledged every turn, as before. A harness that stops reading stops
its acks: frames forwarded to it stay counted in :meth:`DeliveryAcks.outstanding` until its
buffer drains. Our executor pauses such a stream at its source after its window
(``executor/transports/relay/window.py``); the other streams carry on.

An executor that ignores acks (the 0.131/0.171 reference ignores ``ack_frame``) keeps sending;
the router then falls back to round 1's rule once a slow harness has more than
``fallbackBytes`` outstanding: it stops reading that executor's websocket. Memory stays bounded
either way. Harness-originated ``ack_frame`` frames are not forwarded to executors, so every
ack an executor sees comes from here.

Sans-IO apart from the injected clock (the coalescing ``callLater(0)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from twisted_exec.wire import relay_pb2

SEQ_MODULUS = 2**32

#: Outstanding bytes of a slow harness after which an executor that ignores acks is paused:
#: eight of our executor's 4 MiB stream windows, so a stalled harness with up to eight busy
#: streams never pauses the executor's other harnesses.
FALLBACK_BYTES = 32 * 1024 * 1024

#: Unacknowledged bytes of a stream that are acknowledged at the end of the turn; fewer wait
#: for :data:`ACK_DELAY` (far below the executor's default 4 MiB window, and below any window
#: worth configuring).
ACK_BYTES = 16 * 1024

#: The longest a delivered frame waits for its ack (seconds). Only streams with fewer than
#: :data:`ACK_BYTES` unacknowledged wait this long, and those are nowhere near their window:
#: the delay bounds staleness, not throughput. 20 ms cost 128 busy streams of small replies
#: 6,400 acks a second (~1 µs of executor CPU per call); 250 ms costs them 512.
ACK_DELAY = 0.25


def encodeAck(streamId: str, delivered: int) -> bytes:
    frame = relay_pb2.RelayMessageFrame(
        version=1,
        stream_id=streamId,
        ack=delivered % SEQ_MODULUS,
        ack_frame=relay_pb2.RelayAck(),
    )
    out: bytes = frame.SerializeToString()
    return out


@dataclass
class _Credit:
    streamId: str
    executor: Any  # IRelayPeer
    harness: Any  # IRelayPeer
    forwarded: int = 0  # data frames forwarded to the harness
    acked: int = 0  # the count last acknowledged to the executor
    pendingBytes: int = 0  # bytes forwarded and not yet acknowledged


class DeliveryAcks:
    """Per-route delivery counts, the harnesses that are slow, and the coalesced ack flush."""

    def __init__(
        self, clock: IReactorTime, fallbackBytes: int = FALLBACK_BYTES, *, enabled: bool = True
    ) -> None:
        self._clock = clock
        #: Off: no acks are sent and a slow harness is always over the fallback (round 1's rule).
        self.enabled = enabled
        self.fallbackBytes = fallbackBytes
        self._credits: dict[tuple[str, str], _Credit] = {}
        self._byHarness: dict[Any, set[tuple[str, str]]] = {}
        self._slow: set[Any] = set()
        self._dirty: set[tuple[str, str]] = set()
        self._urgent: set[tuple[str, str]] = (
            set()
        )  # acked at the end of the turn, whatever the size
        self._flushCall: IDelayedCall | None = None
        self._lazyCall: IDelayedCall | None = None
        self.acksSent = 0

    def opened(self, key: tuple[str, str], executor: Any, harness: Any) -> None:
        """A route opened: tell the executor this stream is acknowledged (ack 0)."""
        if not self.enabled:
            return
        self._credits[key] = _Credit(key[1], executor, harness)
        self._byHarness.setdefault(harness, set()).add(key)
        executor.sendFrame(encodeAck(key[1], 0))
        self.acksSent += 1

    def closed(self, key: tuple[str, str]) -> None:
        credit = self._credits.pop(key, None)
        self._dirty.discard(key)
        self._urgent.discard(key)
        if credit is not None:
            keys = self._byHarness.get(credit.harness)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._byHarness[credit.harness]
        if not self._dirty:
            self._cancelLazy()  # nothing left for it: no timer outlives the routes

    def forwarded(self, key: tuple[str, str], size: int) -> None:
        """A data frame of ``size`` bytes was written to the route's harness."""
        credit = self._credits.get(key)
        if credit is None:
            return
        credit.forwarded = (credit.forwarded + 1) % SEQ_MODULUS
        credit.pendingBytes += size
        if credit.harness not in self._slow:
            self._dirty.add(key)
            self._scheduleFlush()

    def harnessSlow(self, harness: Any) -> None:
        self._slow.add(harness)

    def harnessResumed(self, harness: Any) -> None:
        """Its buffer drained: everything forwarded to it so far has been handed on."""
        self._slow.discard(harness)
        keys = self._byHarness.get(harness, set())
        if keys:
            self._dirty |= keys
            self._urgent |= keys
            self._scheduleFlush()

    def isSlow(self, harness: Any) -> bool:
        return harness in self._slow

    def outstanding(self, harness: Any) -> int:
        """Bytes forwarded to ``harness`` that were not acknowledged yet."""
        return sum(self._credits[key].pendingBytes for key in self._byHarness.get(harness, ()))

    @property
    def waiting(self) -> bool:
        """Some stream has delivered frames whose ack is still to be sent (for tests)."""
        return bool(self._dirty)

    def overFallback(self, harness: Any) -> bool:
        if not self.enabled:
            return harness in self._slow
        return harness in self._slow and self.outstanding(harness) > self.fallbackBytes

    def _scheduleFlush(self) -> None:
        if self._flushCall is None:
            self._flushCall = self._clock.callLater(0, self.flush)

    def flush(self) -> None:
        """End of the turn: ack the streams with :data:`ACK_BYTES` waiting (or just drained);
        the others wait for :meth:`flushAll`, at most :data:`ACK_DELAY` from now."""
        self._flushCall = None
        dirty, self._dirty = self._dirty, set()
        urgent, self._urgent = self._urgent, set()
        for key in sorted(dirty):
            credit = self._credits.get(key)
            if credit is None or credit.harness in self._slow:
                continue
            if key in urgent or credit.pendingBytes >= ACK_BYTES:
                self._ack(credit)
            elif credit.forwarded != credit.acked:
                self._dirty.add(key)  # kept for the delayed flush
        if self._dirty and self._lazyCall is None:
            self._lazyCall = self._clock.callLater(ACK_DELAY, self.flushAll)

    def flushAll(self) -> None:
        """Ack every stream with anything unacknowledged whose harness keeps up."""
        self._lazyCall = None
        dirty, self._dirty = self._dirty, set()
        self._urgent.clear()
        for key in sorted(dirty):
            credit = self._credits.get(key)
            if credit is not None and credit.harness not in self._slow:
                self._ack(credit)

    def _ack(self, credit: _Credit) -> None:
        if credit.forwarded != credit.acked:
            credit.executor.sendFrame(encodeAck(credit.streamId, credit.forwarded))
            credit.acked = credit.forwarded
            credit.pendingBytes = 0
            self.acksSent += 1

    def _cancelLazy(self) -> None:
        if self._lazyCall is not None and self._lazyCall.active():
            self._lazyCall.cancel()
        self._lazyCall = None

    def stop(self) -> None:
        if self._flushCall is not None and self._flushCall.active():
            self._flushCall.cancel()
        self._flushCall = None
        self._cancelLazy()


__all__ = ["ACK_BYTES", "ACK_DELAY", "FALLBACK_BYTES", "DeliveryAcks", "encodeAck"]
