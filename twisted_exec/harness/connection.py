"""The harness websocket to a rendezvous: many :class:`~.session.ExecSession` streams on one.

Usage, inside a running reactor::

    connection = await connectHarness(reactor, "http://127.0.0.1:8765", "my-box", token)
    session = await connection.openSession()          # resume + initialize + initialized
    process = await session.spawn(["uname", "-a"], "/")
    code = await process.finished
    data = await session.readFile("/etc/hostname")
    await connection.close()

Connection failures are typed (:mod:`.errors`): the rendezvous is unreachable, refused the token,
does not know the executor id, or the executor is not connected at the moment.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import quote, urlsplit

from autobahn.websocket.types import ConnectionResponse
from twisted.internet.defer import Deferred, TimeoutError, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger

from twisted_exec.harness.describe import describeConnectError, noHandshakeHint
from twisted_exec.harness.errors import (
    AuthenticationError,
    ExecutorNotConnectedError,
    HarnessError,
    RendezvousUnreachableError,
    StreamError,
    UnknownExecutorError,
)
from twisted_exec.harness.session import ExecSession
from twisted_exec.net.autobahn_ws import WebSocketClientFactory, WebSocketClientProtocol
from twisted_exec.net.nodelay import NoDelayMixin
from twisted_exec.net.wsendpoints import WebsocketEndpoints
from twisted_exec.net.wsoptions import capWithoutHandshakeTimers
from twisted_exec.wire.frames import Data, Invalid, Reset, decodeFrame
from twisted_exec.wire.reasons import EXECUTOR_NOT_CONNECTED

log = Logger()

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
CONNECT_TIMEOUT = 10.0
_UPGRADE_FAILED = re.compile(r"upgrade failed \[(\d+)\]: (.*)")


def harnessUrl(rendezvousUrl: str, executorId: str) -> str:
    """``http(s)://`` or ``ws(s)://`` base URL → ``ws(s)://.../harness/{id}``."""
    parts = urlsplit(rendezvousUrl.strip())
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise ValueError(f"rendezvous URL must be http(s):// or ws(s)://, got {rendezvousUrl!r}")
    base = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    return f"{base}/harness/{quote(executorId, safe='')}"


def upgradeError(status: int, reason: str, base: str, executorId: str) -> HarnessError:
    """The typed error for a refused websocket upgrade."""
    if status in (401, 403):
        return AuthenticationError(
            f"the rendezvous at {base} refused the bearer token ({status}): {reason}"
        )
    if status == 404:
        return UnknownExecutorError(f"unknown executor {executorId!r} at the rendezvous {base}")
    if status == 503:
        return ExecutorNotConnectedError(
            f"executor {executorId!r} is not connected to the rendezvous {base}"
        )
    return HarnessError(f"the rendezvous at {base} refused the harness ({status}): {reason}")


class _HarnessProtocol(NoDelayMixin, WebSocketClientProtocol):  # type: ignore[misc]
    factory: _HarnessFactory

    def onConnect(self, response: ConnectionResponse) -> None:
        return None

    def onOpen(self) -> None:
        self.factory.connection._opened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if isBinary:
            self.factory.connection._frameReceived(payload)
        else:
            log.warn("text message from the rendezvous dropped")

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.connection._closed(code, reason, getattr(self, "wasNotCleanReason", None))


class _HarnessFactory(WebSocketClientFactory):  # type: ignore[misc]
    protocol = _HarnessProtocol  # type: ignore[assignment]

    def __init__(self, connection: HarnessConnection, url: str, headers: dict[str, str]) -> None:
        super().__init__(url, headers=headers)
        self.connection = connection
        # Our own timeout bounds the open (net/wsoptions).
        capWithoutHandshakeTimers(self, MAX_MESSAGE_BYTES)


