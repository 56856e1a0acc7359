"""A session's notifications as an async iterator: queued until read, ended with the stream."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

Notification = dict[str, Any]
NotificationCallback = Callable[[Notification], None]


class NotificationQueue:
    """The async iterator of :meth:`~.session.ExecSession.notifications`; ends with the stream.

    ``onClose(queue)`` tells the session to stop feeding it.
    """

    def __init__(self, onClose: Callable[[NotificationQueue], None]) -> None:
        self._onClose = onClose
        self._items: deque[Notification] = deque()
        self._waiter: Deferred[Notification | None] | None = None
        self._ended = False

    def put(self, note: Notification | None) -> None:
        if note is None:
            self._ended = True
        if self._waiter is not None:
            waiter, self._waiter = self._waiter, None
            waiter.callback(note)
        elif note is not None:
            self._items.append(note)

    def __aiter__(self) -> NotificationQueue:
        return self

    async def __anext__(self) -> Notification:
        if self._items:
            return self._items.popleft()
        if self._ended:
            raise StopAsyncIteration
        self._waiter = Deferred()
        note = await self._waiter
        if note is None:
            raise StopAsyncIteration
        return note

    def close(self) -> None:
        self._onClose(self)
        self.put(None)
