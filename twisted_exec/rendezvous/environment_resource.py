"""The environment registry and relay on twisted.web and autobahn (Codex 0.171's remote mode).

- ``POST /cloud/environment/{id}/register|connect|validate`` (bearer token): the calls of
  :class:`~.environments.EnvironmentRegistry`, answered with its status and JSON body;
- websocket ``/ws/environment/{id}?role=environment&sig=...``: the registered executor, admitted
  with the signed URL its registration returned (403 otherwise: the 0.171 executor registers
  again on any 4xx);
- websocket ``/ws/environment/{id}?role=harness&sig=...``: a harness, admitted with the signed
  URL its ``connect`` returned (the 0.171 harness sends no bearer on this upgrade; it fetches one
  fresh bundle on a 401, which is what a spent or expired URL gets).

Both websockets carry relay frames routed by ``stream_id`` through a
:class:`~.router.Router` of their own (environment ids and 0.131 executor ids are separate
namespaces). The rendezvous never decrypts: Noise handshake frames and ciphertext data frames are
forwarded byte for byte like any other frame. A signed URL is bound to the environment *and* its
current registration, single-use and expiring (:class:`~.auth.UrlSigner`), so a URL seen in a log
is worth nothing, and one minted before a new registration no longer admits anybody.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote, unquote

from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request

from twisted_exec.rendezvous.auth import TokenSet, UrlSigner
from twisted_exec.rendezvous.environments import EnvironmentRegistry, environmentIdProblem
from twisted_exec.rendezvous.interfaces import CloseInfo
from twisted_exec.rendezvous.registry import CloudLeaf, errorBody, jsonReply, websocketBase
from twisted_exec.rendezvous.router import Router
from twisted_exec.rendezvous.tenancy import Denial, matches
from twisted_exec.rendezvous.websocket import REPLACED_CODE, RelayLink, RendezvousWebSocket

log = Logger()

WS_PREFIX = "/ws/environment/"
ROLE_EXECUTOR = "environment"
ROLE_HARNESS = "harness"
MAX_REQUEST_BYTES = 64 * 1024  # a registry request is about 2 KB (two public keys)
# Noise records are at most 60 KiB of plaintext; 0.171 caps relay websocket messages at 256 KiB.
MAX_RELAY_MESSAGE_BYTES = 256 * 1024
ANONYMOUS = "anonymous"
FROM_EXECUTOR = "executor->harness"
FROM_HARNESS = "harness->executor"


def credentialFor(tokens: TokenSet | None, authorization: str | None) -> str | None:
    """An opaque, stable id of the bearer token in ``authorization``, or None if not accepted.

    Ownership is recorded by this id, never by the token; without a token set (test doubles)
    every caller is the same credential."""
    if tokens is None:
        return ANONYMOUS
    if authorization is None or not tokens.checkAuthorization(authorization):
        return None
    token = authorization.strip().partition(" ")[2].strip()
    return "cred-" + hashlib.sha256(token.encode()).hexdigest()[:24]


def _subject(role: str, environmentId: str, registrationId: str) -> str:
    # Control characters cannot occur in an executor id, so no 0.131 signature is valid here.
    return f"environment-{role}\n{environmentId}\n{registrationId}"


class EnvironmentRendezvous:
    """Environment registry state, the environment router and the signed URLs."""

    def __init__(self, clock: IReactorTime, signer: UrlSigner) -> None:
        self.clock = clock
        self.signer = signer
        self.registry = EnvironmentRegistry(clock)
        # Byte for byte: no delivery acks on environment relays (0.171's executors and ours
        # there run Noise streams without per-stream windows).
        self.router = Router(clock, deliveryAcks=False)
        self.executorLinkClass: type[EnvironmentExecutorLink] = EnvironmentExecutorLink
        self.harnessLinkClass: type[EnvironmentHarnessLink] = EnvironmentHarnessLink
        #: Sees every frame either side sends, before it is routed: ``(FROM_EXECUTOR or
        #: FROM_HARNESS, environment id, raw bytes)``. For captures in tests and diagnostics;
        #: the frames are ciphertext and routing metadata only.
        self.onFrame: Callable[[str, str, bytes], None] | None = None

    def url(self, wsBase: str, role: str, environmentId: str, registrationId: str) -> str:
        sig = self.signer.sign(_subject(role, environmentId, registrationId))
        path = WS_PREFIX + quote(environmentId, safe="")
        return f"{wsBase.rstrip('/')}{path}?role={role}&sig={sig}"

    def admit(self, protocol: RendezvousWebSocket, request: ConnectionRequest) -> RelayLink:
        """Admit ``/ws/environment/{id}?role=...&sig=...``; raise ConnectionDeny to refuse."""
        environmentId = unquote(request.path[len(WS_PREFIX) :])
        if environmentIdProblem(environmentId) is not None:
            raise ConnectionDeny(404, "invalid environment id")
        role = request.params.get("role", [None])[0]
        sig = request.params.get("sig", [None])[0]
        env = self.registry.environment(environmentId)
        subject = _subject(str(role), environmentId, env.registrationId if env else "")
        signed = env is not None and self.signer.verify(subject, sig)
        if role == ROLE_EXECUTOR:
            if not signed or env is None:
                log.info(
                    "environment executor {ident!r} refused: bad or spent URL", ident=environmentId
                )
                raise ConnectionDeny(403, "invalid, expired or spent environment URL")
            link: RelayLink = self.executorLinkClass(
                self, protocol, environmentId, env.registrationId
            )
        elif role == ROLE_HARNESS:
            if not signed or env is None:
                raise ConnectionDeny(401, "invalid, expired or spent harness URL")
            if env.connectedRegistration != env.registrationId:
                raise ConnectionDeny(503, f"environment {environmentId!r} is not connected")
            link = self.harnessLinkClass(self, protocol, environmentId, env.registrationId)
        else:
            raise ConnectionDeny(404, "unknown role")
        # One Noise record per frame: a small cap keeps each websocket's buffer small.
        websocket: Any = protocol
        websocket.maxMessagePayloadSize = MAX_RELAY_MESSAGE_BYTES
        websocket.maxFramePayloadSize = MAX_RELAY_MESSAGE_BYTES
        return link


class _EnvironmentLink(RelayLink):
    def __init__(
        self,
        environments: EnvironmentRendezvous,
        protocol: RendezvousWebSocket,
        environmentId: str,
        registrationId: str,
    ) -> None:
        super().__init__(protocol, environmentId)
        self.environments = environments
        self.environmentId = environmentId
        self.registrationId = registrationId

    @property
    def router(self) -> Router:
        return self.environments.router


class EnvironmentExecutorLink(_EnvironmentLink):
    """The environment's executor websocket (one at a time; a newer one replaces it)."""

    def __repr__(self) -> str:
        return f"<EnvironmentExecutorLink {self.environmentId!r}>"

    def opened(self) -> None:
        old = self.router.executorConnected(self.environmentId, self)
        self.environments.registry.executorConnected(self.environmentId, self.registrationId)
        log.info("environment {ident!r}: executor connected", ident=self.environmentId)
        if old is not None:
            old.close(REPLACED_CODE, "replaced by a newer connection")

    def frameReceived(self, raw: bytes) -> None:
        observe = self.environments.onFrame
        if observe is not None:
            observe(FROM_EXECUTOR, self.environmentId, raw)
        self.router.fromExecutor(self.environmentId, self, raw)

    def lost(self, info: CloseInfo) -> None:
        self.router.executorLost(self.environmentId, self)
        record = self.router.record(self.environmentId)
        if record is None or not record.connected:
            self.environments.registry.executorLost(self.environmentId, self.registrationId)
        log.info(
            "environment {ident!r}: executor disconnected (code {code})",
            ident=self.environmentId,
            code=info[1],
        )


