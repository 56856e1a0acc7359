"""twisted.web resources that apply :mod:`.wsauth`'s checks before anything else answers.

``UpgradeGuard`` wraps a site's root: an ``Origin`` header (403) or a foreign ``Host`` (403) is
refused on every path before routing, as 0.171 refuses ``Origin`` on ``/readyz`` and 404 paths
too. ``AuthorizedWebSocket`` wraps the websocket resource: a well-formed upgrade is refused with
the reference's 401 unless it carries an acceptable bearer; a malformed one is left to autobahn,
whose 400 comes first in the reference as well. Refusals are logged, rate-limited, with the
peer and the reason, never with the header's value.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request
from zope.interface import implementer

from twisted_exec.net.ratelimit import RateLimitedLog
from twisted_exec.net.wsauth import Refusal, authorizeUpgrade, hostRefusal, originRefusal
from twisted_exec.net.wsauth_config import WsAuthMode

log = Logger()


def _peer(request: Request) -> str:
    peer: Any = request.getClientAddress()
    host = getattr(peer, "host", None)
    return f"{host}:{getattr(peer, 'port', '?')}" if host is not None else str(peer)


class RefusalPage(Resource):
    """A leaf answering ``refusal`` to any method: status, ``text/plain`` body (or none)."""

    isLeaf = True

    def __init__(self, refusal: Refusal) -> None:
        super().__init__()
        self.refusal = refusal

    def render(self, request: Request) -> bytes:
        request.setResponseCode(self.refusal.status)
        body = self.refusal.body.encode()
        if body:
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"content-length", str(len(body)).encode())
        request.setHeader(b"cache-control", b"no-store")
        return body


class Refusals:
    """Counts refused upgrades and logs them, rate-limited."""

    def __init__(self, clock: IReactorTime) -> None:
        self.log = RateLimitedLog(clock, log)
        self.count = 0

    def page(self, request: Request, refusal: Refusal, what: str) -> RefusalPage:
        self.count += 1
        self.log.info(
            "websocket upgrade from {peer} refused ({status}: {why})",
            peer=_peer(request),
            status=refusal.status,
            why=refusal.body or what,
        )
        return RefusalPage(refusal)


@implementer(IResource)
class UpgradeGuard:
    """The root of a listener's site: Origin and Host are checked before routing."""

    isLeaf = False

    def __init__(
        self,
        inner: Resource,
        bindHost: str,
        clock: IReactorTime,
        refusals: Refusals | None = None,
    ) -> None:
        self._inner = inner
        self._bindHost = bindHost
        self.refusals = refusals if refusals is not None else Refusals(clock)

    def _refusal(self, request: Request) -> RefusalPage | None:
        headers = request.requestHeaders
        refusal = originRefusal(headers.getRawHeaders(b"origin"))
        if refusal is not None:
            return self.refusals.page(request, refusal, "Origin header")
        refusal = hostRefusal(headers.getRawHeaders(b"host"), self._bindHost)
        if refusal is not None:
            return self.refusals.page(request, refusal, "Host header")
        return None

    def getChildWithDefault(self, path: bytes, request: Request) -> Any:
        page = self._refusal(request)
        if page is not None:
            return page
        return self._inner.getChildWithDefault(path, request)

    def putChild(self, path: bytes, child: IResource) -> None:
        self._inner.putChild(path, child)

    def render(self, request: Request) -> Any:
        page = self._refusal(request)
        if page is not None:
            return page.render(request)
        return self._inner.render(request)


def isWellFormedUpgrade(request: Request) -> bool:
    """What the reference validates before it looks at ``Authorization``."""
    headers = request.requestHeaders

    def tokens(name: bytes) -> set[bytes]:
        values = headers.getRawHeaders(name) or []
        return {t.strip().lower() for v in values for t in v.split(b",")}

    return (
        request.method == b"GET"
        and request.clientproto == b"HTTP/1.1"
        and b"upgrade" in tokens(b"connection")
        and b"websocket" in tokens(b"upgrade")
        and b"13" in tokens(b"sec-websocket-version")
        and bool(headers.getRawHeaders(b"sec-websocket-key"))
    )


@implementer(IResource)
class AuthorizedWebSocket:
    """Wraps autobahn's ``WebSocketResource``: the bearer is checked before the upgrade."""

    isLeaf = True

    def __init__(
        self,
        websocket: Any,
        mode: WsAuthMode | None,
        clock: IReactorTime,
        refusals: Refusals | None = None,
    ) -> None:
        self._websocket = websocket
        self._mode = mode
        self._clock = clock
        self.refusals = refusals if refusals is not None else Refusals(clock)

    def getChildWithDefault(self, path: bytes, request: Request) -> Any:
        return self

    def putChild(self, path: bytes, child: IResource) -> None:
        raise NotImplementedError

    def render(self, request: Request) -> Any:
        if self._mode is not None and isWellFormedUpgrade(request):
            refusal = authorizeUpgrade(
                self._mode,
                request.requestHeaders.getRawHeaders(b"authorization"),
                self._clock.seconds(),
            )
            if refusal is not None:
                return self.refusals.page(request, refusal, "bearer").render(request)
        return self._websocket.render(request)
