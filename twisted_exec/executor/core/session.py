"""Sessions outlive their transports: detach, a 10 s resume window, then cleanup.

A harness's connection (local websocket, relay stream) can drop while its processes run. As the
reference does, the session is then *detached*: its processes keep running and their output is
retained, and ``initialize {resumeSessionId}`` on a new connection within the window takes it back.
Unclaimed, it expires and its processes are killed.

No IO here: the clock is injected, and the per-session resources (process table, HTTP requester)
come from a factory, so tests drive this with ``task.Clock`` and fakes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from twisted_exec.executor.core.dialect import Dialect
from twisted_exec.executor.core.interfaces import ISessionResources
from twisted_exec.wire.errors import invalidRequest

log = Logger()

DETACH_TTL = 10.0

Notify = Callable[[str, dict[str, Any]], None]


class Session:
    """One harness session: its id, its resources, and the notification route of the moment."""

    def __init__(self, sessionId: str) -> None:
        self.sessionId = sessionId
        # An ISessionResources once the session is created (Any: tests reach into their fakes)
        self.resources: Any = None
        self._notify: Notify | None = None
        self._expiry: IDelayedCall | None = None
        self.closed = False
        #: The dialect it speaks (core/dialect.py); kept across a resume.
        self.dialect = Dialect.V131

    @property
    def attached(self) -> bool:
        return self._notify is not None

    def notify(self, method: str, params: dict[str, Any]) -> None:
        """Forward a notification to the attached transport; dropped while detached."""
        if self._notify is not None:
            self._notify(method, params)

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("attached" if self.attached else "detached")
        return f"<Session {self.sessionId} {state}>"


ResourceFactory = Callable[[Session], ISessionResources]


class SessionRegistry:
    """All live sessions of one executor, attached or waiting to be resumed."""

    def __init__(
        self, clock: IReactorTime, resourceFactory: ResourceFactory, ttl: float = DETACH_TTL
    ) -> None:
        self._clock = clock
        self._resourceFactory = resourceFactory
        self._ttl = ttl
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def sessions(self) -> list[Session]:
        return list(self._sessions.values())

    def get(self, sessionId: str) -> Session | None:
        return self._sessions.get(sessionId)

    def create(self, notify: Notify) -> Session:
        session = Session(str(uuid.uuid4()))
        session.resources = self._resourceFactory(session)
        session._notify = notify
        self._sessions[session.sessionId] = session
        return session

    def resume(self, sessionId: str, notify: Notify) -> Session:
        """Attach a detached session to a new transport, or raise the reference's -32600."""
        session = self._sessions.get(sessionId)
        if session is None:
            raise invalidRequest(f"unknown session id {sessionId}")
        if session.attached:
            raise invalidRequest(f"session {sessionId} is already attached to another connection")
        if session._expiry is not None and session._expiry.active():
            session._expiry.cancel()
        session._expiry = None
        session._notify = notify
        log.debug("session {sessionId} resumed", sessionId=sessionId)
        return session

    def detach(self, session: Session) -> None:
        """The transport went away: keep the session for ``ttl`` seconds."""
        if session.closed or not session.attached:
            return
        session._notify = None
        session._expiry = self._clock.callLater(self._ttl, self.close, session)
        log.debug(
            "session {sessionId} detached; expires in {ttl} s",
            sessionId=session.sessionId,
            ttl=self._ttl,
        )

    def close(self, session: Session) -> None:
        """End a session now: kill its processes, cancel its requests, forget it."""
        if session.closed:
            return
        session.closed = True
        session._notify = None
        if session._expiry is not None and session._expiry.active():
            session._expiry.cancel()
        session._expiry = None
        self._sessions.pop(session.sessionId, None)
        if session.resources is not None:
            session.resources.close()
        log.debug("session {sessionId} closed", sessionId=session.sessionId)

    def closeAll(self) -> None:
        """Service shutdown: every session ends, attached or not."""
        for session in list(self._sessions.values()):
            self.close(session)
