"""A real executor registry for tests: ``POST /cloud/executor/{id}/register`` on twisted.web.

It answers as ``twistd codex-rendezvous`` does, through the same function
(:func:`~twisted_exec.rendezvous.registry.registrationReply`): it checks the bearer token and
answers ``{"executor_id", "url"}`` with a websocket URL (typically from
:class:`~twisted_exec.testing.rendezvous.Rendezvous`). On top, it can be scripted to fail, and it
serves on its own port, so a test can point an executor at a registry that is not its
rendezvous. Every request is recorded, headers and body included, so tests can assert what an
executor sent.

Use it in-memory with ``treq.testing.StubTreq(registry.resource())`` or over loopback with
:meth:`FakeRegistry.listen`.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTCP
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request as _Request
from twisted.web.server import Site

from twisted_exec.rendezvous.auth import TokenSet
from twisted_exec.rendezvous.registry import registrationReply
from twisted_exec.testing.loopback import LoopbackPort

REGISTER_PATH = "/cloud/executor/{}/register"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the registry saw it (header names lower-cased)."""

    method: str
    path: str
    query: str
    executorId: str | None
    headers: dict[str, list[str]]
    body: bytes


@dataclass(frozen=True)
class Reply:
    """A scripted reply. ``body`` may be bytes, or any JSON value (serialised)."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)


def errorBody(code: str | None, message: str | None) -> dict[str, Any]:
    """The cloud's error body shape, ``{"error": {"code", "message"}}`` (either may be omitted)."""
    error: dict[str, str] = {}
    if code is not None:
        error["code"] = code
    if message is not None:
        error["message"] = message
    return {"error": error}


class FakeRegistry(LoopbackPort):
    """The registry: token check, scripted replies, a record of every request.

    ``wsUrl(executorId)`` gives the websocket URL of a successful registration; the default reply
    for a correct token is ``200 {"executor_id": id, "url": wsUrl(id)}``, and for a wrong or
    missing token ``401 {"error": {"code": "unauthorized", "message": "invalid bearer token"}}``.
    Replies queued with :meth:`script` take precedence, one per request, whatever the token.
    """

    def __init__(self, token: str, wsUrl: Callable[[str], str] | None = None) -> None:
        self.token = token
        self.wsUrl = wsUrl if wsUrl is not None else (lambda ident: f"ws://127.0.0.1:9/{ident}")
        self.requests: list[RecordedRequest] = []
        self._scripted: deque[Reply] = deque()
        self._waiters: list[tuple[int, Deferred[RecordedRequest]]] = []

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order."""
        self._scripted.extend(replies)

    def waitForRequest(self, count: int) -> Deferred[RecordedRequest]:
        """Fires with the ``count``-th request (1-based) once it has arrived."""
        d: Deferred[RecordedRequest] = Deferred()
        if len(self.requests) >= count:
            d.callback(self.requests[count - 1])
        else:
            self._waiters.append((count, d))
        return d

    def resource(self) -> IResource:
        root = Resource()
        root.putChild(b"cloud", _Cloud(self))
        return root

    def listen(self, reactor: IReactorTCP, interface: str = "127.0.0.1") -> str:
        """Listen on a free loopback port; returns the base URL (``http://host:port``)."""
        site: Any = Site(self.resource())
        return self._listenOn(reactor, site, interface)

    def handle(self, request: _Request, executorId: str | None) -> bytes:
        recorded = RecordedRequest(
            method=request.method.decode("latin-1"),
            path=request.path.decode("latin-1"),
            query=request.uri.decode("latin-1").partition("?")[2],
            executorId=executorId,
            headers={
                k.decode("latin-1").lower(): [v.decode("latin-1") for v in vs]
                for k, vs in request.requestHeaders.getAllRawHeaders()
            },
            body=request.content.read() if request.content is not None else b"",
        )
        self.requests.append(recorded)
        reply = self._reply(recorded)
        for waiter in [w for w in self._waiters if w[0] <= len(self.requests)]:
            self._waiters.remove(waiter)
            waiter[1].callback(self.requests[waiter[0] - 1])
        request.setResponseCode(reply.status)
        body = reply.body
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
            request.setHeader(b"content-type", b"application/json")
        for name, value in reply.headers.items():
            request.setHeader(name.encode(), value.encode())
        return body  # type: ignore[no-any-return]

    def _reply(self, recorded: RecordedRequest) -> Reply:
        if self._scripted:
            return self._scripted.popleft()
        if recorded.method != "POST" or recorded.executorId is None:
            return Reply(404, errorBody("not_found", "not found"))
        authorization = recorded.headers.get("authorization", [None])[-1]
        status, body = registrationReply(
            TokenSet([self.token]), authorization, recorded.executorId, self.wsUrl
        )
        return Reply(status, body)


class _Cloud(Resource):
    """``/cloud/...``: every path lands in :meth:`FakeRegistry.handle`."""

    isLeaf = True

    def __init__(self, registry: FakeRegistry) -> None:
        super().__init__()
        self._registry = registry

    def render(self, request: _Request) -> bytes:
        # postpath after /cloud: [b"executor", id, b"register"]
        parts = request.postpath or []
        executorId: str | None = None
        if len(parts) == 3 and parts[0] == b"executor" and parts[2] == b"register" and parts[1]:
            executorId = unquote(parts[1].decode("latin-1"))
        return self._registry.handle(request, executorId)
