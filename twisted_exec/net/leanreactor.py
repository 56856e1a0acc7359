"""Twisted and autobahn imported without the TLS stack, which then loads on first use.

Importing ``twisted.internet.reactor`` imports ``twisted.internet.tcp`` and ``posixbase``, which
try ``twisted.internet._newtls``, ``twisted.protocols.tls`` and ``twisted.internet.ssl`` at
module level: pyOpenSSL, ``cryptography.x509`` and ``service_identity``. On this machine that is
~40 ms of CPU and ~12 MiB of RSS (cryptography's Rust extension and libcrypto are most of it),
paid by every stdio session a client spawns, and neither stdio nor the local websocket listener
speaks TLS. ``twisted.internet.endpoints``, ``twisted.web.client`` and ``autobahn.util`` try the
same import at module level. All of them are ``try``/``except ImportError`` (TLS is optional),
so :func:`deferringTLS` makes ``OpenSSL`` unimportable for the duration of an import, then
importable again. What that costs, for the modules first imported inside it:

- the reactor does not provide ``IReactorSSL`` (``connectSSL``/``listenSSL``) and its TCP
  transports have no ``startTLS``; we use neither;
- ``twisted.internet.endpoints.wrapClientTLS`` gets ``TLSMemoryBIOFactory`` on its first call
  (:func:`_tlsFactoryOnFirstUse`, the one Twisted global we set): TLS done the endpoint way, as
  ``net/wsendpoints`` (``wss``) and ``Agent`` (``https``) do it, still works, loaded then
  (``tests/test_startup_imports.py`` checks a TLS exchange after it);
- ``twisted.web.client``'s default ``BrowserLikePolicyForHTTPS`` cannot build TLS options: our
  Agents pass ``net/httpspolicy.TLSPolicyOnFirstUse`` instead (the same verification);
- ``autobahn`` believes it has no TLS: it logs an OpenSSL error as any other lost connection
  and reports a TLS transport as TCP in ``TransportDetails`` (WAMP's channel binding), which
  the executor does not use.

Who defers: the stdio and local-listener entry points always (``importReactorDeferringTLS``),
and remote mode when the registry URL is not ``https`` (``executor/options.py``); with an
``https`` registry, TLS is needed within a second of start-up and is imported the ordinary way.
Library code never imports the global reactor.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: What Twisted's optional TLS imports start from; blocking it makes all of them fail cleanly.
_TLS_ROOT = "OpenSSL"
_ENDPOINTS = "twisted.internet.endpoints"


@contextmanager
def withoutOptional(*names: str) -> Iterator[None]:
    """Imports in the body fail to import the top-level modules ``names`` (for the optional
    imports of a library, ``try``/``except ImportError``); those already imported stay."""
    blocked = [name for name in names if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # "import name" fails
    try:
        yield
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


@contextmanager
def deferringTLS() -> Iterator[None]:
    """Imports in the body see no pyOpenSSL; a no-op once it is imported (its cost is paid).

    ``twisted.internet.endpoints``, when first imported in the body, gets its TLS factory on
    first use (see the module docstring).
    """
    if _TLS_ROOT in sys.modules:
        yield
        return
    try:
        with withoutOptional(_TLS_ROOT):
            yield
    finally:
        endpoints = sys.modules.get(_ENDPOINTS)
        if endpoints is not None and getattr(endpoints, "TLSMemoryBIOFactory", False) is None:
            endpoints.TLSMemoryBIOFactory = _tlsFactoryOnFirstUse  # type: ignore[attr-defined]


#: Optional imports of our libraries for features the executor never uses: ``cbor2``, which
#: ``autobahn.wamp.message`` tries for WAMP's FlatBuffers payloads (its C extension: ~0.9 MiB).
UNUSED_OPTIONAL = ("cbor2",)


@contextmanager
def leanImports() -> Iterator[None]:
    """:func:`deferringTLS`, and :data:`UNUSED_OPTIONAL` not imported: around the first import
    of a transport stack (autobahn, twisted.web) that the executor uses only in part."""
    with deferringTLS(), withoutOptional(*UNUSED_OPTIONAL):
        yield


def _tlsFactoryOnFirstUse(*args: Any, **kwargs: Any) -> Any:
    """``TLSMemoryBIOFactory(*args, **kwargs)``, imported now (and put where endpoints looks)."""
    from twisted.protocols.tls import TLSMemoryBIOFactory

    endpoints = sys.modules[_ENDPOINTS]
    endpoints.TLSMemoryBIOFactory = TLSMemoryBIOFactory  # type: ignore[attr-defined]
    return TLSMemoryBIOFactory(*args, **kwargs)


def importReactorDeferringTLS() -> Any:
    """Import (and so install) the default global reactor without loading pyOpenSSL.

    A no-op beyond returning the reactor when one is already installed or TCP is already
    imported (a ``--reactor`` option, a test process): Twisted's TLS probe has run then.
    """
    if "twisted.internet.tcp" not in sys.modules:
        with deferringTLS():
            from twisted.internet import reactor
        return reactor
    from twisted.internet import reactor

    return reactor


__all__ = ["deferringTLS", "importReactorDeferringTLS", "leanImports", "withoutOptional"]
