"""twisted.web pieces without their noise: a connection pool whose factories do not log
"Starting factory" per request, and a site with no access log. Apart from ``net/logs`` so that
the option parser and stdio (which import the log filters) load no twisted.web (start-up time,
``tests/test_startup_imports.py``).
"""

from __future__ import annotations

from typing import Any

from twisted.web.client import HTTPConnectionPool, _HTTP11ClientFactory
from twisted.web.server import Site


class _QuietClientFactory(_HTTP11ClientFactory):
    noisy = False


class QuietConnectionPool(HTTPConnectionPool):
    """An ``HTTPConnectionPool`` whose per-connection factories log no start/stop lines."""

    _factory = _QuietClientFactory


class QuietSite(Site):
    """A ``Site`` without access lines (``/readyz`` probes and scrapes would flood the log)."""

    noisy = False

    def log(self, request: Any) -> None:
        return None


def silenceAccessLog(site: Site) -> Site:
    """``site`` (built elsewhere) without access lines or factory start/stop lines."""
    site.noisy = False
    site.log = _noAccessLine  # type: ignore[method-assign]
    return site


def _noAccessLine(request: Any) -> None:
    return None
