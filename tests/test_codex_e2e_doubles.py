"""The Codex CLI end-to-end tests' doubles over real loopback, without a Codex binary: the fake
Responses API (scripted turns as server-sent events, other paths recorded) and the recording
websocket proxy."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ServerFactory
from twisted.trial import unittest

from twisted_exec.testing.fake_responses import (
    API_KEY_ENV,
    FakeResponsesAPI,
    JsonObject,
    assistantMessage,
    codexConfigToml,
    functionCall,
)
from twisted_exec.testing.ws_recorder import WebSocketRecorder


def _sseEvents(body: bytes) -> list[tuple[str, JsonObject]]:
    events = []
    for block in body.decode().split("\n\n"):
        if not block:
            continue
        eventLine, dataLine = block.split("\n")
        events.append((eventLine.removeprefix("event: "), json.loads(dataLine[len("data: ") :])))
    return events


class FakeResponsesAPITests(unittest.TestCase):
    """The fake model over real loopback HTTP."""

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor

    async def _post(self, api: FakeResponsesAPI, path: str, body: bytes) -> tuple[int, bytes]:
        import treq

        headers: dict[bytes | str, bytes | str] = {
            "Authorization": "Bearer sk-secret",
            "Content-Type": "application/json",
        }
        response = await treq.post(
            api.baseUrl.removesuffix("/v1") + path,
            data=body,
            headers=headers,
            reactor=self.reactor,
            persistent=False,
        ).addTimeout(10, self.reactor)
        content = await treq.content(response).addTimeout(10, self.reactor)
        return response.code, content

    def test_scriptedTurnsAsServerSentEvents(self) -> Deferred[None]:
        async def run() -> None:
            seen: list[JsonObject] = []

            def second(body: JsonObject) -> Sequence[JsonObject]:
                seen.append(body)
                return [assistantMessage("bye")]

            api = FakeResponsesAPI([[functionCall("c1", "exec_command", {"cmd": "true"})], second])
            api.listen(self.reactor)
            self.addCleanup(api.stopListening)
            code, first = await self._post(api, "/v1/responses", b'{"n": 1}')
            self.assertEqual(code, 200)
            self.assertEqual(
                _sseEvents(first),
                [
                    (
                        "response.created",
                        {"type": "response.created", "response": {"id": "resp_1"}},
                    ),
                    (
                        "response.output_item.done",
                        {
                            "type": "response.output_item.done",
                            "output_index": 0,
                            "item": {
                                "type": "function_call",
                                "id": "fc_c1",
                                "call_id": "c1",
                                "name": "exec_command",
                                "arguments": '{"cmd": "true"}',
                                "status": "completed",
                            },
                        },
                    ),
                    (
                        "response.completed",
                        {
                            "type": "response.completed",
                            "response": {
                                "id": "resp_1",
                                "usage": {
                                    "input_tokens": 0,
                                    "input_tokens_details": {"cached_tokens": 0},
                                    "output_tokens": 0,
                                    "output_tokens_details": {"reasoning_tokens": 0},
                                    "total_tokens": 0,
                                },
                            },
                        },
                    ),
                ],
            )
            _, second_ = await self._post(api, "/v1/responses", b'{"n": 2}')
            self.assertEqual(seen, [{"n": 2}])
            self.assertEqual(_sseEvents(second_)[1][1]["item"], assistantMessage("bye"))
            _, third = await self._post(api, "/v1/responses", b'{"n": 3}')
            self.assertIn("script exhausted", json.dumps(_sseEvents(third)[1][1]["item"]))
            self.assertEqual(api.responseBodies, [{"n": 1}, {"n": 2}, {"n": 3}])
            # Credentials are never recorded.
            self.assertNotIn("authorization", api.requests[0].headers)
            self.assertEqual(api.unexpected, [])

        return defer.ensureDeferred(run())

    def test_otherPathsAreRecorded404s(self) -> Deferred[None]:
        async def run() -> None:
            api = FakeResponsesAPI()
            api.listen(self.reactor)
            self.addCleanup(api.stopListening)
            code, _ = await self._post(api, "/v1/models", b"{}")
            self.assertEqual(code, 404)
            code, _ = await self._post(api, "/v1/responses", b"not json")
            self.assertEqual(code, 400)
            self.assertEqual([(r.method, r.path) for r in api.unexpected], [("POST", "/v1/models")])

        return defer.ensureDeferred(run())

    def test_configToml(self) -> None:
        toml = codexConfigToml("http://127.0.0.1:1/v1", "gpt-5.2-codex")
        self.assertIn('base_url = "http://127.0.0.1:1/v1"\n', toml)
        self.assertIn(f'env_key = "{API_KEY_ENV}"\n', toml)
        self.assertIn('model = "gpt-5.2-codex"\n', toml)
        self.assertIn("request_max_retries = 0\n", toml)


class WebSocketRecorderTests(unittest.TestCase):
    """The recording proxy between a websocket client and an echo server, over loopback."""

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor

    def _echoServer(self) -> str:
        from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol

        class Echo(WebSocketServerProtocol):  # type: ignore[misc]
            def onMessage(self, payload: bytes, isBinary: bool) -> None:
                request = json.loads(payload)
                self.sendMessage(json.dumps({"method": "note", "params": {}}).encode())
                self.sendMessage(json.dumps({"id": request["id"], "result": request}).encode())

        factory = WebSocketServerFactory(reactor=self.reactor)
        factory.setProtocolOptions(openHandshakeTimeout=0, closeHandshakeTimeout=0)
        factory.protocol = Echo
        port: Any = self.reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return f"ws://127.0.0.1:{port.getHost().port}"

    def test_forwardsAndRecordsBothDirections(self) -> Deferred[None]:
        from twisted_exec.testing.wsclient import connectJsonRpc

        async def run() -> None:
            recorder = WebSocketRecorder(self.reactor, self._echoServer())
            recorder.listen()
            self.addCleanup(recorder.stop)
            client = await connectJsonRpc(self.reactor, recorder.url)
            result = await client.call("x/y", {"a": 1}).addTimeout(10, self.reactor)
            self.assertEqual(result, {"id": 1, "method": "x/y", "params": {"a": 1}})
            await recorder.stop().addTimeout(10, self.reactor)
            await client.closed.addTimeout(10, self.reactor)
            self.assertEqual(
                [(e.connection, e.direction, e.kind, e.payload) for e in recorder.events][:4],
                [
                    (1, "c2s", "open", b""),
                    (1, "c2s", "text", b'{"id": 1, "method": "x/y", "params": {"a": 1}}'),
                    (1, "s2c", "text", b'{"method": "note", "params": {}}'),
                    (
                        1,
                        "s2c",
                        "text",
                        b'{"id": 1, "result": {"id": 1, "method": "x/y", "params": {"a": 1}}}',
                    ),
                ],
            )
            self.assertEqual({e.kind for e in recorder.events[4:]}, {"close"})

        return defer.ensureDeferred(run())

    def test_unreachableUpstreamClosesTheClient(self) -> Deferred[None]:
        from twisted_exec.testing.wsclient import connectJsonRpc

        async def run() -> None:
            port: Any = self.reactor.listenTCP(0, ServerFactory(), interface="127.0.0.1")
            url = f"ws://127.0.0.1:{port.getHost().port}"
            await port.stopListening()
            recorder = WebSocketRecorder(self.reactor, url)
            recorder.listen()
            self.addCleanup(recorder.stop)
            client = await connectJsonRpc(self.reactor, recorder.url)
            await client.closed.addTimeout(10, self.reactor)
            self.assertEqual(
                next(
                    (e.direction, e.kind, e.payload) for e in recorder.events if e.kind == "close"
                ),
                ("s2c", "close", b"connect-failed"),
            )

        return defer.ensureDeferred(run())
