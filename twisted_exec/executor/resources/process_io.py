"""A process's output and stdin, as ``process/read`` and ``process/write`` see them.

:func:`waitForEvents` is ``process/read``'s long poll (``waitMs``) on a process's
:class:`~twisted_exec.executor.core.output_buffer.OutputBuffer`; :func:`writeBacklog` is how much
of what ``process/write`` sent a child has not taken yet, which the stdin budget
(:class:`~twisted_exec.executor.core.limits.Limits`) bounds. Plain functions over a buffer and a
Twisted writer, kept out of the table so they are tested directly.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from twisted_exec.executor.core.output_buffer import OutputBuffer


def writeBacklog(writer: Any) -> int:
    """Bytes a Twisted ``FileDescriptor`` holds that the kernel has not taken yet."""
    buffered = len(getattr(writer, "dataBuffer", b"")) - getattr(writer, "offset", 0)
    return buffered + getattr(writer, "_tempDataLen", 0)


def waitForEvents(
    clock: IReactorTime, buffer: OutputBuffer, afterSeq: int, waitMs: int
) -> Deferred[None]:
    """Fire at the first event with seq > ``afterSeq`` or after ``waitMs``, whichever is first.

    Fires at once when such events exist already or the process is closed (nothing more can come).
    """
    done: Deferred[None] = Deferred()
    if buffer.hasEventsAfter(afterSeq) or buffer.closed:
        done.callback(None)
        return done

    def wake() -> None:
        if timer.active():
            timer.cancel()
        if not done.called:
            done.callback(None)

    def timeout() -> None:
        cancel()
        if not done.called:
            done.callback(None)

    timer = clock.callLater(waitMs / 1000.0, timeout)
    cancel = buffer.addWaiter(afterSeq, wake)
    return done


__all__ = ["waitForEvents", "writeBacklog"]
