"""The global reactor, imported without Twisted's TLS stack: for entry points only.

Importing ``twisted.internet.reactor`` imports ``twisted.internet.tcp`` and ``posixbase``, which
try ``twisted.internet._newtls``, ``twisted.protocols.tls`` and ``twisted.internet.ssl`` at
module level: pyOpenSSL, ``cryptography.x509`` and ``service_identity``. On this machine that is
~40 ms of CPU and ~12 MiB of RSS of the ~0.16 s and 43 MiB the interpreter with a reactor costs,
paid by every stdio session a client spawns, and neither stdio nor the local websocket listener
speaks TLS. Both of Twisted's imports are ``try``/``except ImportError`` (TLS is optional), so
:func:`importReactorDeferringTLS` makes ``OpenSSL`` unimportable for the duration of that one
import, then importable again. What that costs:

- the reactor does not provide ``IReactorSSL`` (``connectSSL``/``listenSSL``) and its TCP
  transports have no ``startTLS``; we use neither;
- TLS done the endpoint way still works, loaded on first use: ``wrapClientTLS`` and
  ``twisted.web.client.Agent`` (``http/request`` to an ``https`` URL, ``net/wsendpoints``) wrap
  the protocol in ``TLSMemoryBIOProtocol`` over a plain TCP transport, which they import then
  (``tests/test_startup_imports.py`` checks a TLS exchange after it).

Remote mode imports its TLS stack at start anyway (``wss`` and ``https``), so only the stdio and
local-listener entry points call this; library code never imports the global reactor.
"""

from __future__ import annotations

import sys
from typing import Any

#: What Twisted's optional TLS imports start from; blocking it makes both of them fail cleanly.
_TLS_ROOT = "OpenSSL"


def importReactorDeferringTLS() -> Any:
    """Import (and so install) the default global reactor without loading pyOpenSSL.

    A no-op beyond returning the reactor when one is already installed or TCP is already
    imported (a ``--reactor`` option, a test process): Twisted's TLS probe has run then.
    """
    if "twisted.internet.tcp" not in sys.modules and _TLS_ROOT not in sys.modules:
        sys.modules[_TLS_ROOT] = None  # type: ignore[assignment]  # "import OpenSSL" fails
        try:
            from twisted.internet import reactor
        finally:
            if _TLS_ROOT in sys.modules and sys.modules[_TLS_ROOT] is None:
                del sys.modules[_TLS_ROOT]
        return reactor
    from twisted.internet import reactor

    return reactor


__all__ = ["importReactorDeferringTLS"]
