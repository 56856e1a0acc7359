"""A small JSON-RPC websocket client for tests and scripts (local websocket mode).

Usage (inside a running reactor)::

    client = await connectJsonRpc(reactor, "ws://127.0.0.1:PORT")
    await client.handshake()
    reply = await client.call("fs/getMetadata", {"path": "/"})
    note = await client.nextNotification()
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint

from twisted_exec.net.wsauth import authorizationHeader
from twisted_exec.wire.rpcclient import Reply, RpcClientCore


class _Queue:
    """An unbounded queue whose ``get`` returns a Deferred (no reactor needed)."""

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._waiters: deque[Deferred[Any]] = deque()

    def put(self, item: Any) -> None:
        if self._waiters:
            self._waiters.popleft().callback(item)
        else:
            self._items.append(item)

    def get(self) -> Deferred[Any]:
        if self._items:
            return Deferred.fromCoroutine(_value(self._items.popleft()))
        d: Deferred[Any] = Deferred()
        self._waiters.append(d)
        return d

    def pending(self) -> list[Any]:
        return list(self._items)


async def _value(item: Any) -> Any:
    return item


class JsonRpcClientProtocol(WebSocketClientProtocol):  # type: ignore[misc]
    def onOpen(self) -> None:
        self.factory.opened.callback(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.factory.client._received(payload)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.client._closed(code)
        if not self.factory.opened.called:
            self.factory.opened.errback(ConnectionError(f"websocket closed: {code} {reason}"))


class _ClientFactory(WebSocketClientFactory):  # type: ignore[misc]
    protocol = JsonRpcClientProtocol

    def __init__(
        self, url: str, reactor: Any, client: JsonRpcClient, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(url, reactor=reactor, headers=headers)
        self.client = client
        self.opened: Deferred[Any] = Deferred()


class JsonRpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class JsonRpcClient:
    """Sends requests, matches responses by id, queues notifications and every raw message."""

    def __init__(self) -> None:
        self.protocol: Any = None
        self._rpc: RpcClientCore[Deferred[Any]] = RpcClientCore()
        self.notifications = _Queue()
        self.messages: list[Any] = []
        self.closed: Deferred[int | None] = Deferred()

    def _received(self, payload: bytes) -> None:
        message = json.loads(payload)
        self.messages.append(message)
        received = self._rpc.received(message)
        if not isinstance(received, Reply):
            self.notifications.put(message)
        elif received.error is not None:
            error = received.error
            received.pending.errback(JsonRpcError(error["code"], error["message"]))
        else:
            received.pending.callback(message["result"])

    def _closed(self, code: int | None) -> None:
        for waiter in self._rpc.takeAll():
            waiter.errback(ConnectionError(f"websocket closed ({code})"))
        if not self.closed.called:
            self.closed.callback(code)

    @property
    def nextId(self) -> int:
        """The id the next :meth:`call` without an explicit id will use."""
        return self._rpc.nextId

    def sendRaw(self, payload: bytes | str) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        self.protocol.sendMessage(data, isBinary=False)

    def send(self, message: Any) -> None:
        self.sendRaw(json.dumps(message))

    def call(self, method: str, params: Any = None, *, id: Any = None) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.send(self._rpc.request(method, params, d, id=id))
        return d

    async def handshake(self, resumeSessionId: str | None = None) -> str:
        params: dict[str, Any] = {"clientName": "twisted-exec-test"}
        if resumeSessionId is not None:
            params["resumeSessionId"] = resumeSessionId
        result = await self.call("initialize", params)
        self.send({"method": "initialized"})
        return str(result["sessionId"])

    def nextNotification(self) -> Deferred[Any]:
        return self.notifications.get()

    def close(self) -> Deferred[int | None]:
        self.protocol.sendClose()
        return self.closed

    def abort(self) -> None:
        self.protocol.dropConnection(abort=True)


async def connectJsonRpc(
    reactor: Any, url: str, *, token: str | None = None, origin: str | None = None
) -> JsonRpcClient:
    """Open a websocket to ``url`` and return a connected :class:`JsonRpcClient`.

    ``token`` is sent as ``Authorization: Bearer`` (an executor started with ``--ws-auth``;
    :func:`twisted_exec.net.wsauth.clientBearer` finds one in a file or the environment).
    """
    parts = urlsplit(url)
    client = JsonRpcClient()
    headers = authorizationHeader(token)
    if origin is not None:
        headers["Origin"] = origin
    factory = _ClientFactory(url, reactor, client, headers)
    # No autobahn open-handshake timer: txaio's batched timers linger in the reactor (trial
    # would call it dirty); the endpoint's timeout bounds the connect instead.
    factory.setProtocolOptions(
        maxMessagePayloadSize=0,
        maxFramePayloadSize=0,
        openHandshakeTimeout=0,
        closeHandshakeTimeout=0,
    )
    endpoint = TCP4ClientEndpoint(reactor, parts.hostname or "", parts.port or 80, timeout=10)
    await endpoint.connect(factory)
    client.protocol = await factory.opened
    return client
