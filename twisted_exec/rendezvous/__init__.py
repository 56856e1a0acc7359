"""The registry + relay rendezvous (``twistd codex-rendezvous``): register executors, route
relay frames by stream id between harness and executor websockets."""

from .auth import TokenConfigError, TokenSet, UrlSigner
from .router import EXECUTOR_DISCONNECTED, EXECUTOR_NOT_CONNECTED, Router
from .server import RendezvousServer
from .service import RendezvousOptions, RendezvousService, makeService

__all__ = [
    "EXECUTOR_DISCONNECTED",
    "EXECUTOR_NOT_CONNECTED",
    "RendezvousOptions",
    "RendezvousServer",
    "RendezvousService",
    "Router",
    "TokenConfigError",
    "TokenSet",
    "UrlSigner",
    "makeService",
]
