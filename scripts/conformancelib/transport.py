"""The runner's transport interface, and the local websocket transport under it.

A :class:`Target` is a server under test, started once and asked for connections; a
:class:`Connection` sends text and yields :class:`Event` s. ``remote`` (one relay stream per
connection) and ``stdio`` (one executor child per connection) implement the same interfaces.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.internet import defer, error, protocol
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.python.failure import Failure

URL_LINE_RE = re.compile(r"^(ws://[^\s]+)\s*$")
LOGGED_URL_RE = re.compile(r"\[stdout#\w+\] (ws://[^\s]+)\s*$")


@dataclass(frozen=True)
class Event:
    """Something a connection received: a text frame, a binary frame, or its close."""

    kind: str  # "text" | "binary" | "closed"
    data: str = ""
    at: float = 0.0


class Connection(Protocol):
    """One client connection to an executor (a websocket, or later a relay stream)."""

    def send(self, text: str) -> None:
        """Send one text message (one JSON-RPC message, or deliberately broken text)."""

    def receive(self) -> Deferred[Event]:
        """The next event; a ``closed`` event is the last one."""

    def close(self) -> Deferred[None]:
        """Close the connection and wait (bounded) until it is gone."""


class Target(Protocol):
    """A server under test: started once, then asked for connections."""

    name: str

    def start(self) -> Deferred[None]: ...

    def connect(self) -> Deferred[Connection]: ...

    def stop(self) -> Deferred[None]: ...


class LineBuffer:
    """Bytes in, complete decoded lines out (sans IO): a child's stdout read line by line."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[str]:
        """The lines that ``data`` completes, without their newline; the rest waits."""
        *lines, self._pending = (self._pending + data).split(b"\n")
        return [line.decode("utf-8", "replace") for line in lines]


class LineProcess(protocol.ProcessProtocol):
    """A child whose stdout is read line by line (:meth:`lineReceived`); ``ended`` fires once it
    is gone."""

    def __init__(self) -> None:
        self.ended: Deferred[None] = Deferred()
        self._lines = LineBuffer()

    def outReceived(self, data: bytes) -> None:
        for text in self._lines.feed(data):
            self.lineReceived(text)

    def lineReceived(self, text: str) -> None:
        raise NotImplementedError

    def processEnded(self, reason: Failure) -> None:
        if not self.ended.called:
            self.ended.callback(None)


class _ServerProcess(LineProcess):
    """Runs a server and fires ``urlFound`` with the first stdout line that is a ws:// URL."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.urlFound: Deferred[str] = Deferred()
        self.output: list[str] = []
        self.urlOnStderr = False

    def lineReceived(self, text: str) -> None:
        self.output.append(text)
        m = URL_LINE_RE.match(text.strip())
        if m and not self.urlFound.called:
            self.urlFound.callback(m.group(1))

    def errReceived(self, data: bytes) -> None:
        lines = data.decode("utf-8", "replace").splitlines()
        self.output.extend(lines)
        for text in lines:
            # Fallback: a server whose print() went into twistd's log (stdout redirected to the
            # logger) still shows the URL there; it is used, and reported as a difference.
            m = LOGGED_URL_RE.search(text)
            if m and not self.urlFound.called:
                self.urlOnStderr = True
                self.urlFound.callback(m.group(1))

    def processEnded(self, reason: Failure) -> None:
        if not self.urlFound.called:
            tail = "\n".join(self.output[-20:])
            self.urlFound.errback(
                RuntimeError(f"{self.name} exited before printing a URL:\n{tail}")
            )
        super().processEnded(reason)


class LocalWsTarget:
    """A server started as a subprocess in local websocket mode."""

    def __init__(
        self,
        reactor: Any,
        name: str,
        argv: Sequence[str],
        env: dict[str, str],
        cwd: str,
        startTimeout: float = 30.0,
    ) -> None:
        self.reactor = reactor
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd
        self.startTimeout = startTimeout
        self.url = ""
        self._proto = _ServerProcess(name)
        self._transport: Any = None

    async def _start(self) -> None:
        self._transport = self.reactor.spawnProcess(
            self._proto, self.argv[0], self.argv, env=self.env, path=self.cwd
        )
        d = self._proto.urlFound
        d.addTimeout(self.startTimeout, self.reactor)
        self.url = await d

    def start(self) -> Deferred[None]:
        return defer.ensureDeferred(self._start())

    def connect(self) -> Deferred[Connection]:
        return defer.ensureDeferred(connectWs(self.reactor, self.url))

    async def _stop(self) -> None:
        if self._transport is None or self._proto.ended.called:
            return
        for sig, wait in (("TERM", 5.0), ("KILL", 5.0)):
            try:
                self._transport.signalProcess(sig)
            except error.ProcessExitedAlready:
                return
            ended: Deferred[None] = Deferred()
            fireWhenDone(self._proto.ended, ended)
            ended.addTimeout(wait, self.reactor)
            try:
                await ended
                return
            except defer.TimeoutError:
                continue

    def stop(self) -> Deferred[None]:
        return defer.ensureDeferred(self._stop())


def fireWhenDone(source: Deferred[None], target: Deferred[None]) -> None:
    """Fire ``target`` (once) when ``source`` fires, leaving ``source``'s result alone."""

    def fire(result: object) -> object:
        if not target.called:
            target.callback(None)
        return result

    source.addBoth(fire)


