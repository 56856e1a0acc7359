"""The rendezvous's seams: what the router writes frames to, and what each part sees of the server.

The registry resource (``registry``) and the websockets (``websocket``) are handed the
:class:`~.server.RendezvousServer` that assembles them, but they depend on the small
:class:`typing.Protocol` views below, not on the server module: the server imports its parts,
never the other way round, so the package's imports form no cycle (``tests/test_layers.py``).
"""

from __future__ import annotations

from typing import Any, Protocol

from autobahn.websocket.types import ConnectionRequest
from twisted.internet.interfaces import IReactorTime
from zope.interface import Interface

from twisted_exec.net.httpguard import ConnectionLimiter
from twisted_exec.net.metrics import RendezvousMetrics
from twisted_exec.rendezvous.auth import TokenSet
from twisted_exec.rendezvous.router import Router
from twisted_exec.rendezvous.tenancy import Tenancy

#: How a websocket ended: ``(wasClean, code, reason)`` as autobahn reports it.
CloseInfo = tuple[bool, int | None, str | None]


class IRelayPeer(Interface):
    """One websocket the router can write frames to (an executor's or a harness's)."""

    def sendFrame(raw: bytes) -> None:
        """Send one binary relay frame (dropped if the websocket is no longer open)."""

    def pauseReading() -> None:
        """Stop reading frames from this websocket (a peer it sends to is not keeping up)."""

    def resumeReading() -> None:
        """Read again."""


class RegistryServer(Protocol):
    """What the ``/cloud/...`` registry resource reads of the server."""

    @property
    def clock(self) -> IReactorTime: ...
    @property
    def tokens(self) -> TokenSet | None: ...
    @property
    def publicUrl(self) -> str | None: ...
    @property
    def tenancy(self) -> Tenancy: ...
    @property
    def router(self) -> Router: ...
    @property
    def metrics(self) -> RendezvousMetrics: ...

    def executorUrl(self, executorId: str, wsBase: str) -> str: ...

    def harnessCounts(self) -> dict[str, int]: ...


class WebSocketLink(Protocol):
    """What a rendezvous websocket calls on the link its admission gave it."""

    @property
    def router(self) -> Router: ...

    def opened(self) -> None: ...

    def frameReceived(self, raw: bytes) -> None: ...

    def textReceived(self, text: str) -> None: ...

    def pinged(self) -> None: ...

    def lost(self, info: CloseInfo) -> None: ...


class EnvironmentAdmission(Protocol):
    """Admits ``/ws/environment/...`` websockets (0.171's relay: ``environment_resource``)."""

    def admit(self, protocol: Any, request: ConnectionRequest) -> WebSocketLink: ...


class WebSocketServer(Protocol):
    """What the websockets and their links read of the server: admission, timers, the router.

    ``protocol`` arguments are :class:`~.websocket.RendezvousWebSocket` instances (``Any`` here,
    so that this module does not import the websocket module that imports it).
    """

    @property
    def clock(self) -> IReactorTime: ...
    @property
    def router(self) -> Router: ...
    @property
    def environments(self) -> EnvironmentAdmission: ...
    @property
    def protocols(self) -> set[Any]: ...
    @property
    def connections(self) -> ConnectionLimiter: ...
    @property
    def pingInterval(self) -> float | None: ...
    @property
    def idleTimeout(self) -> float | None: ...
    @property
    def answerPings(self) -> bool: ...

    def admitExecutor(
        self, protocol: Any, executorId: str, request: ConnectionRequest
    ) -> WebSocketLink: ...

    def admitHarness(
        self, protocol: Any, executorId: str, request: ConnectionRequest
    ) -> WebSocketLink: ...

    def forget(self, protocol: Any) -> None: ...
