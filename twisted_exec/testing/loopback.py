"""A test server's port on loopback: listen on a free port, say its URL, stop listening."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IListeningPort, IReactorTCP


class LoopbackPort:
    """Mixed into the test doubles that serve over TCP; ``scheme`` names their URLs."""

    scheme = "http"
    _port: IListeningPort | None = None

    def _listenOn(self, reactor: IReactorTCP, site: Any, interface: str) -> str:
        """Listen on a free port of ``interface``; returns :attr:`baseUrl`."""
        self._port = reactor.listenTCP(0, site, interface=interface)
        return self.baseUrl

    @property
    def baseUrl(self) -> str:
        assert self._port is not None, "not listening"
        address = self._port.getHost()
        return f"{self.scheme}://{address.host}:{address.port}"  # type: ignore[attr-defined]

    def stopListening(self) -> Deferred[None]:
        port, self._port = self._port, None
        if port is None:
            return succeed(None)
        d: Deferred[None] | None = port.stopListening()
        return d if d is not None else succeed(None)
