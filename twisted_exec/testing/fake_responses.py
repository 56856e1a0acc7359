"""A fake OpenAI Responses API on twisted.web, for driving the real Codex CLI offline.

The Codex CLI talks to a model provider with ``POST {base_url}/responses`` and reads the answer as
server-sent events.  This fake answers each request with the next scripted *turn* (a list of
output items: tool calls or an assistant message) and records every request body, so a test can
look at what the CLI sent back (e.g. the ``function_call_output`` of the command it ran).

Point the CLI at it with :func:`codexConfigToml` written to ``$CODEX_HOME/config.toml``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IListeningPort, IReactorTCP
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

log = Logger()

JsonObject = dict[str, Any]
#: A scripted turn: the output items of one response, or a function of the request body that
#: returns them (for answers that depend on what the CLI sent).
Turn = Sequence[JsonObject] | Callable[[JsonObject], Sequence[JsonObject]]

API_KEY_ENV = "FAKE_RESPONSES_API_KEY"
PROVIDER_ID = "fake"


def functionCall(callId: str, name: str, arguments: Mapping[str, Any]) -> JsonObject:
    """A ``function_call`` output item (how ``exec_command`` is called)."""
    return {
        "type": "function_call",
        "id": f"fc_{callId}",
        "call_id": callId,
        "name": name,
        "arguments": json.dumps(dict(arguments)),
        "status": "completed",
    }


def customToolCall(callId: str, name: str, input: str) -> JsonObject:
    """A ``custom_tool_call`` output item (freeform tools such as ``apply_patch``)."""
    return {
        "type": "custom_tool_call",
        "id": f"ctc_{callId}",
        "call_id": callId,
        "name": name,
        "input": input,
        "status": "completed",
    }


def assistantMessage(text: str) -> JsonObject:
    """A final assistant ``message`` output item."""
    return {
        "type": "message",
        "id": "msg_fake",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


_ZERO_USAGE: JsonObject = {
    "input_tokens": 0,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 0,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 0,
}


def sseEvent(eventType: str, data: Mapping[str, Any]) -> bytes:
    """One server-sent event: ``event:`` and ``data:`` lines and a blank line."""
    payload = json.dumps({"type": eventType, **data}, separators=(",", ":"))
    return f"event: {eventType}\ndata: {payload}\n\n".encode()


def responseEvents(responseId: str, items: Iterable[Mapping[str, Any]]) -> bytes:
    """The whole event stream of one response: created, one ``output_item.done`` per item,
    completed."""
    body = sseEvent("response.created", {"response": {"id": responseId}})
    for index, item in enumerate(items):
        body += sseEvent("response.output_item.done", {"output_index": index, "item": dict(item)})
    body += sseEvent(
        "response.completed", {"response": {"id": responseId, "usage": dict(_ZERO_USAGE)}}
    )
    return body


def codexConfigToml(baseUrl: str, model: str) -> str:
    """A ``config.toml`` that sends every model request to ``baseUrl`` with no retries, and runs
    tools without approvals or sandbox (the executor is the boundary in these tests)."""
    return (
        f'model = "{model}"\n'
        f'model_provider = "{PROVIDER_ID}"\n'
        'approval_policy = "never"\n'
        'sandbox_mode = "danger-full-access"\n'
        "\n"
        f"[model_providers.{PROVIDER_ID}]\n"
        'name = "Fake Responses API"\n'
        f'base_url = "{baseUrl}"\n'
        f'env_key = "{API_KEY_ENV}"\n'
        'wire_api = "responses"\n'
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n"
    )


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: JsonObject | None


class FakeResponsesAPI:
    """Answers ``POST /v1/responses`` with the scripted turns, in order.

    When the script runs out it answers with an assistant message saying so, which ends the CLI's
    turn rather than leaving it waiting.  Anything else gets a 404 and is recorded in
    :attr:`unexpected`.
    """

    def __init__(self, turns: Iterable[Turn] = ()) -> None:
        self.turns: list[Turn] = list(turns)
        self.requests: list[RecordedRequest] = []
        self.unexpected: list[RecordedRequest] = []
        self._served = 0
        self._port: IListeningPort | None = None
        self._connections: set[object] = set()
        self._idleWaiters: list[Deferred[None]] = []

    def addTurn(self, turn: Turn) -> None:
        self.turns.append(turn)

    @property
    def responseBodies(self) -> list[JsonObject]:
        """The JSON bodies of the ``/v1/responses`` requests, in arrival order."""
        return [r.body for r in self.requests if r.body is not None]

    def site(self) -> Site:
        return _TrackingSite(self, _Root(self))

    def listen(self, reactor: IReactorTCP, interface: str = "127.0.0.1") -> IListeningPort:
        self._port = reactor.listenTCP(0, self.site(), interface=interface)  # type: ignore[arg-type]
        return self._port

    @property
    def baseUrl(self) -> str:
        """``http://127.0.0.1:PORT/v1``, the provider's ``base_url``."""
        assert self._port is not None, "call listen() first"
        address = self._port.getHost()
        return f"http://{address.host}:{address.port}/v1"  # type: ignore[attr-defined]

    def stopListening(self) -> Deferred[None]:
        """Stop listening, then wait until every client connection has gone."""
        port, self._port = self._port, None
        stopped: Deferred[Any] = (
            succeed(None) if port is None else maybeDeferred(port.stopListening)
        )
        return stopped.addCallback(lambda _: self._whenIdle())

    def _whenIdle(self) -> Deferred[None]:
        if not self._connections:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._idleWaiters.append(d)
        return d

    def _connectionMade(self, channel: object) -> None:
        self._connections.add(channel)

    def _connectionLost(self, channel: object) -> None:
        self._connections.discard(channel)
        if not self._connections:
            waiters, self._idleWaiters = self._idleWaiters, []
            for d in waiters:
                d.callback(None)

    def nextItems(self, body: JsonObject) -> Sequence[JsonObject]:
        """The output items answering ``body``: the next scripted turn."""
        if self._served >= len(self.turns):
            return [assistantMessage("fake responses API: script exhausted")]
        turn = self.turns[self._served]
        self._served += 1
        return turn(body) if callable(turn) else turn


