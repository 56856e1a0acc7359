"""Our ``Agent``s' HTTPS policy, independent of how ``twisted.web.client`` was imported.

``twisted.web.client`` decides at import whether TLS exists: imported while ``net/leanreactor``
defers TLS, its default ``BrowserLikePolicyForHTTPS`` cannot build TLS options for good.
"""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer


@implementer(IPolicyForHTTPS)
class TLSPolicyOnFirstUse:
    """``BrowserLikePolicyForHTTPS``'s verification (the platform's trust roots, the host name
    checked), with ``twisted.internet.ssl`` imported on the first ``https`` URL."""

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        from twisted.internet.ssl import optionsForClientTLS

        return optionsForClientTLS(hostname.decode("ascii"))
