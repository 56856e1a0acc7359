"""The rendezvous websockets: autobahn callbacks in, :class:`~.router.Router` calls out.

Two routes share one protocol class, served by twisted.web (autobahn's ``WebSocketResource``)
on the same port as the registry:

- ``/executor/{id}?sig=...``: an executor, admitted with the signed one-time URL the registry
  handed it (no bearer token: the reference sends none on the upgrade);
- ``/harness/{id}``: a harness, admitted with ``Authorization: Bearer <token>``, for an executor
  id the rendezvous knows (404 otherwise) and that is connected now (503 otherwise).

A refused upgrade is an HTTP error whose status line carries the reason, e.g.
``HTTP/1.1 404 unknown executor 'box'``: autobahn clients report it as
``WebSocket connection upgrade failed [404]: unknown executor 'box'``.

Each accepted websocket is wrapped in a *link* (:class:`ExecutorLink`, :class:`HarnessLink`):
the router's :class:`~.interfaces.IRelayPeer`, and the one place a subclass (the test rendezvous in
:mod:`twisted_exec.testing.rendezvous`) hooks in to watch frames, pings and closes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from zope.interface import implementer

from twisted_exec.net.autobahn_compat import (
    canWriteFrameDirectly,
    deliverWholeFrames,
    sendCloseCode,
)
from twisted_exec.net.keepalive import Keepalive
from twisted_exec.net.nodelay import quickAck
from twisted_exec.net.pacedreader import PacedReader, WebsocketCutter
from twisted_exec.net.wsoptions import capWithoutHandshakeTimers
from twisted_exec.rendezvous.interfaces import CloseInfo, IRelayPeer, WebSocketLink, WebSocketServer
from twisted_exec.rendezvous.router import Router
from twisted_exec.wire.wsframe import nextClientMessage, serverBinaryFrame

log = Logger()

REPLACED_CODE = 4000  # application close code: a newer connection of the same executor won


def parseWebSocketPath(path: str) -> tuple[str, str]:
    """``/executor/{id}`` or ``/harness/{id}`` → ``(role, id)``; ConnectionDeny(404) otherwise."""
    parts = path.strip("/").split("/")
    if len(parts) != 2 or parts[0] not in ("executor", "harness") or not parts[1]:
        raise ConnectionDeny(404, "unknown path")
    executorId = unquote(parts[1])
    if not executorId.strip() or len(executorId.encode()) > 256:
        raise ConnectionDeny(404, "invalid executor id")
    return parts[0], executorId


@implementer(IRelayPeer)
class RelayLink:
    """One accepted websocket, as the router sees it."""

    def __init__(self, protocol: RendezvousWebSocket, executorId: str) -> None:
        self._protocol = protocol
        self.executorId = executorId

    @property
    def server(self) -> WebSocketServer:
        return self._protocol.factory.server

    @property
    def router(self) -> Router:
        """The router this link's frames go through (environments have their own)."""
        return self.server.router

    def sendFrame(self, raw: bytes) -> None:
        protocol = self._protocol
        if protocol.state != WebSocketServerProtocol.STATE_OPEN:
            return
        transport: Any = protocol.transport
        if transport is not None and canWriteFrameDirectly(protocol, len(raw)):
            transport.write(serverBinaryFrame(raw))  # the bytes sendMessage would write
        else:
            protocol.sendMessage(raw, isBinary=True)

    def sendText(self, text: str) -> None:
        self._protocol.sendMessage(text.encode(), isBinary=False)

    def close(self, code: int = 1000, reason: str = "rendezvous closing") -> None:
        sendCloseCode(self._protocol, code, reason)  # 1008 too, which sendClose refuses

    def abort(self) -> None:
        """Drop the TCP connection without a close handshake (and what it still had to read)."""
        self._protocol.reader.stop()
        transport: Any = self._protocol.transport
        if transport is not None:
            transport.abortConnection()

    def pauseReading(self) -> None:
        self._protocol.reader.pause("flow")

    def resumeReading(self) -> None:
        self._protocol.reader.resume("flow")

    # Callbacks from the protocol (override to observe; call up to keep routing).
    def opened(self) -> None:
        pass

    def frameReceived(self, raw: bytes) -> None:
        raise NotImplementedError

    def textReceived(self, text: str) -> None:
        self.server.router.log.warn(
            "text websocket message of {size} bytes from {role} {ident!r} dropped: "
            "relay frames are binary",
            size=len(text),
            role=type(self).__name__,
            ident=self.executorId,
        )

    def pinged(self) -> None:
        pass

    def lost(self, info: CloseInfo) -> None:
        pass


