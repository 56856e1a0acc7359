"""Listening addresses and the twistd output conventions shared by the executor and rendezvous.

Both ``twistd`` services print their bound URL on stdout (a script reads it) and send logs to
stderr under ``twistd -n`` without ``--logfile``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from twisted.application.service import Service
from twisted.internet.interfaces import IListeningPort, IProtocolFactory
from twisted.logger import Logger

_log = Logger(namespace="twisted_exec.net.listen")


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


class ListeningService(Service):
    """Listens on an address and announces the bound URL: the executor's local websocket and the
    rendezvous share this start-up (port 0 picks a free port; a busy port fails ``twistd`` at
    start, synchronously, with a clear error).

    Subclasses provide :meth:`makeFactory` and ``listeningMessage``; they close their own
    connections after :meth:`stopListening`.
    """

    listeningMessage = "listening on {url}"
    closeTimeout = 2.0  #: seconds a stop waits for close handshakes before aborting
    #: twistd sets this: a port in use ends the process with one ``Error:`` line and exit
    #: code 2 instead of a traceback (an embedding application gets the CannotListenError).
    exitOnListenError = False

    def __init__(
        self,
        reactor: Any,
        address: ListenAddress,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.reactor = reactor
        self.address = address
        self.announce = announce
        self.port: IListeningPort | None = None
        self.url: str | None = None

    def makeFactory(self) -> IProtocolFactory:
        raise NotImplementedError

    def privilegedStartService(self) -> None:
        from twisted.internet.error import CannotListenError

        try:
            self.port = self.reactor.listenTCP(
                self.address.port, self.makeFactory(), interface=self.address.host
            )
        except CannotListenError as err:
            if not self.exitOnListenError:
                raise
            from twisted_exec.net.twistdopts import failStartup

            failStartup(cannotListen(self.address.url, err))
        bound: Any = self.port.getHost()
        self.url = replace(self.address, port=bound.port).url
        _log.info(self.listeningMessage, url=self.url)
        if self.announce is not None:
            self.announce(self.url)
        super().privilegedStartService()

    def startService(self) -> None:
        if self.port is None:
            self.privilegedStartService()
        super().startService()

    async def stopListening(self) -> None:
        port, self.port = self.port, None
        if port is not None:
            await port.stopListening()  # type: ignore[misc]


def exitCleanlyAfterSignal(reactor: Any) -> None:
    """twistd re-raises the signal that stopped the reactor, so SIGTERM would end the process
    "killed by SIGTERM"; call this once a shutdown is complete and clean to exit 0 instead."""
    if getattr(reactor, "_exitSignal", None) is not None:
        reactor._exitSignal = None


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


def failIfBusy(address: ListenAddress) -> None:
    """Exit with one ``Error:`` line (code 2) now if ``address`` cannot be bound.

    twistd binds in ``privilegedStartService``, after its logging has begun (two lines of its
    own before our error); a plugin's ``makeService`` runs before that, so it checks here with a
    throwaway socket. Port 0 always binds. The real bind still reports a race the same way.
    """
    import errno
    import socket

    if address.port == 0:
        return
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Twisted's listenTCP
        probe.bind((address.host, address.port))
    except OSError as err:
        from twisted.internet.error import CannotListenError

        from twisted_exec.net.twistdopts import failStartup

        if err.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            failStartup(cannotListen(address.url, CannotListenError(None, None, err)))
    finally:
        probe.close()