async def connectWs(reactor: Any, url: str, timeout: float = 10.0) -> Connection:
    # autobahn is imported lazily so that the parsing/normalising half of this module (used by
    # the unit tests) does not depend on it.
    from autobahn.twisted.websocket import (
        WebSocketClientFactory,
        WebSocketClientProtocol,
        connectWS,
    )

    class _Proto(WebSocketClientProtocol):  # type: ignore[misc]
        conn: WsConnection

        def onOpen(self) -> None:
            self.conn = WsConnection(self, reactor)
            opened = self.factory.opened
            if not opened.called:
                opened.callback(self.conn)

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            kind = "binary" if isBinary else "text"
            data = base64.b64encode(payload).decode() if isBinary else payload.decode("utf-8")
            self.conn.queue.put(Event(kind, data, reactor.seconds()))

        def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
            opened = self.factory.opened
            if not opened.called:
                opened.errback(ConnectionError(f"websocket failed to open: {code} {reason}"))
                return
            self.conn.queue.put(Event("closed", str(code), reactor.seconds()))
            if not self.conn.gone.called:
                self.conn.gone.callback(None)

    factory = WebSocketClientFactory(url)
    factory.protocol = _Proto
    factory.setProtocolOptions(maxMessagePayloadSize=0, maxFramePayloadSize=0)
    d: Deferred[Connection] = Deferred()
    factory.opened = d  # type: ignore[attr-defined]
    connectWS(factory)
    d.addTimeout(timeout, reactor)
    return await d


class WsConnection:
    """A :class:`Connection` over an autobahn client protocol."""

    def __init__(self, proto: Any, reactor: Any) -> None:
        self.proto = proto
        self.reactor = reactor
        self.queue: DeferredQueue[Event] = DeferredQueue()
        self.gone: Deferred[None] = Deferred()

    def send(self, text: str) -> None:
        self.proto.sendMessage(text.encode("utf-8", "surrogateescape"), isBinary=False)

    def sendBinary(self, data: bytes) -> None:
        self.proto.sendMessage(data, isBinary=True)

    def receive(self) -> Deferred[Event]:
        return self.queue.get()

    async def _close(self) -> None:
        if self.gone.called:
            return
        self.proto.sendClose()
        waiter: Deferred[None] = Deferred()
        fireWhenDone(self.gone, waiter)
        waiter.addTimeout(3.0, self.reactor)
        try:
            await waiter
        except defer.TimeoutError:
            self.proto.transport.abortConnection()

    def close(self) -> Deferred[None]:
        return defer.ensureDeferred(self._close())
