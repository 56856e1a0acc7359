"""The harness as a Noise initiator against an environment (Codex 0.171's encrypted remote mode).

Usage, inside a running reactor::

    connection = await connectEnvironment(reactor, "http://127.0.0.1:8765", "env-1", token)
    session = await connection.openSession()          # initialize + initialized, over Noise
    process = await session.spawn(["uname", "-a"], "/")

As 0.171's harness does: ``POST {registry}/cloud/environment/{id}/connect`` with
``{"harness_public_key": KEY}`` and the bearer returns ``{environment_id, url,
security_profile, executor_registration_id, executor_public_key, harness_key_authorization}``
(refused unless the environment and profile match and url, registration id and authorization
are non-empty); the harness opens that websocket, claims a new UUIDv4 stream with ``resume``,
sends ``handshake{msg1}`` (the single-use authorization inside) and pins the executor key from
the bundle. One connect bundle serves one websocket and one stream; reconnecting means
connecting again. The rendezvous sees only ciphertext.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from treq.client import HTTPClient
from twisted.internet.defer import Deferred, TimeoutError
from twisted.logger import Logger
from twisted.web.client import Agent, HTTPConnectionPool

from twisted_exec.harness.cloud_http import checkBearerAccepted, exchange, httpBase
from twisted_exec.harness.connection import HarnessConnection, _HarnessFactory
from twisted_exec.harness.errors import (
    HarnessError,
    RendezvousUnreachableError,
    StreamError,
)
from twisted_exec.harness.noise_stream import ConnectBundle, NoiseHarnessStream, NoiseStreamError
from twisted_exec.harness.session import ExecSession
from twisted_exec.net.httpbody import parseErrorBody
from twisted_exec.net.wsendpoints import WebsocketEndpoints
from twisted_exec.wire import noise
from twisted_exec.wire.frames import Data, Reset, decodeFrame

log = Logger()

CONNECT_TIMEOUT = 10.0
MAX_CONNECT_BYTES = 64 * 1024


def parseConnectBundle(body: bytes, environmentId: str) -> ConnectBundle:
    """The ``/connect`` answer, with 0.171's checks; :class:`HarnessError` otherwise."""
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        fields = ("environment_id", "url", "security_profile", "executor_registration_id")
        values = {k: data[k] for k in (*fields, "harness_key_authorization")}
        if not all(isinstance(v, str) for v in values.values()):
            raise ValueError("non-string field")
        key = noise.NoisePublicKey.fromJson(data["executor_public_key"])
    except (ValueError, KeyError, noise.NoiseKeyError) as e:
        raise HarnessError(
            f"environment registry sent an unreadable connect response: {e}"
        ) from None
    if values["environment_id"] != environmentId:
        raise HarnessError("environment registry returned a different environment id")
    if values["security_profile"] != noise.SECURITY_PROFILE:
        raise HarnessError("environment registry returned an unsupported security profile")
    if not all(
        values[k].strip() for k in ("url", "executor_registration_id", "harness_key_authorization")
    ):
        raise HarnessError("environment registry returned incomplete Noise connection data")
    return ConnectBundle(
        environmentId=values["environment_id"],
        url=values["url"],
        executorRegistrationId=values["executor_registration_id"],
        executorPublicKey=key,
        harnessKeyAuthorization=values["harness_key_authorization"],
    )


async def fetchConnectBundle(
    reactor: Any,
    registryUrl: str,
    environmentId: str,
    token: str | None,
    harnessKey: noise.NoisePublicKey,
    *,
    http: Any = None,
    timeout: float = CONNECT_TIMEOUT,
) -> ConnectBundle:
    base = httpBase(registryUrl)
    if http is None:
        http = HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps({"harness_public_key": harnessKey.toJson()}, separators=(",", ":"))
    url = f"{base}/cloud/environment/{quote(environmentId, safe='')}/connect"

    def unreachable(e: Exception) -> str:
        inner = getattr(e, "reasons", None)
        detail = str(inner[0].value) if inner else (str(e) or type(e).__name__)
        return f"cannot reach the environment registry at {base}: {detail}"

    response, raw = await exchange(
        reactor,
        lambda: http.post(url, data=body.encode(), headers=headers),
        MAX_CONNECT_BYTES,
        timeout,
        unreachable,
    )
    checkBearerAccepted(response, raw, f"the environment registry at {base}")
    if not 200 <= response.code < 300:
        code, message = parseErrorBody(raw)
        raise HarnessError(
            f"the environment registry at {base} answered {response.code} to connect"
            + (f" ({code})" if code else "")
            + (f": {message}" if message else "")
        )
    return parseConnectBundle(raw, environmentId)


