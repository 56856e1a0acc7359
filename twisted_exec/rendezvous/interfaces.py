"""The rendezvous's seam: what the router writes frames to, and pauses."""

from __future__ import annotations

from zope.interface import Interface


class IRelayPeer(Interface):
    """One websocket the router can write frames to (an executor's or a harness's)."""

    def sendFrame(raw: bytes) -> None:
        """Send one binary relay frame (dropped if the websocket is no longer open)."""

    def pauseReading() -> None:
        """Stop reading frames from this websocket (a peer it sends to is not keeping up)."""

    def resumeReading() -> None:
        """Read again."""
