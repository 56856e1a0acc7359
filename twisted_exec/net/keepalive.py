"""Websocket keepalive on an injected clock: a ping every ``interval``, a deadline for silence.

autobahn's own auto-ping and handshake timers run on txaio's global loop, which a
``task.Clock`` cannot drive and which may not be the reactor we were given; so every websocket
of ours (relay client, rendezvous, harness) keeps its liveness here instead. Any inbound traffic
(pong, message, a drained write buffer) calls :meth:`Keepalive.touch`; ``onSilent`` runs when
nothing arrived for ``timeout`` seconds. The caller decides what silence means (abort, or look
again when it is we who stopped reading).
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime


class Keepalive:
    """Ping every ``interval`` s (``None``: never); ``onSilent()`` after ``timeout`` s of quiet."""

    def __init__(
        self,
        clock: IReactorTime,
        *,
        interval: float | None,
        timeout: float | None,
        sendPing: Callable[[], None],
        onSilent: Callable[[], None],
    ) -> None:
        self._clock = clock
        self._interval = interval
        self._timeout = timeout
        self._sendPing = sendPing
        self._onSilent = onSilent
        self._pingCall: IDelayedCall | None = None
        self._deadlineCall: IDelayedCall | None = None
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        """The connection is open: ping from now on and start the silence deadline."""
        if self._running:
            return
        self._running = True
        self._schedulePing()
        self.touch()

    def touch(self) -> None:
        """Inbound traffic: the peer is alive; push the deadline back."""
        if not self._running or self._timeout is None:
            return
        if self._deadlineCall is not None and self._deadlineCall.active():
            self._deadlineCall.reset(self._timeout)
        else:
            self._deadlineCall = self._clock.callLater(self._timeout, self._silent)

    def stop(self) -> None:
        """The connection ended: no more pings, no deadline. Idempotent."""
        self._running = False
        for call in (self._pingCall, self._deadlineCall):
            if call is not None and call.active():
                call.cancel()
        self._pingCall = self._deadlineCall = None

    def _schedulePing(self) -> None:
        if self._interval is not None and self._interval > 0:
            self._pingCall = self._clock.callLater(self._interval, self._ping)

    def _ping(self) -> None:
        self._pingCall = None
        if self._running:
            self._sendPing()
            self._schedulePing()

    def _silent(self) -> None:
        self._deadlineCall = None
        if self._running:
            self._onSilent()
