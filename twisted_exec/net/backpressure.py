"""A websocket's TCP transport pausing its producers: one class for local and relay websockets.

Registered as the transport's push producer once the websocket is open. When the transport's
write buffer fills, ``pauseProducing`` pauses the *target* (a processor, or the relay demux with
every stream's processor) so output stops at its source, and stops reading the socket: paused
processors queue requests instead of answering them, so requests must not pile up unread either.
``resumeProducing`` undoes both, reading first. See ``docs/flow-control.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer


class Pausable(Protocol):
    def pauseProducing(self) -> None: ...

    def resumeProducing(self) -> None: ...


@implementer(IPushProducer)
class TransportBackpressure:
    """Pause/resume of a websocket's transport reach ``target`` and the socket's reading."""

    def __init__(
        self,
        protocol: Any,
        target: Pausable,
        onResume: Callable[[], None] | None = None,
    ) -> None:
        self._protocol = protocol  # the websocket protocol: its transport may change to None
        self._target = target
        self._onResume = onResume
        self.paused = False
        self.pauses = 0  # how often the transport paused us (for tests and soak numbers)

    def pauseProducing(self) -> None:
        if self.paused:
            return
        self.paused = True
        self.pauses += 1
        self._target.pauseProducing()
        transport: Any = self._protocol.transport
        if transport is not None:
            transport.pauseProducing()

    def resumeProducing(self) -> None:
        if not self.paused:
            return
        self.paused = False
        if self._onResume is not None:
            self._onResume()
        transport: Any = self._protocol.transport
        if transport is not None:
            transport.resumeProducing()
        self._target.resumeProducing()

    def stopProducing(self) -> None:
        # The connection is going away; its onClose detaches the session(s).
        pass
