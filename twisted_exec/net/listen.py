"""Listening addresses and the twistd output conventions shared by the executor and rendezvous.

Both ``twistd`` services print their bound URL on stdout (a script reads it) and send logs to
stderr under ``twistd -n`` without ``--logfile``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int
    scheme: str = "ws"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parseListenUrl(url: str, scheme: str = "ws", alternatives: str = " or stdio") -> ListenAddress:
    """``SCHEME://IP:PORT`` → address (port 0 picks one); a clear ValueError for anything else.

    ``alternatives`` completes the message for a wrong scheme (``--listen`` also takes ``stdio``
    for the executor; the rendezvous listens on ``http://`` only).
    """
    parts = urlsplit(url.strip())
    if parts.scheme != scheme:
        raise ValueError(f"--listen expects {scheme}://IP:PORT{alternatives}, got {url!r}")
    try:
        port = parts.port
    except ValueError as err:
        raise ValueError(f"invalid port in --listen {url!r}: {err}") from None
    if not parts.hostname or port is None:
        raise ValueError(f"--listen expects {scheme}://IP:PORT (port 0 picks one), got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"--listen takes no path or query, got {url!r}")
    return ListenAddress(parts.hostname, port, scheme)


def logToStderrUnder(parent: Any) -> None:
    """Make the application that ``parent`` belongs to log to stderr.

    twistd reads an ``ILogObserver`` component of the application, when there is one, before it
    falls back to stdout; under ``twistd -n`` stdout carries the bound URL or the protocol.
    """
    from twisted.logger import ILogObserver, textFileLogObserver
    from twisted.python.components import Componentized

    while getattr(parent, "parent", None) is not None:
        parent = parent.parent
    if isinstance(parent, Componentized):
        parent.setComponent(ILogObserver, textFileLogObserver(sys.stderr))


def printToStdout(line: str) -> None:
    """Write to the process's real stdout: twistd redirects ``sys.stdout`` into the log."""
    stream = sys.__stdout__ or sys.stdout
    stream.write(line + "\n")
    stream.flush()


def cannotListen(url: str, error: BaseException) -> str:
    """``cannot listen on ws://127.0.0.1:8765: address already in use`` (no traceback)."""
    import errno

    inner: Any = getattr(error, "socketError", None)
    code = getattr(inner, "errno", None)
    if code == errno.EADDRINUSE:
        why = "address already in use (another server on that port? pick another with --listen)"
    elif code == errno.EADDRNOTAVAIL:
        why = "no such address on this machine"
    elif code == errno.EACCES:
        why = "permission denied (ports below 1024 need privileges)"
    else:
        why = str(inner or error)
    return f"cannot listen on {url}: {why}"
