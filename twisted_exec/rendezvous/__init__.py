"""The registry + relay rendezvous (``twistd codex-rendezvous``): register executors, route
relay frames by stream id between harness and executor websockets."""

from twisted_exec.rendezvous.auth import TokenConfigError, TokenSet, UrlSigner
from twisted_exec.rendezvous.router import Router
from twisted_exec.rendezvous.server import RendezvousServer
from twisted_exec.rendezvous.service import RendezvousOptions, RendezvousService, makeService
from twisted_exec.wire.reasons import EXECUTOR_DISCONNECTED, EXECUTOR_NOT_CONNECTED

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
