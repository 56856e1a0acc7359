"""The 0.171 dialect's ``http/request`` over a real loopback websocket against a local web
server: the redirect policy and headers filled from the executor's environment
(``valueEnvVar``), as the 0.171.0 binary answered."""

from __future__ import annotations

import base64
import json
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from tests.support.dialect import DialectCase, b64text


class _Web(Resource):
    """``/redir`` answers 302 to ``/echo``; ``/echo`` answers the request's headers as JSON."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        if request.path == b"/redir":
            request.setResponseCode(302)
            request.setHeader(b"location", b"/echo")
            return b"moo"
        headers = {
            k.decode().lower(): v[0].decode() for k, v in request.requestHeaders.getAllRawHeaders()
        }
        return json.dumps(headers, sort_keys=True).encode()


class DialectHttpTests(DialectCase):
    def test_httpRedirectPolicyAndHeaderEnvVars(self) -> Deferred[None]:
        tcp: Any = reactor
        port = tcp.listenTCP(0, Site(_Web()), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        base = f"http://127.0.0.1:{port.getHost().port}"

        async def go() -> None:
            client = await self.connect()

            async def getRedir(requestId: str, **policy: Any) -> Any:
                """``GET /redir`` (a 302 to ``/echo``) with ``redirectPolicy`` when given."""
                params = {"method": "GET", "url": f"{base}/redir", "requestId": requestId}
                return await self.ask(client, "http/request", {**params, **policy})

            stop = await getRedir("a", redirectPolicy="stop")
            self.assertEqual(
                (stop["result"]["status"], stop["result"]["bodyBase64"]), (302, b64text("moo"))
            )
            follow = await getRedir("b")
            self.assertEqual(follow["result"]["status"], 200)
            self.assertEqual(
                (await getRedir("c", redirectPolicy="bogus"))["error"],
                {"code": -32602, "message": "unknown variant `bogus`, expected `follow` or `stop`"},
            )
            self.assertEqual(
                (await getRedir("j", redirectPolicy=None))["error"],
                {"code": -32602, "message": "invalid type: null, expected string or map"},
            )
            echo = await self.ask(
                client,
                "http/request",
                {
                    "method": "GET",
                    "url": f"{base}/echo",
                    "requestId": "d",
                    "headers": [{"name": "x-a", "value": "Bearer ", "valueEnvVar": "E2E_SECRET"}],
                },
            )
            self.assertEqual(
                json.loads(base64.b64decode(echo["result"]["bodyBase64"]))["x-a"], "Bearer s3cret"
            )
            for var in ("NOPE_NOT_SET", ""):
                reply = await self.ask(
                    client,
                    "http/request",
                    {
                        "method": "GET",
                        "url": f"{base}/echo",
                        "requestId": "e",
                        "headers": [{"name": "x-a", "value": "", "valueEnvVar": var}],
                    },
                )
                self.assertEqual(
                    reply["error"],
                    {
                        "code": -32602,
                        "message": "http/request header x-a requires executor environment"
                        f" variable {var}",
                    },
                )

        return self.run_(go())
