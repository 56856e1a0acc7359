"""Log lines that a peer can provoke at will, rate-limited per kind.

A bad frame, a refused upgrade or a text message on a binary relay costs the peer a few bytes and
would cost us a log line each: a flood of them fills disks and drowns the lines that matter. Each
*kind* (the event's format string, or an explicit key) may log ``burst`` lines per ``interval``
seconds on the injected clock; the rest are counted, and the next line of that kind after the
window says how many were suppressed. Sans-IO apart from the logger it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger, LogLevel

DEFAULT_BURST = 10
DEFAULT_INTERVAL = 60.0
#: Kinds remembered at once; a peer cannot grow the table by varying the text.
MAX_KINDS = 256


@dataclass
class _Window:
    start: float
    emitted: int = 0
    suppressed: int = 0


class RateLimitedLog:
    """``emit(level, format, **fields)`` like ``Logger.emit``, at most ``burst`` per window."""

    def __init__(
        self,
        clock: IReactorTime,
        log: Logger,
        burst: int = DEFAULT_BURST,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self._clock = clock
        self._log = log
        self.burst = burst
        self.interval = interval
        self._windows: dict[str, _Window] = {}
        self.suppressedTotal = 0

    def emit(self, level: LogLevel, format: str, key: str | None = None, **fields: Any) -> bool:
        """Log the line unless its kind is over budget; whether it was logged."""
        kind = key if key is not None else format
        now = self._clock.seconds()
        window = self._windows.get(kind)
        if window is None or now - window.start >= self.interval:
            suppressed = window.suppressed if window is not None else 0
            if window is None and len(self._windows) >= MAX_KINDS:
                self._windows.pop(next(iter(self._windows)))
            window = self._windows[kind] = _Window(now)
            if suppressed:
                self._log.emit(
                    level,
                    "{suppressed} similar log lines suppressed in the last {interval:g} s",
                    suppressed=suppressed,
                    interval=self.interval,
                )
        if window.emitted >= self.burst:
            window.suppressed += 1
            self.suppressedTotal += 1
            return False
        window.emitted += 1
        self._log.emit(level, format, **fields)
        return True

    def info(self, format: str, **fields: Any) -> bool:
        return self.emit(LogLevel.info, format, **fields)

    def warn(self, format: str, **fields: Any) -> bool:
        return self.emit(LogLevel.warn, format, **fields)
