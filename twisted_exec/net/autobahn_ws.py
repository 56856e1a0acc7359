"""autobahn's Twisted websocket classes, imported without ``autobahn.twisted``'s ``__init__``.

Why: importing any ``autobahn.twisted.*`` module first runs the package's ``__init__``, which
imports autobahn's WAMP application stack (``autobahn.twisted.wamp``: WAMP sessions, auth,
rawsocket, the component runner) to re-export ``ApplicationSession``. We speak plain websocket
only; that stack was ~6.6 MiB of the idle executor's RSS (``bench/results/rss-2026-12-04.md``).

So, before the executor's first ``autobahn.twisted`` import, :func:`_packageWithoutInit` puts an
empty package module built from the package's own spec in ``sys.modules``: its submodules import
as usual (``websocket``, ``resource``, ``util``), its ``__init__`` runs only when an attribute
it defines is first asked for (a module ``__getattr__``, PEP 562), so ``from autobahn.twisted
import ApplicationSession`` still works, just later. A no-op when ``autobahn.twisted`` is already
imported (a test process, the harness): then it is the whole package, as before.

The import runs while TLS is deferred (``net/leanreactor.py``): ``autobahn.util`` and
``twisted.internet.endpoints`` try pyOpenSSL at import, ~12 MiB the local listener, which speaks
no TLS, kept resident. A no-op in a process that has TLS already (remote mode with an ``https``
registry). Nor is ``cbor2`` imported, which ``autobahn.wamp.message`` tries for WAMP alone
(WAMP's FlatBuffers payloads then say unavailable; we speak no WAMP). The executor's modules import
these names from here, not from autobahn, and the transport stacks are first imported inside
``leanImports`` too (``executor/service.py``, ``executor/options.py``), so that the order of
their imports cannot matter.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

from twisted_exec.net.autobahn_nvx import installLeanAccelerators
from twisted_exec.net.leanreactor import leanImports

PACKAGE = "autobahn.twisted"


def _packageWithoutInit(name: str) -> None:
    """Register package ``name`` with its ``__init__`` deferred to the first missing attribute."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return  # not a package we can stage: import it the ordinary way
    loader = spec.loader
    module = importlib.util.module_from_spec(spec)
    ran: list[bool] = []

    def __getattr__(attribute: str) -> Any:  # noqa: N807 (the PEP 562 hook's name)
        if not ran:
            ran.append(True)
            del module.__dict__["__getattr__"]
            loader.exec_module(module)
            return getattr(module, attribute)
        raise AttributeError(f"module {name!r} has no attribute {attribute!r}")

    module.__dict__["__getattr__"] = __getattr__
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    setattr(sys.modules[parent] if parent in sys.modules else _imported(parent), child, module)


def _imported(name: str) -> ModuleType:
    return importlib.import_module(name)


# autobahn.util and twisted.internet.endpoints try pyOpenSSL at import, autobahn.wamp.message cbor2
with leanImports():
    _packageWithoutInit(PACKAGE)
    installLeanAccelerators()  # autobahn's NVX classes without their cffi builders
    from autobahn.twisted.websocket import (
        WebSocketClientFactory,
        WebSocketClientProtocol,
        WebSocketServerFactory,
        WebSocketServerProtocol,
    )


def webSocketResource(factory: Any) -> Any:
    """autobahn's ``WebSocketResource`` for ``factory``: imported here, on the listener's first
    use, because it imports ``twisted.web.server``, which the relay client does not need."""
    from autobahn.twisted.resource import WebSocketResource

    return WebSocketResource(factory)


__all__ = [
    "WebSocketClientFactory",
    "WebSocketClientProtocol",
    "WebSocketServerFactory",
    "WebSocketServerProtocol",
    "webSocketResource",
]