class _TrackingSite(Site):
    """A ``Site`` that tells the API when connections come and go (so a test can wait for the
    CLI's keep-alive connections to close before the reactor is checked for leftovers)."""

    def __init__(self, api: FakeResponsesAPI, root: Resource) -> None:
        super().__init__(root)  # type: ignore[no-untyped-call]
        self.displayTracebacks = False
        self._api = api

    def buildProtocol(self, addr: Any) -> Any:
        channel = super().buildProtocol(addr)
        api = self._api
        lost = channel.connectionLost

        def connectionLost(reason: Any) -> None:
            api._connectionLost(channel)
            lost(reason)

        channel.connectionLost = connectionLost
        api._connectionMade(channel)
        return channel


def _setHeader(request: Request, name: bytes, value: bytes) -> None:
    request.responseHeaders.setRawHeaders(name, [value])


def _record(request: Request) -> RecordedRequest:
    headers = {
        k.decode("latin-1").lower(): v[0].decode("latin-1")
        for k, v in request.requestHeaders.getAllRawHeaders()
        # Never keep credentials in a recording.
        if k.lower() != b"authorization"
    }
    raw = request.content.read() if request.content is not None else b""
    body: JsonObject | None = None
    if raw:
        try:
            decoded = json.loads(raw)
        except ValueError:
            log.warn("fake responses API: request body is not JSON ({n} bytes)", n=len(raw))
        else:
            body = decoded if isinstance(decoded, dict) else None
    return RecordedRequest(
        method=request.method.decode("latin-1"),
        path=request.uri.decode("latin-1"),
        headers=headers,
        body=body,
    )


class _Root(Resource):
    """The whole API surface: ``POST /v1/responses``; everything else is a recorded 404."""

    isLeaf = True

    def __init__(self, api: FakeResponsesAPI) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._api = api

    def render(self, request: Request) -> bytes:
        recorded = _record(request)
        if request.method != b"POST" or request.path != b"/v1/responses":
            self._api.unexpected.append(recorded)
            log.info(
                "fake responses API: unexpected {method} {path}",
                method=recorded.method,
                path=recorded.path,
            )
            request.setResponseCode(404)
            _setHeader(request, b"content-type", b"application/json")
            return b'{"error":{"message":"not found","type":"invalid_request_error"}}'
        self._api.requests.append(recorded)
        if recorded.body is None:
            request.setResponseCode(400)
            _setHeader(request, b"content-type", b"application/json")
            return b'{"error":{"message":"expected a JSON body","type":"invalid_request_error"}}'
        items = self._api.nextItems(recorded.body)
        _setHeader(request, b"content-type", b"text/event-stream")
        _setHeader(request, b"cache-control", b"no-cache")
        return responseEvents(f"resp_{len(self._api.requests)}", items)