class HarnessConnection:
    """One harness websocket to ``executorId`` through a rendezvous; owns its streams."""

    def __init__(self, reactor: Any, rendezvousUrl: str, executorId: str) -> None:
        self._reactor = reactor
        self.rendezvousUrl = rendezvousUrl
        self.executorId = executorId
        self.sessions: dict[str, ExecSession] = {}
        self._protocol: _HarnessProtocol | None = None
        self._openWaiter: Deferred[HarnessConnection] = Deferred()
        self._lostWaiters: list[Deferred[None]] = []
        self.lost = False

    def __repr__(self) -> str:
        return f"<HarnessConnection {self.executorId!r} via {self.rendezvousUrl}>"

    # -- streams ---------------------------------------------------------------------------

    def newSession(self, streamId: str | None = None) -> ExecSession:
        """A new stream (UUIDv4 id) announced with ``resume``; not initialised yet."""
        if self.lost:
            raise StreamError("harness connection closed")
        sid = streamId if streamId is not None else str(uuid.uuid4())
        session = ExecSession(sid, self._send, self._sessionEnded)
        self.sessions[sid] = session
        session.open()
        return session

    def openSession(
        self,
        clientName: str = "twisted-exec",
        resumeSessionId: str | None = None,
        *,
        waitForExecutor: float = 0.0,
    ) -> Deferred[ExecSession]:
        """A new initialised session. With ``waitForExecutor``, an executor that is not
        connected yet (restarting) is waited for, up to that many seconds."""
        return Deferred.fromCoroutine(
            self._openSession(clientName, resumeSessionId, waitForExecutor)
        )

    async def _openSession(
        self, clientName: str, resumeSessionId: str | None, waitForExecutor: float
    ) -> ExecSession:
        clock: IReactorTime = self._reactor
        deadline = clock.seconds() + waitForExecutor
        delay = 0.05
        while True:
            session = self.newSession()
            try:
                await session.initialize(clientName, resumeSessionId)
                return session
            except StreamError as e:
                if e.reason != EXECUTOR_NOT_CONNECTED or clock.seconds() + delay > deadline:
                    raise
            await deferLater(self._reactor, delay, lambda: None)
            delay = min(delay * 2, 1.0)

    def _send(self, raw: bytes) -> None:
        protocol = self._protocol
        if protocol is not None and protocol.state == WebSocketClientProtocol.STATE_OPEN:
            protocol.sendMessage(raw, isBinary=True)

    def _sessionEnded(self, session: ExecSession) -> None:
        if self.sessions.get(session.streamId) is session:
            del self.sessions[session.streamId]

    def _frameReceived(self, raw: bytes) -> None:
        event = decodeFrame(raw)
        if isinstance(event, Invalid):
            log.warn("frame from the rendezvous dropped: {why}", why=event.reason)
            return
        if not isinstance(event, Data | Reset):
            return  # ack / resume / heartbeat: nothing to do
        session = self.sessions.get(event.streamId)
        if session is None:
            log.debug("frame for unknown stream {streamId} dropped", streamId=event.streamId)
            return
        session.frameReceived(event)

    # -- websocket lifecycle ---------------------------------------------------------------

    def _opened(self, protocol: _HarnessProtocol) -> None:
        self._protocol = protocol
        if not self._openWaiter.called:
            self._openWaiter.callback(self)

    def _closed(self, code: int | None, reason: str | None, notClean: str | None) -> None:
        wasOpen = self._protocol is not None
        self.lost = True
        self._protocol = None
        if not wasOpen:
            if not self._openWaiter.called:
                self._openWaiter.errback(self._handshakeError(notClean or reason or ""))
            return
        why = f"harness connection closed ({code}{': ' + reason if reason else ''})"
        for session in list(self.sessions.values()):
            session.connectionLost(why)
        waiters, self._lostWaiters = self._lostWaiters, []
        for w in waiters:
            w.callback(None)

    def _handshakeError(self, text: str) -> HarnessError:
        match = _UPGRADE_FAILED.search(text)
        if match:
            status, reason = int(match.group(1)), match.group(2).rstrip(")")
            return upgradeError(status, reason, self.rendezvousUrl, self.executorId)
        hint = noHandshakeHint(self.rendezvousUrl)
        return RendezvousUnreachableError(
            f"websocket handshake with the rendezvous at {self.rendezvousUrl} failed: {text}{hint}"
        )

    def whenLost(self) -> Deferred[None]:
        if self.lost:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._lostWaiters.append(d)
        return d

    def close(self) -> Deferred[None]:
        """Close the websocket (the rendezvous resets our streams towards the executor)."""
        protocol = self._protocol
        if protocol is None:
            return succeed(None)
        d = self.whenLost()
        protocol.sendClose(1000, "harness done")
        # Do not wait forever for a peer that never answers the close.
        d.addTimeout(5, self._reactor, onTimeoutCancel=lambda result, timeout: self.abort())
        return d

    def abort(self) -> None:
        if self._protocol is not None:
            self._protocol.dropConnection(abort=True)


def connectHarness(
    reactor: Any,
    rendezvousUrl: str,
    executorId: str,
    token: str | None,
    *,
    timeout: float = CONNECT_TIMEOUT,
) -> Deferred[HarnessConnection]:
    """Connect to ``/harness/{executorId}`` at ``rendezvousUrl`` with ``token``."""
    return Deferred.fromCoroutine(
        _connectHarness(reactor, rendezvousUrl, executorId, token, timeout)
    )


async def _connectHarness(
    reactor: Any, rendezvousUrl: str, executorId: str, token: str | None, timeout: float
) -> HarnessConnection:
    url = harnessUrl(rendezvousUrl, executorId)
    connection = HarnessConnection(reactor, rendezvousUrl.rstrip("/"), executorId)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    factory = _HarnessFactory(connection, url, headers)
    endpoint = WebsocketEndpoints(reactor, connectTimeout=timeout)(url)
    try:
        connecting = endpoint.connect(factory).addTimeout(timeout, reactor)
        protocol: Any = await connecting
    except Exception as e:
        raise RendezvousUnreachableError(
            f"cannot reach the rendezvous at {connection.rendezvousUrl}: "
            f"{describeConnectError(e, connection.rendezvousUrl)}"
        ) from None

    def abortHalfOpen(result: object, timeout: float) -> HarnessConnection:
        protocol.dropConnection(abort=True)
        raise TimeoutError()

    try:
        return await connection._openWaiter.addTimeout(
            timeout, reactor, onTimeoutCancel=abortHalfOpen
        )
    except TimeoutError:
        hint = noHandshakeHint(connection.rendezvousUrl)
        raise RendezvousUnreachableError(
            f"the rendezvous at {connection.rendezvousUrl} did not complete the websocket "
            f"handshake within {timeout:g} s{hint}"
        ) from None