class EnvironmentConnection(HarnessConnection):
    """One websocket carrying one Noise stream to an environment's executor."""

    def __init__(
        self, reactor: Any, registryUrl: str, bundle: ConnectBundle, identity: noise.NoiseIdentity
    ) -> None:
        super().__init__(reactor, registryUrl, bundle.environmentId)
        self.bundle = bundle
        self.noise = NoiseHarnessStream(identity, bundle)
        self.established: Deferred[None] = Deferred()
        self._session: ExecSession | None = None
        self._inboundSeq = 0

    def __repr__(self) -> str:
        return f"<EnvironmentConnection {self.executorId!r} via {self.rendezvousUrl}>"

    def startHandshake(self) -> None:
        for raw in self.noise.openingFrames():
            HarnessConnection._send(self, raw)

    def newSession(self, streamId: str | None = None) -> ExecSession:
        """The connection's one session (bound to its Noise stream)."""
        if self.lost:
            raise StreamError("harness connection closed")
        if self._session is not None:
            raise StreamError("an environment connection carries one session; connect again")
        session = ExecSession(self.noise.streamId, self._sendClear, self._sessionEnded)
        session.fileUris = True  # an environment is a 0.171 executor: paths as file: URIs
        self.sessions[session.streamId] = session
        self._session = session
        return session

    def _sendClear(self, raw: bytes) -> None:
        """Frames the session writes in clear: encrypt data, pass resets, drop resumes."""
        event = decodeFrame(raw)
        if isinstance(event, Data):
            try:
                frames = self.noise.encodeMessage(event.payload)
            except NoiseStreamError as e:
                self._fail(str(e))
                return
            for frame in frames:
                HarnessConnection._send(self, frame)
        elif isinstance(event, Reset):
            HarnessConnection._send(self, raw)

    def _frameReceived(self, raw: bytes) -> None:
        try:
            messages = self.noise.frameReceived(raw)
        except NoiseStreamError as e:
            self._fail(str(e))
            return
        if self.noise.established and not self.established.called:
            self.established.callback(None)
        session = self._session
        for message in messages:
            if session is None:
                log.warn("Noise message before any session dropped")
                continue
            seq, self._inboundSeq = self._inboundSeq, self._inboundSeq + 1
            session.frameReceived(Data(self.noise.streamId, seq, message))

    def _fail(self, reason: str) -> None:
        if not self.established.called:
            self.established.errback(StreamError(reason))
        if self._session is not None:
            self._session.connectionLost(reason)
        self.abort()

    def _closed(self, code: int | None, reason: str | None, notClean: str | None) -> None:
        if self._protocol is not None and not self.established.called:
            self.established.errback(StreamError("websocket closed during the Noise handshake"))
        super()._closed(code, reason, notClean)

    async def _openSession(
        self, clientName: str, resumeSessionId: str | None, waitForExecutor: float
    ) -> ExecSession:
        # One Noise stream to the one environment: nothing to wait for and retry.
        session = self.newSession()
        await session.initialize(clientName, resumeSessionId)
        return session


def connectEnvironment(
    reactor: Any,
    registryUrl: str,
    environmentId: str,
    token: str | None,
    *,
    identity: noise.NoiseIdentity | None = None,
    timeout: float = CONNECT_TIMEOUT,
    http: Any = None,
) -> Deferred[EnvironmentConnection]:
    """Connect, open the websocket and finish the Noise handshake (one stream)."""
    return Deferred.fromCoroutine(
        _connectEnvironment(reactor, registryUrl, environmentId, token, identity, timeout, http)
    )


async def _connectEnvironment(
    reactor: Any,
    registryUrl: str,
    environmentId: str,
    token: str | None,
    identity: noise.NoiseIdentity | None,
    timeout: float,
    http: Any,
) -> EnvironmentConnection:
    identity = identity if identity is not None else noise.NoiseIdentity.generate()
    bundle = await fetchConnectBundle(
        reactor, registryUrl, environmentId, token, identity.publicKey, http=http, timeout=timeout
    )
    connection = EnvironmentConnection(reactor, registryUrl.rstrip("/"), bundle, identity)
    factory = _HarnessFactory(connection, bundle.url, {})
    factory.setProtocolOptions(maxMessagePayloadSize=256 * 1024, maxFramePayloadSize=256 * 1024)
    try:
        endpoint = WebsocketEndpoints(reactor, connectTimeout=timeout)(bundle.url)
        protocol: Any = await endpoint.connect(factory).addTimeout(timeout, reactor)
    except Exception as e:
        raise RendezvousUnreachableError(
            f"cannot reach the rendezvous for environment {environmentId!r}: "
            f"{str(e) or type(e).__name__}"
        ) from None
    try:
        await connection._openWaiter.addTimeout(timeout, reactor)
        connection.startHandshake()
        await connection.established.addTimeout(timeout, reactor)
    except TimeoutError:
        protocol.dropConnection(abort=True)
        raise RendezvousUnreachableError(
            f"the Noise handshake with environment {environmentId!r} did not complete within "
            f"{timeout:g} s"
        ) from None
    return connection