class EnvironmentHarnessLink(_EnvironmentLink):
    """A harness websocket; its frames go to the environment's executor."""

    def __repr__(self) -> str:
        return f"<EnvironmentHarnessLink for {self.environmentId!r}>"

    def frameReceived(self, raw: bytes) -> None:
        observe = self.environments.onFrame
        if observe is not None:
            observe(FROM_HARNESS, self.environmentId, raw)
        self.router.fromHarness(self, self.environmentId, raw)

    def lost(self, info: CloseInfo) -> None:
        self.router.harnessLost(self)


class EnvironmentServer(Protocol):
    """What the environment routes read of the server."""

    @property
    def tokens(self) -> TokenSet | None: ...
    @property
    def publicUrl(self) -> str | None: ...
    @property
    def environments(self) -> EnvironmentRendezvous: ...


class EnvironmentCloudResource(CloudLeaf[EnvironmentServer]):
    """``/cloud/environment/{id}/{register,connect,validate}``."""

    def render(self, request: Request) -> bytes:
        parts = self.parts(request)
        if len(parts) != 2 or parts[1] not in ("register", "connect", "validate"):
            return jsonReply(request, 404, errorBody("not_found", "not found"))
        if request.method != b"POST":
            return jsonReply(request, 405, errorBody("method_not_allowed", "use POST"))
        environmentId, op = parts
        header = request.getHeader(b"authorization")
        credential = credentialFor(
            self._server.tokens, header.decode("latin-1") if header is not None else None
        )
        if credential is None:
            return jsonReply(request, 401, errorBody("unauthorized", "invalid bearer token"))
        body = request.content.read(MAX_REQUEST_BYTES + 1) if request.content is not None else b""
        if len(body) > MAX_REQUEST_BYTES:
            return jsonReply(
                request,
                413,
                errorBody("body_too_large", f"request body over {MAX_REQUEST_BYTES} bytes"),
            )
        environments = self._server.environments
        registry = environments.registry
        base = websocketBase(request, self._server.publicUrl)

        def urls(role: str) -> Callable[[str, str], str]:
            return lambda ident, reg: environments.url(base, role, ident, reg)

        if op == "register":
            status, reply = registry.register(credential, environmentId, body, urls(ROLE_EXECUTOR))
        elif op == "connect" and (denial := self._reachDenial(header, credential, environmentId)):
            status, reply = denial.status, errorBody(denial.code, denial.message)
        elif op == "connect":
            status, reply = registry.connect(credential, environmentId, body, urls(ROLE_HARNESS))
        else:
            status, reply = registry.validate(credential, environmentId, body)
        log.info(
            "environment {ident!r}: {op} -> {status}{code}",
            ident=environmentId,
            op=op,
            status=status,
            code="" if status == 200 else f" {reply['error']['code']}",
        )
        return jsonReply(request, status, reply)

    def _reachDenial(
        self, header: bytes | None, credential: str, environmentId: str
    ) -> Denial | None:
        """The tenancy rule of ``tenancy.py`` for environments: a harness token connects to the
        environments its own token registered, or those its ``reach=`` scope names."""
        tokens = self._server.tokens
        env = self._server.environments.registry.environment(environmentId)
        if tokens is None or env is None or env.owner == credential:
            return None
        principal = tokens.principalFor(header)
        if principal is not None and matches(principal.reach, environmentId):
            return None
        return Denial(403, "forbidden", f"this token may not reach environment {environmentId!r}")


class CloudRoot(Resource):
    """``/cloud/``: ``environment/...`` here, everything else to the 0.131 registry resource."""

    def __init__(self, server: EnvironmentServer, legacy: Resource) -> None:
        super().__init__()
        self._environments = EnvironmentCloudResource(server)
        self._legacy = legacy

    def getChild(self, path: bytes, request: Request) -> Resource:
        if path == b"environment":
            return self._environments
        # The 0.131 resource reads the whole path after /cloud itself: give the segment back.
        if request.postpath is not None and request.prepath:
            request.postpath.insert(0, request.prepath.pop())
        return self._legacy

    def render(self, request: Request) -> bytes:
        return self._legacy.render(request)  # type: ignore[no-any-return]
