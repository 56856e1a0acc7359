"""A tiny 0.171-style cloud for tests and benches: environment registry + routing rendezvous.

``POST /cloud/environment/{id}/register`` stores the executor's key and answers with
``ws://…/ws?role=environment``; ``/connect`` answers a harness with the executor's key, the
registration id and a fixed authorization and ``ws://…/ws?role=harness``; ``/validate``
accepts that authorization with a key some ``/connect`` announced (or ``harness``'s). The one
websocket path routes binary frames payload-blind by ``stream_id``: harness frames go to the
(last) environment websocket, environment frames to the harness that used the stream id;
environment frames for no harness land in that websocket's ``inbox`` (a test can play the
harness right there). Not the product rendezvous (``twistd codex-rendezvous``): a stand-in.
"""

from __future__ import annotations

import json
from typing import Any

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from twisted_exec.wire import noise, relay_pb2

AUTHORIZATION = "authorization-\u00e9-1"


class NoiseCloud:
    """Registry + one websocket; the executor's websocket is handed to ``executorConnected``."""

    def __init__(self, reactor: Any) -> None:
        self.harness = noise.NoiseIdentity.generate()
        self.executorKey: noise.NoisePublicKey | None = None
        self.registrations: list[tuple[dict[str, str], bytes]] = []
        self.validations: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.executorConnected: Deferred[Any] = Deferred()
        self.connects: list[dict[str, Any]] = []
        self.harnessKeys: list[noise.NoisePublicKey] = []
        self.environmentWs: Any = None
        self.routes: dict[str, Any] = {}
        #: Refuse this many environment websocket upgrades with 403 (0.171 registers again).
        self.refuseEnvironmentUpgrades = 0
        self.environmentConnections = 0
        self._connectionWaiters: list[tuple[int, Deferred[None]]] = []
        cloud = self

        class Ops(Resource):
            isLeaf = True

            def render_POST(self, request: Request) -> bytes:
                assert request.content is not None
                body = request.content.read()
                headers = {
                    k.decode().lower(): v[0].decode()
                    for k, v in request.requestHeaders.getAllRawHeaders()
                }
                request.setHeader(b"content-type", b"application/json")
                parts = request.path.decode().strip("/").split("/")
                if parts[-1] == "connect":
                    data = json.loads(body)
                    cloud.connects.append(data)
                    assert cloud.executorKey is not None
                    cloud.harnessKeys.append(
                        noise.NoisePublicKey.fromJson(data["harness_public_key"])
                    )
                    return json.dumps(
                        {
                            "environment_id": parts[2],
                            "url": f"ws://127.0.0.1:{cloud.port}/ws?role=harness",
                            "security_profile": "noise_hybrid_ik_v1",
                            "executor_registration_id": "reg-1",
                            "executor_public_key": cloud.executorKey.toJson(),
                            "harness_key_authorization": AUTHORIZATION,
                        }
                    ).encode()
                if parts[-1] == "register":
                    cloud.registrations.append((headers, body))
                    data = json.loads(body)
                    cloud.executorKey = noise.NoisePublicKey.fromJson(data["executor_public_key"])
                    return json.dumps(
                        {
                            "environment_id": parts[2],
                            "url": f"ws://127.0.0.1:{cloud.port}/ws?role=environment",
                            "security_profile": "noise_hybrid_ik_v1",
                            "executor_registration_id": "reg-1",
                        }
                    ).encode()
                data = json.loads(body)
                cloud.validations.append((headers, data))
                valid = data.get("harness_key_authorization") == AUTHORIZATION and (
                    noise.NoisePublicKey.fromJson(data["harness_public_key"])
                    in [cloud.harness.publicKey, *cloud.harnessKeys]
                )
                return json.dumps({"valid": valid}).encode()

        class Env(WebSocketServerProtocol):  # type: ignore[misc]
            """role=environment: the executor (or, unrouted, the test's inbox); role=harness:
            a payload-blind route by stream id to the environment websocket."""

            def onConnect(self, request: Any) -> None:
                self.role = request.params.get("role", ["environment"])[0]
                if self.role == "environment" and cloud.refuseEnvironmentUpgrades:
                    cloud.refuseEnvironmentUpgrades -= 1
                    raise ConnectionDeny(403, "registration expired")

            def onOpen(self) -> None:
                self.inbox: list[bytes] = []
                self.waiter: Deferred[None] | None = None
                if self.role == "environment":
                    cloud.environmentConnections += 1
                    cloud.environmentWs = self
                    cloud._notifyConnections()
                    if not cloud.executorConnected.called:
                        cloud.executorConnected.callback(self)

            def onMessage(self, payload: bytes, isBinary: bool) -> None:
                frame = relay_pb2.RelayMessageFrame()
                frame.ParseFromString(payload)
                if self.role == "harness":
                    cloud.routes[frame.stream_id] = self
                    cloud.environmentWs.sendMessage(payload, isBinary=True)
                    return
                harness = cloud.routes.get(frame.stream_id)
                if harness is not None:
                    harness.sendMessage(payload, isBinary=True)
                    return
                self.inbox.append(payload)
                if self.waiter is not None:
                    waiter, self.waiter = self.waiter, None
                    waiter.callback(None)

        self.envProtocol = Env
        root = Resource()
        cloudRes = Resource()
        root.putChild(b"cloud", cloudRes)
        environment = Resource()
        environment.getChild = lambda name, request: Ops()  # type: ignore[method-assign]
        cloudRes.putChild(b"environment", environment)
        factory = WebSocketServerFactory()
        factory.protocol = Env
        factory.setProtocolOptions(maxMessagePayloadSize=256 * 1024)
        root.putChild(b"ws", WebSocketResource(factory))
        site: Any = Site(root)
        site.noisy = False
        self.listening = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.port: int = self.listening.getHost().port  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.port}"

    def waitForEnvironmentConnections(self, count: int) -> Deferred[None]:
        """Fires once ``count`` environment websockets have opened in all."""
        d: Deferred[None] = Deferred()
        self._connectionWaiters.append((count, d))
        self._notifyConnections()
        return d

    def _notifyConnections(self) -> None:
        ready = [w for w in self._connectionWaiters if w[0] <= self.environmentConnections]
        self._connectionWaiters = [w for w in self._connectionWaiters if w not in ready]
        for _, d in ready:
            d.callback(None)
