"""The relay websocket: autobahn in, demux out, plus our own keepalive on an injected clock.

This layer only translates autobahn callbacks into :class:`~twisted_exec.relay.demux.RelayDemux`
calls. Binary messages are frames; a text message is dropped with a log line, as the reference
does.

Keepalive: every ``pingInterval`` seconds we send a websocket ping, and if nothing (no pong, no
message) arrives for ``pongTimeout`` seconds the connection is aborted so the connector can
register and dial again. The 0.131 reference has no such deadline and hangs forever on a half-open
connection. Any inbound message counts as liveness as well as a pong: a pong can sit behind a
large frame on a busy link, and a peer that is sending us frames is evidently alive. The timers
are ours, on the injected clock, because autobahn's own run on txaio's global loop.
"""

from __future__ import annotations

from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.websocket.types import ConnectionResponse
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from ..interfaces import IProcessorFactory
from .demux import RelayDemux
from .wsframe import binaryFrame, newMaskKey

log = Logger()

PING_INTERVAL = 30.0
PONG_TIMEOUT = 60.0
# A relay frame carries one JSON-RPC message: the largest the reference emits is a
# process/read of 1 MiB of retained output (about 1.4 MB as base64 JSON). Leave ample room.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class HandshakeFailedError(Exception):
    """The connection ended before the websocket opening handshake completed."""


class RelayClientProtocol(WebSocketClientProtocol):  # type: ignore[misc]
    """One relay websocket to the rendezvous."""

    factory: RelayClientFactory

    def __init__(self) -> None:
        super().__init__()
        self.opened: Deferred[RelayClientProtocol] = Deferred()
        self.closed: Deferred[None] = Deferred()
        self.demux: RelayDemux | None = None
        self._pingCall: IDelayedCall | None = None
        self._deadlineCall: IDelayedCall | None = None
        self._ended = False

    def onConnect(self, response: ConnectionResponse) -> None:
        return None

    def onOpen(self) -> None:
        factory = self.factory
        self.demux = RelayDemux(factory.processorFactory, self._sendFrame)
        self._schedulePing()
        self._pushDeadline()
        self.opened.callback(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self._pushDeadline()
        if not isBinary:
            log.warn(
                "text websocket message of {size} bytes dropped: relay frames are binary",
                size=len(payload),
            )
            return
        if self.demux is not None:
            self.demux.frameReceived(payload)

    def onPong(self, payload: bytes) -> None:
        self._pushDeadline()

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self._ended:
            return
        self._ended = True
        self._cancelTimers()
        if not self.opened.called:
            self.opened.errback(
                HandshakeFailedError(f"websocket closed before opening (code {code}): {reason}")
            )
        if self.demux is not None:
            self.demux.connectionLost()
        self.closed.callback(None)

    def _sendFrame(self, raw: bytes) -> None:
        if self.state != self.STATE_OPEN:
            return
        limit: int = getattr(self, "maxMessagePayloadSize", 0)
        transport: Any = self.transport
        fits = limit == 0 or len(raw) <= limit  # 0: no limit (autobahn's convention)
        if self._perMessageCompress is None and not self.send_queue and fits:
            # The common case in one step (see wsframe.py); autobahn's general path otherwise.
            transport.write(binaryFrame(raw, newMaskKey()))
        else:
            self.sendMessage(raw, isBinary=True)

    # -- keepalive ---------------------------------------------------------------------------

    def _schedulePing(self) -> None:
        self._pingCall = self.factory.clock.callLater(self.factory.pingInterval, self._ping)

    def _ping(self) -> None:
        self._pingCall = None
        if self.state != self.STATE_OPEN:
            return
        self.sendPing()
        self._schedulePing()

    def _pushDeadline(self) -> None:
        if self._ended:
            return
        timeout = self.factory.pongTimeout
        if self._deadlineCall is not None and self._deadlineCall.active():
            self._deadlineCall.reset(timeout)
        else:
            self._deadlineCall = self.factory.clock.callLater(timeout, self._deadlinePassed)

    def _deadlinePassed(self) -> None:
        self._deadlineCall = None
        log.warn(
            "no pong or message from the rendezvous for {timeout:g} s: dropping the websocket",
            timeout=self.factory.pongTimeout,
        )
        transport: Any = self.transport
        if transport is not None:
            transport.abortConnection()

    def _cancelTimers(self) -> None:
        for call in (self._pingCall, self._deadlineCall):
            if call is not None and call.active():
                call.cancel()
        self._pingCall = self._deadlineCall = None


class RelayClientFactory(WebSocketClientFactory):  # type: ignore[misc]
    """Builds relay connections; the connector points it at each newly registered URL."""

    protocol = RelayClientProtocol  # type: ignore[assignment]

    def __init__(
        self,
        processorFactory: IProcessorFactory,
        clock: IReactorTime,
        *,
        pingInterval: float = PING_INTERVAL,
        pongTimeout: float = PONG_TIMEOUT,
        maxMessageBytes: int = MAX_MESSAGE_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.processorFactory = processorFactory
        self.clock = clock
        self.pingInterval = pingInterval
        self.pongTimeout = pongTimeout
        self.setProtocolOptions(
            maxMessagePayloadSize=maxMessageBytes,
            maxFramePayloadSize=maxMessageBytes,
            # The reference does not complete the close handshake either; do not wait long
            # for a peer that will not answer (autobahn's timers, real time only).
            closeHandshakeTimeout=5,
            openHandshakeTimeout=30,
        )

    def pointAt(self, url: str) -> None:
        """Use ``url`` (a registered ``ws://``/``wss://`` URL) for the next connection."""
        self.setSessionParameters(url=url)