@implementer(IPushProducer)
class _Backpressure:
    """The transport's producer: a full write buffer pauses the peers that feed this link."""

    def __init__(self, link: WebSocketLink) -> None:
        self._link = link

    def pauseProducing(self) -> None:
        # Twisted calls this on every write while the buffer stays full; the router's
        # peerPaused returns at once when the link is already paused (O(1)).
        self._link.router.peerPaused(self._link)

    def resumeProducing(self) -> None:
        self._link.router.peerResumed(self._link)

    def stopProducing(self) -> None:
        pass


class ExecutorLink(RelayLink):
    """An executor's websocket; ``request`` is its upgrade request (path, query, headers)."""

    def __init__(
        self, protocol: RendezvousWebSocket, executorId: str, request: ConnectionRequest
    ) -> None:
        super().__init__(protocol, executorId)
        self.path: str = request.path
        self.query: dict[str, list[str]] = dict(request.params)
        self.headers: dict[str, str] = dict(request.headers)
        self.protocols: list[str] = list(request.protocols)

    def __repr__(self) -> str:  # the query holds the one-time signature: never show it
        return f"<ExecutorLink {self.executorId!r}>"

    def opened(self) -> None:
        old = self.server.router.executorConnected(self.executorId, self)
        log.info("executor {ident!r} connected", ident=self.executorId)
        if old is not None:
            log.info("executor {ident!r}: older connection replaced", ident=self.executorId)
            old.close(REPLACED_CODE, "replaced by a newer connection")

    def frameReceived(self, raw: bytes) -> None:
        self.server.router.fromExecutor(self.executorId, self, raw)

    def lost(self, info: CloseInfo) -> None:
        self.server.router.executorLost(self.executorId, self)
        log.info(
            "executor {ident!r} disconnected (code {code})", ident=self.executorId, code=info[1]
        )


class HarnessLink(RelayLink):
    """A harness's websocket; every frame it sends is for ``executorId``'s streams."""

    def __repr__(self) -> str:
        return f"<HarnessLink for {self.executorId!r}>"

    def frameReceived(self, raw: bytes) -> None:
        self.server.router.fromHarness(self, self.executorId, raw)

    def lost(self, info: CloseInfo) -> None:
        self.server.router.harnessLost(self)


