"""twisted.web's client without its noise: a connection pool whose factories do not log
"Starting factory" per request. Apart from ``net/logs`` so that the option parser and stdio
(which import the log filters) load no twisted.web (start-up time,
``tests/test_startup_imports.py``), and from ``net/quietsite`` (the server side) so that the
relay client loads no ``twisted.web.server``.
"""

from __future__ import annotations

from twisted.web.client import HTTPConnectionPool, _HTTP11ClientFactory


class _QuietClientFactory(_HTTP11ClientFactory):
    noisy = False


class QuietConnectionPool(HTTPConnectionPool):
    """An ``HTTPConnectionPool`` whose per-connection factories log no start/stop lines."""

    _factory = _QuietClientFactory
