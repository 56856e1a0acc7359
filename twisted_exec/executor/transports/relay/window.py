"""Per-stream send window on a relay websocket, driven by the rendezvous' delivery acks.

One relay websocket carries every stream of the executor; its TCP buffer is shared, so the
websocket-wide flow control (``backpressure.TransportBackpressure``) can only pause all streams
together. When one harness stops reading, a rendezvous that is itself flow controlled stops
reading the executor's websocket, and every other stream stalls with it (issue 15: within
seconds, and the websocket was dropped after 60 s).

The fix needs to know *which* stream's reader is slow, which only the rendezvous can tell. Our
rendezvous (``rendezvous/credits.py``) therefore acknowledges delivery per stream: an
``ack_frame`` whose ``ack`` field is the number of this stream's executor-to-harness data frames
it has handed to the harness's websocket so far (mod 2**32), sent when the route opens (ack 0)
and whenever frames went out while the harness was keeping up. The 0.131 and 0.171 executors
ignore ``ack_frame`` frames, and no harness sends them, so this is invisible to both.

:class:`StreamWindow` counts the bytes this stream has sent that the rendezvous has not yet
acknowledged. Beyond ``windowBytes`` the stream is *paused at its source*: its processor pauses,
which stops reading its processes' pipes and queues its requests, while every other stream
carries on. It resumes once half the window has been acknowledged. A stream that stays paused
for ``stallSeconds`` without any acknowledgement is stalled for good: ``onStall`` resets that
stream (the session detaches and may be resumed), never the websocket.

A stream that never receives an ack (a rendezvous without this extension) is not windowed at
all: the websocket-wide flow control alone applies, as before.

Sans-IO apart from the injected clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

SEQ_MODULUS = 2**32


class StreamWindow:
    """Unacknowledged bytes of one stream; pauses and resumes it, and reports a stall."""

    def __init__(
        self,
        clock: IReactorTime,
        windowBytes: int,
        stallSeconds: float,
        onPause: Callable[[], None],
        onResume: Callable[[], None],
        onStall: Callable[[], None],
    ) -> None:
        self._clock = clock
        self.windowBytes = windowBytes
        self.stallSeconds = stallSeconds
        self._onPause = onPause
        self._onResume = onResume
        self._onStall = onStall
        self.enabled = False  # the rendezvous acknowledges this stream
        self.paused = False
        self._sizes: deque[int] = deque()  # sizes of unacknowledged frames, oldest first
        self._sent = 0  # frames sent so far (mod 2**32), counted even before the first ack
        self._acknowledged = 0  # frames acknowledged so far (mod 2**32)
        self.unackedBytes = 0
        self._stall: IDelayedCall | None = None
        self._closed = False

    def sent(self, size: int) -> None:
        """One data frame of ``size`` bytes went out on this stream."""
        if self._closed:
            return
        self._sent = (self._sent + 1) % SEQ_MODULUS
        if not self.enabled:
            return  # nobody acknowledges this stream (yet): keep nothing
        self._sizes.append(size)
        self.unackedBytes += size
        if not self.paused and self.unackedBytes > self.windowBytes:
            self._pause()

    def acked(self, delivered: int) -> None:
        """The rendezvous has delivered ``delivered`` frames of this stream in total."""
        if self._closed:
            return
        delivered %= SEQ_MODULUS
        if not self.enabled:
            # The first ack: frames sent before it and not yet delivered count, size unknown.
            self.enabled = True
            self._acknowledged = delivered
            pending = (self._sent - delivered) % SEQ_MODULUS
            self._sizes.extend([0] * min(pending, 1 << 16))
            return
        newly = (delivered - self._acknowledged) % SEQ_MODULUS
        if newly > len(self._sizes):
            # Not a count we sent (a confused peer): resynchronise on it, all delivered.
            newly = len(self._sizes)
        for _ in range(newly):
            self.unackedBytes -= self._sizes.popleft()
        self._acknowledged = delivered
        if self.paused:
            if self.unackedBytes <= self.windowBytes // 2:
                self._resume()
            elif newly and self._stall is not None:
                self._stall.reset(self.stallSeconds)  # progress: not stalled
        elif self.unackedBytes > self.windowBytes:
            self._pause()

    def close(self) -> None:
        self._closed = True
        self._cancelStall()

    def _pause(self) -> None:
        self.paused = True
        self._stall = self._clock.callLater(self.stallSeconds, self._stalled)
        self._onPause()

    def _resume(self) -> None:
        self.paused = False
        self._cancelStall()
        self._onResume()

    def _stalled(self) -> None:
        self._stall = None
        if not self._closed:
            self._onStall()

    def _cancelStall(self) -> None:
        if self._stall is not None and self._stall.active():
            self._stall.cancel()
        self._stall = None


__all__ = ["StreamWindow"]
