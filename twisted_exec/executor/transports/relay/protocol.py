"""The relay websocket: autobahn in, demux out, plus our own keepalive on an injected clock.

This layer only translates autobahn callbacks into
:class:`~twisted_exec.executor.transports.relay.demux.RelayDemux`
calls. Binary messages are frames; a text message is dropped with a log line, as the reference
does.

Keepalive: every ``pingInterval`` seconds we send a websocket ping, and if nothing (no pong, no
message) arrives for ``pongTimeout`` seconds the connection is aborted so the connector can
register and dial again. The 0.131 reference has no such deadline and hangs forever on a half-open
connection. Any inbound message counts as liveness as well as a pong: a pong can sit behind a
large frame on a busy link, and a peer that is sending us frames is evidently alive. The timers
are ours, on the injected clock, because autobahn's own run on txaio's global loop.

Flow control (``docs/flow-control.md``): once open, a ``TransportBackpressure`` push producer is
registered on the TCP (or TLS) transport. When the rendezvous reads too slowly and our write buffer
passes Twisted's high-water mark, every stream's processor is paused (process pipes stop being
read at their source) and so is reading from the rendezvous; both resume when the buffer drained.
A resume proves the rendezvous is reading, so it counts as liveness too: a slow peer is never
mistaken for a dead one, and a peer that neither reads nor writes for ``pongTimeout`` is dropped.

Shutdown: :meth:`RelayClientProtocol.closeForShutdown` sends a close frame (1000) and aborts the
TCP connection if the close handshake has not ended it within ``closeTimeout`` seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.websocket.types import ConnectionResponse
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from twisted_exec.executor.core.interfaces import IProcessorFactory
from twisted_exec.executor.core.limits import Limits
from twisted_exec.executor.transports.relay.demux import MAX_STREAMS, RelayDemux
from twisted_exec.net.autobahn_compat import (
    PromptFailMixin,
    canWriteFrameDirectly,
    deliverWholeFrames,
)
from twisted_exec.net.backpressure import TransportBackpressure
from twisted_exec.net.keepalive import Keepalive
from twisted_exec.net.nodelay import NoDelayMixin
from twisted_exec.wire.wsframe import binaryFrame, newMaskKey, nextServerMessage

log = Logger()


class Demux(Protocol):
    """What the websocket drives: the clear :class:`RelayDemux` or the Noise one."""

    @property
    def streamIds(self) -> frozenset[str]: ...
    @property
    def paused(self) -> bool: ...
    def frameReceived(self, raw: bytes) -> None: ...
    def connectionLost(self) -> None: ...
    def pauseProducing(self) -> None: ...
    def resumeProducing(self) -> None: ...


PING_INTERVAL = 30.0
PONG_TIMEOUT = 60.0
# A relay frame carries one JSON-RPC message: the largest the reference emits is a
# process/read of 1 MiB of retained output (about 1.4 MB as base64 JSON). Leave ample room.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: Seconds a shutdown waits for the close handshake before aborting the connection.
CLOSE_TIMEOUT = 2.0
#: The relay socket's write buffer before it pauses the streams (``TransportBackpressure``).
WRITE_BUFFER_BYTES = 256 * 1024


class HandshakeFailedError(Exception):
    """The connection ended before the websocket opening handshake completed."""


class RelayClientProtocol(NoDelayMixin, PromptFailMixin, WebSocketClientProtocol):  # type: ignore[misc]
    """One relay websocket to the rendezvous."""

    factory: RelayClientFactory

    def __init__(self) -> None:
        super().__init__()
        self.opened: Deferred[RelayClientProtocol] = Deferred()
        self.closed: Deferred[None] = Deferred()
        self.demux: Demux | None = None
        self.backpressure: TransportBackpressure | None = None
        self._keepalive: Keepalive | None = None
        self._abortCall: IDelayedCall | None = None
        self._ended = False
        self._pingSentAt: float | None = None
        #: How the websocket ended, for the reconnect log line ("code 1006", "code 1000: bye").
        self.closeReason = "not closed"

    def onConnect(self, response: ConnectionResponse) -> None:
        return None

    def onOpen(self) -> None:
        factory = self.factory
        self.demux = factory.buildDemux(self._sendFrame, self._closeAfterAbuse)
        self._keepalive = Keepalive(
            factory.clock,
            interval=factory.pingInterval,
            timeout=factory.pongTimeout,
            sendPing=self._ping,
            onSilent=self._deadlinePassed,
        )
        self._registerBackpressure(self.demux)
        self._keepalive.start()
        self.opened.callback(self)

    def _closeAfterAbuse(self) -> None:
        """The demux gave up on this websocket (Noise: 8 failed handshakes): drop it now."""
        transport: Any = self.transport
        if transport is not None and not self._ended:
            transport.abortConnection()

    def _registerBackpressure(self, demux: Demux) -> None:
        transport: Any = self.transport
        if transport is None or getattr(transport, "disconnected", False):
            return
        if getattr(transport, "producer", None) is not None:
            transport.unregisterProducer()
        self.backpressure = TransportBackpressure(
            self,
            demux,
            onResume=self._pushDeadline,  # it read our buffer out: it is alive
        )
        if hasattr(transport, "bufferSize"):
            # Twisted's 64 KiB high-water mark is less than one turn of process output (8
            # reads of 8 KiB, ~90 KB of frames): every turn paused and resumed every stream's
            # pipes and the socket's reading, 4 epoll_ctl calls a turn on the output path.
            transport.bufferSize = WRITE_BUFFER_BYTES
        transport.registerProducer(self.backpressure, True)

    def closeForShutdown(self, code: int = 1000, reason: str = "executor shutting down") -> None:
        """Close with a close frame; abort if the handshake has not ended in ``closeTimeout``."""
        if self._ended:
            return
        if self.state == self.STATE_OPEN:
            self.sendClose(code=code, reason=reason)
        if self._abortCall is None:
            self._abortCall = self.factory.clock.callLater(
                self.factory.closeTimeout, self._abortNow
            )

    def _abortNow(self) -> None:
        self._abortCall = None
        transport: Any = self.transport
        if transport is not None and not self._ended:
            transport.abortConnection()

    def dataReceived(self, data: bytes) -> None:
        # Any inbound bytes show the rendezvous is alive: one deadline push per read, not one
        # per message (a read carries dozens of frames under load; each push reads the clock).
        self._pushDeadline()
        # Whole binary frames straight to onMessage (net/autobahn_compat), the rest to autobahn.
        used = deliverWholeFrames(self, data, nextServerMessage)
        if used < len(data):
            super().dataReceived(data[used:] if used else data)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        metrics = self.factory.metrics
        if metrics is not None:
            metrics.received("relay", len(payload))
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
        sentAt, self._pingSentAt = self._pingSentAt, None
        metrics = self.factory.metrics
        if metrics is not None and sentAt is not None:
            metrics.pingAnswered(self.factory.clock.seconds() - sentAt)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self._ended:
            return
        self._ended = True
        self._cancelTimers()
        self.closeReason = f"code {code}" + (f": {reason}" if reason else "")
        if not self.opened.called:
            self.opened.errback(
                HandshakeFailedError(
                    f"websocket closed before opening (code {code}): "
                    f"{getattr(self, 'wasNotCleanReason', None) or reason}"
                )
            )
        if self.demux is not None:
            self.demux.connectionLost()
        self.closed.callback(None)

    def _sendFrame(self, raw: bytes) -> None:
        if self.state != self.STATE_OPEN:
            return
        metrics = self.factory.metrics
        if metrics is not None:
            metrics.sent("relay", len(raw))
        if canWriteFrameDirectly(self, len(raw)):
            # The common case in one step (see wsframe.py); autobahn's general path otherwise.
            transport: Any = self.transport
            transport.write(binaryFrame(raw, newMaskKey()))
        else:
            self.sendMessage(raw, isBinary=True)

    # -- keepalive (net/keepalive.py) ----------------------------------------------------------

    def _pushDeadline(self) -> None:
        if self._keepalive is not None:
            self._keepalive.touch()

    def _ping(self) -> None:
        if self.state == self.STATE_OPEN:
            self._pingSentAt = self.factory.clock.seconds()
            self.sendPing()

    def _deadlinePassed(self) -> None:
        log.warn(
            "no pong or message from the rendezvous for {timeout:g} s: dropping the websocket",
            timeout=self.factory.pongTimeout,
        )
        transport: Any = self.transport
        if transport is not None:
            transport.abortConnection()

    def _cancelTimers(self) -> None:
        if self._keepalive is not None:
            self._keepalive.stop()
        if self._abortCall is not None and self._abortCall.active():
            self._abortCall.cancel()
        self._abortCall = None


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
        maxStreams: int | None = MAX_STREAMS,
        closeTimeout: float = CLOSE_TIMEOUT,
        streamWindowBytes: int | None = None,
        streamStallSeconds: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.processorFactory = processorFactory
        # Per-stream flow control budgets: the executor's Limits unless given (window.py).
        limits = getattr(processorFactory, "limits", None)
        if not isinstance(limits, Limits):
            limits = Limits()
        self.streamWindowBytes = (
            limits.relayStreamWindowBytes if streamWindowBytes is None else streamWindowBytes
        )
        self.streamStallSeconds = (
            limits.relayStallSeconds if streamStallSeconds is None else streamStallSeconds
        )
        self.clock = clock
        self.pingInterval = pingInterval
        self.pongTimeout = pongTimeout
        self.maxStreams = maxStreams
        self.closeTimeout = closeTimeout
        #: An ``ExecutorMetrics`` (bytes in and out, ping round trips), when set.
        self.metrics: Any = None
        self.setProtocolOptions(
            maxMessagePayloadSize=maxMessageBytes,
            maxFramePayloadSize=maxMessageBytes,
            # Our own close deadline (closeForShutdown, on the injected clock) bounds the
            # handshake; autobahn's would be a txaio timer that lingers in the reactor.
            closeHandshakeTimeout=0,
            openHandshakeTimeout=30,
            failByDrop=False,  # PromptFailMixin: a close frame with the reason, then the FIN
        )

    def buildDemux(self, send: Callable[[bytes], None], abandon: Callable[[], None]) -> Demux:
        """The frame router of one new websocket (clear 0.131 relay; Noise overrides this)."""
        return RelayDemux(
            self.processorFactory,
            send,
            maxStreams=self.maxStreams,
            clock=self.clock,
            windowBytes=self.streamWindowBytes,
            stallSeconds=self.streamStallSeconds,
        )

    def pointAt(self, url: str) -> None:
        """Use ``url`` (a registered ``ws://``/``wss://`` URL) for the next connection."""
        self.setSessionParameters(url=url)
