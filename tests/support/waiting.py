"""Bounded waits on real-reactor state that sends no event of its own.

Every wait here has a timeout, so a test that never sees its condition fails instead of
hanging; the interval is the caller's (a fast poll for in-process state, a slower one for
``/proc``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall


def pollUntil(predicate: Callable[[], bool], interval: float, timeout: float) -> Deferred[None]:
    """Fires once ``predicate()`` holds (checked every ``interval`` seconds, first at once);
    fails with ``TimeoutError`` after ``timeout`` seconds."""
    done: Deferred[None] = Deferred()

    def check() -> None:
        if predicate() and not done.called:
            loop.stop()
            done.callback(None)

    loop = LoopingCall(check)
    loop.clock = reactor
    loop.start(interval)
    return done.addTimeout(timeout, reactor)


_PID = re.compile(rb"pid=(\d+)\b")


async def pidFromOutput(nextNotification: Callable[[], Awaitable[Any]], processId: str) -> int:
    """The ``pid=N`` a command of ``processId`` prints, from its ``process/output``
    notifications (read with ``nextNotification``, which bounds each wait)."""
    text = b""
    while True:
        note = await nextNotification()
        params = note.get("params", {})
        if note.get("method") == "process/output" and params.get("processId") == processId:
            text += base64.b64decode(params["chunk"])
            match = _PID.search(text)
            if match:
                return int(match.group(1))