class RendezvousWebSocket(WebSocketServerProtocol):  # type: ignore[misc]
    """Translates autobahn callbacks into link calls; admission is the server's decision."""

    factory: RendezvousWebSocketFactory

    def __init__(self) -> None:
        super().__init__()
        self.link: WebSocketLink | None = None
        self._opened = False
        self._keepalive: Keepalive | None = None

    def onConnect(self, request: ConnectionRequest) -> None:
        server = self.factory.server
        if request.path.startswith("/ws/environment/"):
            self.link = server.environments.admit(self, request)
            server.protocols.add(self)  # closed and aborted with the others when stopping
            return None
        role, executorId = parseWebSocketPath(request.path)
        if role == "executor":
            self.link = server.admitExecutor(self, executorId, request)
        else:
            self.link = server.admitHarness(self, executorId, request)
        return None

    def dataReceived(self, data: bytes) -> None:
        # Once open, frames reach autobahn a slice per reactor turn (net/pacedreader): a flood
        # of tiny frames in one 64 KiB read would otherwise hold the loop for a fraction of a
        # second. The upgrade request itself goes straight through.
        if self.state == self.STATE_OPEN:
            # Peers that leave Nagle on (the reference executors) wait for our ACK before their
            # next small frame: give it at once (net/nodelay.quickAck).
            quickAck(self.transport)
            self.reader.dataReceived(data)
        else:
            super().dataReceived(data)

    def _deliver(self, data: bytes) -> None:
        if self.transport is not None:
            # Whole binary frames straight to onMessage (net/autobahn_compat), the rest to autobahn.
            used = deliverWholeFrames(self, data, nextClientMessage)
            if used < len(data):
                super().dataReceived(data[used:] if used else data)

    @property
    def reader(self) -> PacedReader:
        reader: PacedReader | None = self.__dict__.get("_reader")
        if reader is None:
            reader = self._reader = PacedReader(
                self.factory.server.clock,
                lambda: self.transport,
                self._deliver,
                cut=WebsocketCutter().cut,
            )
        return reader

    def onOpen(self) -> None:
        if self.link is not None:
            self._opened = True
            self._registerBackpressure(self.link)
            self.link.opened()
            server = self.factory.server
            self._keepalive = Keepalive(
                server.clock,
                interval=server.pingInterval,
                timeout=server.idleTimeout,
                sendPing=self._ping,
                onSilent=self._idle,
            )
            self._keepalive.start()

    def _registerBackpressure(self, link: WebSocketLink) -> None:
        """Our producer on the TCP transport, in place of twisted.web's ``HTTPChannel`` (which
        registered itself for the upgrade request; ``WebSocketResource`` leaves it there)."""
        transport: Any = self.transport
        if transport is None:
            return
        if getattr(transport, "producer", None) is not None:
            transport.unregisterProducer()
        transport.registerProducer(_Backpressure(link), True)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self._touch()
        if self.link is None:
            return
        if isBinary:
            self.link.frameReceived(payload)
        else:
            self.link.textReceived(payload.decode("utf-8", "replace"))

    def onPong(self, payload: bytes) -> None:
        self._touch()

    def onPing(self, payload: bytes) -> None:
        self._touch()
        if self.link is not None:
            self.link.pinged()
        if self.factory.server.answerPings:
            super().onPing(payload)

    def connectionLost(self, reason: Any = None) -> None:
        # The HTTP channel handed the TCP connection over at the upgrade and never learns that
        # it ended: its slot under the connection caps is released here.
        transport = self.transport
        self.reader.stop()
        super().connectionLost(reason)
        if transport is not None:
            self.factory.server.connections.release(transport)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self._keepalive is not None:
            self._keepalive.stop()
        self.factory.server.forget(self)
        if self.link is not None and self._opened:
            self._opened = False
            self.link.lost((wasClean, code, reason))

    # -- keepalive: our timers on the server's clock (autobahn's run on txaio's loop) --------

    def _ping(self) -> None:
        if self.state == self.STATE_OPEN:
            self.sendPing()

    def _touch(self) -> None:
        """Inbound traffic: the peer is alive; push the idle deadline back."""
        if self._keepalive is not None:
            self._keepalive.touch()

    def _idle(self) -> None:
        if self.link is not None and self.link.router.isPaused(self.link):
            self._touch()  # we are the ones not reading it (flow control): not its silence
            return
        log.warn(
            "{link!r} silent for {timeout:g} s (no pong, no frame): dropping it",
            link=self.link,
            timeout=self.factory.server.idleTimeout,
        )
        transport: Any = self.transport
        if transport is not None:
            transport.abortConnection()


class RendezvousWebSocketFactory(WebSocketServerFactory):  # type: ignore[misc]
    protocol = RendezvousWebSocket  # type: ignore[assignment]

    def __init__(self, server: WebSocketServer, maxMessageBytes: int) -> None:
        super().__init__()
        self.server = server
        # The opening handshake needs no timer (twisted.web has read the whole upgrade request
        # before autobahn sees it, and answers it at once); the service bounds closing.
        capWithoutHandshakeTimers(self, maxMessageBytes)
