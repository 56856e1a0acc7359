"""The registry's HTTP side (``/cloud/...``) on twisted.web.

- ``POST /cloud/executor/{id}/register`` (bearer token) → ``200 {"executor_id", "url"}``, the
  URL being a fresh signed one-time ``ws(s)://.../executor/{id}?sig=...`` (what the Codex
  executor expects from the cloud's registry);
- ``GET /cloud/executors`` (bearer token) → ``{"executors": [...]}``: every executor id the
  rendezvous knows, whether it is connected, and how many streams are routed to it;
- errors use the cloud's body shape ``{"error": {"code", "message"}}``: 401 ``unauthorized``,
  400 ``invalid_executor_id``, 404 ``not_found``, 405 ``method_not_allowed``.

The websocket URL is built from ``--public-url`` when given, else from the request's ``Host``
header (``ws://`` on plain HTTP, ``wss://`` on TLS): on one machine the executor reaches the
rendezvous by the same address it registered with.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Generic, TypeVar
from urllib.parse import unquote

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request

from twisted_exec.rendezvous.auth import TokenSet
from twisted_exec.rendezvous.interfaces import RegistryServer
from twisted_exec.rendezvous.tenancy import EXECUTOR, Tenancy
from twisted_exec.wire.frames import streamIdProblem

log = Logger()

ServerT = TypeVar("ServerT")

MAX_EXECUTOR_ID_BYTES = 128


def errorBody(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def executorIdProblem(executorId: str) -> str | None:
    """Why ``executorId`` cannot be registered (same rules as a stream id, and no ``/``)."""
    if "/" in executorId or any(ord(c) < 0x20 or ord(c) == 0x7F for c in executorId):
        return "executor id must not contain '/' or control characters"
    problem = streamIdProblem(executorId)
    if problem is not None:
        return problem.replace("stream_id", "executor id")
    return None


def registrationReply(
    tokens: TokenSet | None,
    authorization: str | None,
    executorId: str,
    mintUrl: Callable[[str], str],
    tenancy: Tenancy | None = None,
) -> tuple[int, dict[str, Any]]:
    """The registry's answer to ``POST /cloud/executor/{executorId}/register``: status, body.

    One implementation for the service and the test registry
    (:class:`~twisted_exec.testing.registry.FakeRegistry`, which adds scripted failures).
    With ``tenancy``, the id is claimed for the token's principal: another principal's id is
    ``409`` (the holder is not displaced), a ``register=`` scope ``403``, the cap ``429``.
    """
    principal = tokens.principalFor(authorization) if tokens is not None else None
    if tokens is not None and principal is None:
        return 401, errorBody("unauthorized", "invalid bearer token")
    problem = executorIdProblem(executorId)
    if problem is not None:
        return 400, errorBody("invalid_executor_id", problem)
    if tenancy is not None:
        denial = tenancy.claim(principal, EXECUTOR, executorId)
        if denial is not None:
            return denial.status, errorBody(denial.code, denial.message)
    return 200, {"executor_id": executorId, "url": mintUrl(executorId)}


def websocketBase(request: Request, publicUrl: str | None) -> str:
    """``ws(s)://host[:port]`` executors and harnesses should dial, for this request."""
    if publicUrl is not None:
        base = publicUrl.rstrip("/")
        if base.startswith("https://"):
            return "wss://" + base[len("https://") :]
        if base.startswith("http://"):
            return "ws://" + base[len("http://") :]
        return base
    host = (request.getHeader(b"host") or b"").decode("latin-1").strip()
    if not host:
        address: Any = request.getHost()
        host = f"{address.host}:{address.port}"
    scheme = "wss" if request.isSecure() else "ws"
    return f"{scheme}://{host}"


#: Our executors send their ``--name`` in this header (percent-encoded UTF-8); the reference
#: sends none, and a registry that does not know it ignores it.
NAME_HEADER = b"x-codex-executor-name"
MAX_NAME_CHARS = 128


