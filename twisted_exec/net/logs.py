"""Log output an operator can read: one line per state change at info, JSON for shippers.

Three sources of noise are handled here, each at its source where we can reach it:

- Twisted's own bookkeeping lines (``Starting factory <...0x7f...>``, ``Site starting on 8765``,
  ``(TCP Port 8765 Closed)``, twisted.web access lines) are dropped by :func:`isTwistedNoise`
  below warning level; our HTTP client pools build quiet factories (:class:`QuietConnectionPool`)
  and our sites log no access lines (:class:`QuietSite`), so most never reach the filter;
- per-stream and per-request detail is logged at debug by the code, and :func:`makeObserver`
  shows debug only with ``--log-level debug`` (twisted.logger's text observer shows every level);
- ``--log-format json`` writes one JSON object per line (twisted.logger's ``eventAsJSON``, as
  ``jsonFileLogObserver`` does), plus ``text`` (the formatted message) and ``level`` (its name), so
  a shipper needs no knowledge of ``log_format``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any

from twisted.application.service import MultiService
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogEvent,
    LogLevel,
    LogLevelFilterPredicate,
    PredicateResult,
    eventAsJSON,
    formatEvent,
    textFileLogObserver,
)
from zope.interface import implementer

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "isTwistedNoise",
    "makeObserver",
]

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warn", "error")

#: Messages of Twisted's that say nothing an operator needs (all logged at info or via the
#: legacy log.msg). Matched on the start of the format string or legacy message.
_NOISE_PREFIXES = (
    "Starting factory ",
    "Stopping factory ",
    "Starting protocol ",
    "Stopping protocol ",
    "Scheduling retry ",  # ClientService; our "reconnecting in N s: why" replaces it
)
_NOISE_SUFFIXES = (" Closed)",)  # "(TCP Port 8765 Closed)"
_NOISE_CONTAINS = (" starting on ",)  # "Site starting on 8765", "WebSocketServerFactory ..."


def _messageOf(event: LogEvent) -> str:
    text = event.get("log_text")  # a legacy log.msg() line: log_format is "{log_text}"
    if isinstance(text, str):
        return text
    fmt = event.get("log_format")
    if isinstance(fmt, str):
        return fmt
    legacy = event.get("message")
    if isinstance(legacy, tuple) and legacy and isinstance(legacy[0], str):
        return legacy[0]
    return ""


def isTwistedNoise(event: LogEvent) -> bool:
    """Twisted's factory/port/startup chatter below warning level (see the module docstring)."""
    level = event.get("log_level", LogLevel.info)
    if isinstance(level, type(LogLevel.info)) and level >= LogLevel.warn:
        return False
    if event.get("isError"):
        return False
    message = _messageOf(event)
    if message.startswith(_NOISE_PREFIXES) or message.endswith(_NOISE_SUFFIXES):
        return True
    namespace = str(event.get("log_namespace", ""))
    return any(s in message for s in _NOISE_CONTAINS) and not namespace.startswith("twisted_exec")


def _dropNoise(event: LogEvent) -> PredicateResult:
    return PredicateResult.no if isTwistedNoise(event) else PredicateResult.maybe


@implementer(ILogObserver)
class _JsonLinesObserver:
    """One JSON object per line: ``eventAsJSON`` plus ``text`` and ``level``."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, event: LogEvent) -> None:
        level = event.get("log_level")
        enriched = dict(event)
        enriched["text"] = formatEvent(event)
        enriched["level"] = getattr(level, "name", "info")
        self._stream.write(eventAsJSON(enriched) + "\n")
        self._stream.flush()


def makeObserver(
    stream: IO[str] | None = None, logFormat: str = "text", level: str = "info"
) -> ILogObserver:
    """The observer a service installs: ``logFormat`` lines at ``level`` and up, no noise."""
    if logFormat not in LOG_FORMATS:
        raise ValueError(f"--log-format expects one of {', '.join(LOG_FORMATS)}, got {logFormat!r}")
    if level not in LOG_LEVELS:
        raise ValueError(f"--log-level expects one of {', '.join(LOG_LEVELS)}, got {level!r}")
    out = stream if stream is not None else sys.stderr
    inner: ILogObserver = (
        _JsonLinesObserver(out) if logFormat == "json" else textFileLogObserver(out)
    )
    predicates: Iterable[Any] = (
        LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(level)),
        _dropNoise,
    )
    return FilteringLogObserver(inner, predicates)


def observerForTwistd(twistd: Any, logFormat: str, level: str) -> ILogObserver | None:
    """The observer a twistd plugin installs, or None to leave twistd's own (``--logger``).

    Under ``-n`` without ``--logfile`` logs go to stderr (stdout carries the bound URL or the
    protocol); with ``--logfile`` (``-`` is stdout) or as a daemon (``twistd.log``) to that file,
    rotated by size as twistd's own.
    """
    if twistd is None or not hasattr(twistd, "get"):
        return makeObserver(sys.stderr, logFormat, level)
    if twistd.get("logger"):
        return None
    logfile = twistd.get("logfile")
    if twistd.get("nodaemon") and not logfile:
        return makeObserver(sys.__stderr__ or sys.stderr, logFormat, level)
    if logfile == "-":
        return makeObserver(sys.__stdout__ or sys.stdout, logFormat, level)
    from twisted.python.logfile import LogFile

    stream: Any = LogFile.fromFullPath(logfile or "twistd.log", rotateLength=1_000_000)
    return makeObserver(stream, logFormat, level)


def installObserver(parent: Any, observer: ILogObserver | None) -> None:
    """Make ``observer`` the log observer of the application ``parent`` belongs to.

    twistd reads an ``ILogObserver`` component of the application before its own defaults.
    """
    if observer is None:
        return
    from twisted.python.components import Componentized

    while getattr(parent, "parent", None) is not None:
        parent = parent.parent
    if isinstance(parent, Componentized):
        parent.setComponent(ILogObserver, observer)


class LoggingMultiService(MultiService):
    """A ``MultiService`` that installs ``observer`` on the application it joins."""

    def __init__(self, observer: ILogObserver | None) -> None:
        super().__init__()
        self.observer = observer

    def setServiceParent(self, parent: Any) -> None:
        super().setServiceParent(parent)
        installObserver(parent, self.observer)
