"""A twisted.web site without its noise: no access log, no factory start/stop lines.

Apart from ``net/quietweb`` (the client's quiet connection pool) because ``twisted.web.server``
imports ``twisted.spread.pb``, ``decimal`` and more, ~1.9 MiB that the relay client, which
serves nothing, kept resident when the two lived in one module.
"""

from __future__ import annotations

from typing import Any

from twisted.web.server import Site


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
