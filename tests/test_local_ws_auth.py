"""The local websocket's Origin, Host and bearer checks over real loopback sockets.

Each answer is the Codex 0.171 binary's (``scripts/ws_auth_side_by_side.py`` compares them live);
the Host check and the refusal to listen beyond loopback without auth are ours alone.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.trial.unittest import TestCase

from tests.support.local import serveOnLoopback
from twisted_exec.executor.options import ExecutorOptions, makeService
from twisted_exec.executor.service import ExecutorService, LocalWebSocketService
from twisted_exec.net.wsauth_config import CapabilityToken, SignedBearerToken
from twisted_exec.net.wsauth_jwt import mintSignedBearer
from twisted_exec.testing.rawhttp import Response, rawExchange, upgradeRequest
from twisted_exec.testing.wsclient import connectJsonRpc

TOKEN = "tok-LOCALWS-capability-0123"
SECRET = b"s" * 40


class _Listener:
    def __init__(self, case: TestCase, auth: Any = None, listen: str = "ws://127.0.0.1:0") -> None:
        self.top, self.local = serveOnLoopback(case, listen=listen, auth=auth)
        assert self.local.url is not None
        self.url = self.local.url
        self.host, port = self.url[len("ws://") :].rsplit(":", 1)
        self.port = int(port)

    def send(self, data: bytes) -> Deferred[Response]:
        return Deferred.fromCoroutine(rawExchange(reactor, self.host, self.port, data, timeout=10))

    def upgrade(self, *headers: tuple[str, str], path: str = "/") -> Deferred[Response]:
        return self.send(upgradeRequest(self.host, self.port, headers, path))


class OriginAndHostTests(TestCase):
    timeout = 30

    async def test_originRefusedOnEveryPath(self) -> None:
        listener = _Listener(self)
        for origin in ("https://evil.example", "http://localhost", "vscode-webview://x", "null"):
            response = await listener.upgrade(("Origin", origin))
            self.assertEqual((response.status, response.body), (403, b""), origin)
        for path in ("/readyz", "/other"):
            raw = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://a\r\n\r\n".encode()
            self.assertEqual((await listener.send(raw)).status, 403, path)
        self.assertEqual((await listener.upgrade()).status, 101)
        ready = await listener.send(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        self.assertEqual(ready.status, 200)

    async def test_foreignHostRefused(self) -> None:
        """DNS rebinding: a name that resolves to us but is not loopback or our address."""
        listener = _Listener(self)
        request = upgradeRequest(listener.host, listener.port).replace(
            f"Host: {listener.host}:{listener.port}".encode(), b"Host: attacker.example:80"
        )
        response = await listener.send(request)
        self.assertEqual(response.status, 403)
        self.assertEqual(response.body, b"Forbidden: Host header is not allowed")
        tunnel = upgradeRequest(listener.host, listener.port).replace(
            f"Host: {listener.host}:{listener.port}".encode(), b"Host: localhost:9000"
        )
        self.assertEqual((await listener.send(tunnel)).status, 101)

    def test_beyondLoopbackWithoutAuthIsRefused(self) -> None:
        top = ExecutorService(reactor)
        with self.assertRaises(ValueError) as caught:
            LocalWebSocketService(reactor, top.executor.processorFactory, "ws://0.0.0.0:0")
        self.assertIn("--insecure-no-auth", str(caught.exception))
        options = ExecutorOptions()
        options.parseOptions(["--listen", "ws://0.0.0.0:0"])
        with self.assertRaises(SystemExit) as exited:
            makeService(options, reactor)
        self.assertIn("refusing to listen on 0.0.0.0 without websocket auth", str(exited.exception))
        options = ExecutorOptions()
        options.parseOptions(["--listen", "ws://0.0.0.0:0", "--insecure-no-auth"])
        self.assertIsNotNone(makeService(options, reactor))


class CapabilityTokenTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.listener = _Listener(self, CapabilityToken(hashlib.sha256(TOKEN.encode()).digest()))

    async def test_answers(self) -> None:
        up = self.listener.upgrade
        cases: list[tuple[tuple[tuple[str, str], ...], int, bytes]] = [
            ((), 401, b"missing websocket bearer token"),
            ((("Authorization", "Bearer nope"),), 401, b"invalid websocket bearer token"),
            ((("Authorization", "Basic abc"),), 401, b"invalid authorization header"),
            ((("Authorization", f"Bearer {TOKEN}"),), 101, b""),
            ((("Authorization", f"bearer {TOKEN}"),), 101, b""),
            ((("Authorization", f"Bearer {TOKEN}"), ("Origin", "http://x")), 403, b""),
        ]
        for headers, status, body in cases:
            response = await up(*headers)
            self.assertEqual((response.status, response.body), (status, body), headers)
            if status == 401:
                self.assertEqual(response.headers["content-type"], "text/plain; charset=utf-8")
        ready = await self.listener.send(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        self.assertEqual(ready.status, 200)  # health checks need no token, as in 0.171

    async def test_aClientWithTheTokenRunsCommands(self) -> None:
        client = await connectJsonRpc(reactor, self.listener.url, token=TOKEN)
        self.addCleanup(lambda: client.abort() if not client.closed.called else None)
        await client.handshake()
        reply = await client.call("fs/getMetadata", {"path": "/"})
        self.assertTrue(reply["isDirectory"])


class SignedBearerTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        mode = SignedBearerToken(SECRET, issuer="me", audience="exec", maxClockSkewSeconds=30)
        self.listener = _Listener(self, mode)

    async def verdict(self, claims: dict[str, Any], secret: bytes = SECRET) -> tuple[int, bytes]:
        token = mintSignedBearer(secret, claims)
        response = await self.listener.upgrade(("Authorization", f"Bearer {token}"))
        return response.status, response.body

    async def test_claims(self) -> None:
        now = int(time.time())
        good = {"exp": now + 60, "iss": "me", "aud": "exec"}
        cases: list[tuple[dict[str, Any], tuple[int, bytes]]] = [
            (good, (101, b"")),
            ({**good, "exp": now - 10}, (101, b"")),  # within the skew
            ({**good, "exp": now - 120}, (401, b"expired websocket jwt")),
            ({**good, "nbf": now + 120}, (401, b"websocket jwt is not valid yet")),
            ({**good, "iss": "you"}, (401, b"websocket jwt issuer mismatch")),
            ({**good, "aud": "other"}, (401, b"websocket jwt audience mismatch")),
            ({"iss": "me", "aud": "exec"}, (401, b"invalid websocket jwt")),
        ]
        for claims, expected in cases:
            self.assertEqual(await self.verdict(claims), expected, claims)
        self.assertEqual(await self.verdict(good, b"w" * 40), (401, b"invalid websocket jwt"))
        missing = await self.listener.upgrade()
        self.assertEqual((missing.status, missing.body), (401, b"missing websocket bearer token"))


class OptionsTests(TestCase):
    timeout = 30

    def test_twistdOptions(self) -> None:
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        tokenFile = os.path.join(directory, "token")
        with open(tokenFile, "w") as f:
            f.write(TOKEN + "\n")
        options = ExecutorOptions()
        options.parseOptions(
            [
                "--listen",
                "ws://0.0.0.0:0",
                "--ws-auth",
                "capability-token",
                "--ws-token-file",
                tokenFile,
            ]
        )
        service: Any = makeService(options, reactor)
        local = next(s for s in service if isinstance(s, LocalWebSocketService))
        self.assertEqual(local.auth, CapabilityToken(hashlib.sha256(TOKEN.encode()).digest()))
        for argv, message in [
            (["--ws-auth", "capability-token"], "`--ws-token-file` or `--ws-token-sha256`"),
            (["--ws-token-file", tokenFile], "websocket auth flags require"),
            (["--ws-auth", "magic"], "invalid value 'magic' for --ws-auth"),
            (
                [
                    "--listen",
                    "stdio",
                    "--ws-auth",
                    "capability-token",
                    "--ws-token-file",
                    tokenFile,
                ],
                "WebSocket auth requires a WebSocket listener, not stdio",
            ),
            (
                [
                    "--ws-auth",
                    "signed-bearer-token",
                    "--ws-shared-secret-file",
                    tokenFile,
                    "--ws-max-clock-skew-seconds",
                    "-1",
                ],
                "--ws-max-clock-skew-seconds",
            ),
        ]:
            options = ExecutorOptions()
            with self.assertRaises(Exception) as caught:
                options.parseOptions(argv)
            self.assertIn(message, str(caught.exception), argv)
        options = ExecutorOptions()
        options.parseOptions(
            ["--ws-auth", "signed-bearer-token", "--ws-shared-secret-file", tokenFile]
        )
        with self.assertRaises(SystemExit) as exited:
            makeService(options, reactor)
        self.assertIn("must be at least 32 bytes", str(exited.exception))


def run(coro: Any) -> Deferred[Any]:
    return ensureDeferred(coro)
