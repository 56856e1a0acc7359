"""Serving metrics over HTTP: ``/metrics`` (Prometheus text) as a twisted.web resource, and
the ``--metrics-listen`` service. Apart from the counters (``net/metrics``) so that counting
loads no twisted.web (start-up, ``tests/test_startup_imports.py``).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
)
from twisted.application.service import Service
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request

from twisted_exec.net.metrics import _Base

log = Logger()


class MetricsResource(Resource):
    """``GET /metrics``: the Prometheus text exposition of one metrics object."""

    isLeaf = True

    def __init__(self, metrics: _Base) -> None:
        super().__init__()
        self._metrics = metrics

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode("ascii"))
        request.setHeader(b"cache-control", b"no-store")
        return self._metrics.render()

    def render_HEAD(self, request: Request) -> bytes:
        return self.render_GET(request)


class _Ready(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        return b"ok\n"


class MetricsService(Service):
    """``--metrics-listen http://IP:PORT``: ``/metrics`` (and ``/readyz``) on a port of its own."""

    def __init__(self, reactor: Any, metrics: _Base, listenUrl: str) -> None:
        from twisted_exec.net.listen import parseListenUrl

        self.reactor = reactor
        self.metrics = metrics
        self.address = parseListenUrl(listenUrl, "http", "")
        self.port: Any = None
        self.url: str | None = None

    def privilegedStartService(self) -> None:
        from twisted.internet.error import CannotListenError

        from twisted_exec.net.listen import cannotListen
        from twisted_exec.net.quietsite import QuietSite
        from twisted_exec.net.twistdopts import failStartup

        root = Resource()
        root.putChild(b"metrics", MetricsResource(self.metrics))
        root.putChild(b"readyz", _Ready())
        try:
            self.port = self.reactor.listenTCP(
                self.address.port, QuietSite(root), interface=self.address.host
            )
        except CannotListenError as err:
            failStartup(cannotListen(self.address.url, err))
        bound = self.port.getHost()
        self.url = f"http://{self.address.host}:{bound.port}/metrics"
        log.info("metrics on {url}", url=self.url)
        super().privilegedStartService()

    def startService(self) -> None:
        if self.port is None:
            self.privilegedStartService()
        super().startService()

    def stopService(self) -> Any:
        super().stopService()
        port, self.port = self.port, None
        return port.stopListening() if port is not None else None