def executorName(request: Request) -> str | None:
    """The executor's display name from its registration, printable and bounded (or None)."""
    raw = request.getHeader(NAME_HEADER)
    if raw is None:
        return None
    name = unquote(raw.decode("latin-1"))
    name = "".join(c for c in name if c.isprintable()).strip()[:MAX_NAME_CHARS]
    return name or None


def jsonReply(request: Request, status: int, body: Any) -> bytes:
    """``body`` as the cloud's JSON answer (never cached; a 401 names the bearer realm)."""
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    if status == 401:
        request.setHeader(b"www-authenticate", b'Bearer realm="codex-rendezvous"')
    return json.dumps(body).encode()


class CloudLeaf(Resource, Generic[ServerT]):
    """A ``/cloud/...`` resource over the server's state; every path below it is decided in
    ``render`` from :meth:`parts`."""

    isLeaf = True

    def __init__(self, server: ServerT) -> None:
        super().__init__()
        self._server = server

    @staticmethod
    def parts(request: Request) -> list[str]:
        """The path segments below this resource, percent-decoded."""
        return [unquote(p.decode("latin-1")) for p in (request.postpath or [])]


class CloudResource(CloudLeaf[RegistryServer]):
    """``/cloud/...`` of the 0.131 registry: register an executor, list the executors."""

    def render(self, request: Request) -> bytes:
        parts = self.parts(request)
        method = request.method.decode("latin-1")
        if len(parts) == 3 and parts[0] == "executor" and parts[2] == "register":
            if method != "POST":
                return jsonReply(request, 405, errorBody("method_not_allowed", "use POST"))
            return self._register(request, parts[1])
        if parts in (["executors"], ["executors", ""]):
            if method not in ("GET", "HEAD"):
                return jsonReply(request, 405, errorBody("method_not_allowed", "use GET"))
            return self._list(request)
        return jsonReply(request, 404, errorBody("not_found", "not found"))

    def _authorized(self, request: Request) -> bool:
        header = request.getHeader(b"authorization")
        return self._server.tokens is None or self._server.tokens.checkAuthorization(
            header.decode("latin-1") if header is not None else None
        )

    def _register(self, request: Request, executorId: str) -> bytes:
        header = request.getHeader(b"authorization")
        base = websocketBase(request, self._server.publicUrl)
        status, body = registrationReply(
            self._server.tokens,
            header.decode("latin-1") if header is not None else None,
            executorId,
            lambda ident: self._server.executorUrl(ident, base),
            self._server.tenancy,
        )
        metrics = self._server.metrics
        if status == 200:
            name = executorName(request)
            self._server.router.registered(executorId, name)
            metrics.registration("ok")
            log.info("executor {ident!r} registered", ident=executorId)
        else:
            metrics.registration("refused")
            log.info(
                "registration of {ident!r} refused ({status})", ident=executorId, status=status
            )
        return jsonReply(request, status, body)

    def _list(self, request: Request) -> bytes:
        if not self._authorized(request):
            return jsonReply(request, 401, errorBody("unauthorized", "invalid bearer token"))
        router = self._server.router
        now = self._server.clock.seconds()
        harnesses = self._server.harnessCounts()

        def since(at: float | None) -> float | None:
            return None if at is None else round(max(0.0, now - at), 3)

        tokens, tenancy = self._server.tokens, self._server.tenancy
        header = request.getHeader(b"authorization")
        principal = tokens.principalFor(header) if tokens is not None else None
        executors = [
            {
                "executor_id": r.executorId,
                "name": r.name,
                "connected": r.connected,
                "connected_seconds": since(r.connectedAt) if r.connected else None,
                "disconnected_seconds": None if r.connected else since(r.disconnectedAt),
                "harnesses": harnesses.get(r.executorId, 0),
                "registered_at": r.registeredAt,
                "connected_at": r.connectedAt,
                "disconnected_at": r.disconnectedAt,
                "connections": r.connections,
                "streams": router.streamCount(r.executorId),
            }
            for r in router.records()
            if tenancy.mayReach(principal, EXECUTOR, r.executorId)
        ]
        return jsonReply(request, 200, {"executors": executors})
