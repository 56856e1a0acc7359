"""Client endpoints for websocket URLs: plain TCP for ``ws://``, verified TLS for ``wss://``."""

from __future__ import annotations

from urllib.parse import urlsplit

from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint

from twisted_exec.net.urls import redactUrl


class WebsocketEndpoints:
    """Builds the TCP (``ws://``) or verified-TLS (``wss://``) endpoint for a registered URL."""

    def __init__(self, reactor: object, connectTimeout: float = 30.0) -> None:
        self._reactor = reactor
        self._timeout = connectTimeout

    def __call__(self, url: str) -> IStreamClientEndpoint:
        parts = urlsplit(url)
        host = parts.hostname
        if not host:
            raise ValueError(f"websocket URL without a host: {redactUrl(url)}")
        secure = parts.scheme.lower() == "wss"
        port = parts.port or (443 if secure else 80)
        endpoint: IStreamClientEndpoint = HostnameEndpoint(
            self._reactor, host, port, timeout=self._timeout
        )
        if secure:
            # imported on the first wss URL: TLS may be deferred (net/leanreactor.py)
            from twisted.internet.ssl import optionsForClientTLS

            endpoint = wrapClientTLS(optionsForClientTLS(host), endpoint)
        return endpoint
