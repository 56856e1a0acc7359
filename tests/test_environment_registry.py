"""Environment registry client (0.171 register, validate) against a twisted.web resource."""

from __future__ import annotations

import json
from typing import Any, cast

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from twisted_exec.executor.transports.relay.environment_registry import (
    EnvironmentAuthError,
    EnvironmentConfig,
    EnvironmentConfigError,
    EnvironmentRegistryClient,
    EnvironmentRequestError,
    registrationBody,
)
from twisted_exec.executor.transports.relay.registry import HTTPPoster
from twisted_exec.wire import noise

TOKEN = "env-tok-Zq81-secret"
KEY = noise.NoiseIdentity.generate().publicKey
HARNESS_KEY = noise.NoiseIdentity.generate().publicKey


class Registry(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 200
        self.body: bytes | None = None
        self.hang = False

    def render_POST(self, request: Request) -> bytes | int:
        headers = {
            k.decode().lower(): v[0].decode() for k, v in request.requestHeaders.getAllRawHeaders()
        }
        assert request.content is not None
        self.requests.append((request.path.decode(), headers, request.content.read()))
        if self.hang:
            return NOT_DONE_YET
        request.setResponseCode(self.status)
        if self.body is not None:
            return self.body
        op = request.path.decode().rsplit("/", 1)[-1]
        if op == "register":
            return json.dumps(
                {
                    "environment_id": "env-1",
                    "url": "ws://rdv.example/ws?role=environment&sig=SIG",
                    "security_profile": "noise_hybrid_ik_v1",
                    "executor_registration_id": "reg-7",
                    "transport_policy": {"version": 1},
                }
            ).encode()
        return b'{"valid":true}'


def config(**kwargs: Any) -> EnvironmentConfig:
    return EnvironmentConfig.fromInputs(
        kwargs.pop("base", "http://registry.example/"),
        kwargs.pop("ident", "env-1"),
        environ=kwargs.pop("environ", {"CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN": TOKEN}),
        **kwargs,
    )


class ConfigTests(TestCase):
    def test_tokenSources(self) -> None:
        self.assertEqual(config().token, TOKEN)
        self.assertEqual(config(environ={"CODEX_API_KEY": " k "}).token, "k")
        both = {"CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN": "a", "CODEX_API_KEY": "b"}
        self.assertEqual(config(environ=both).token, "b")  # CODEX_API_KEY first, as 0.171
        self.assertEqual(config(environ=both, token="stdin-tok\n").token, "stdin-tok")

    def test_errors(self) -> None:
        self.assertRaises(EnvironmentAuthError, config, environ={})
        self.assertRaises(EnvironmentAuthError, config, environ={}, token="  ")
        self.assertRaises(EnvironmentAuthError, config, token="a\rb")
        self.assertRaises(EnvironmentConfigError, config, ident="  ")
        self.assertRaises(EnvironmentConfigError, config, base="ftp://x")
        with self.assertRaises(EnvironmentConfigError) as caught:
            config(ident="")
        self.assertIn(
            "environment id is required for remote exec-server registration", str(caught.exception)
        )

    def test_reprRedacts(self) -> None:
        self.assertNotIn(TOKEN, repr(config()))

    def test_urls(self) -> None:
        c = config(ident="env 1")
        self.assertEqual(
            c.url("register"), "http://registry.example/cloud/environment/env%201/register"
        )


class ClientTests(TestCase):
    def setUp(self) -> None:
        self.registry = Registry()
        self.clock = Clock()
        self.client = EnvironmentRegistryClient(
            cast(HTTPPoster, StubTreq(self.registry)), self.clock, config()
        )

    def test_registerBodyIsByteExact(self) -> None:
        """The body 0.171 sends (captured from the binary): compact JSON, this key order."""
        registration = self.successResultOf(self.client.register(KEY))
        [(path, headers, body)] = self.registry.requests
        self.assertEqual(path, "/cloud/environment/env-1/register")
        self.assertEqual(headers["authorization"], f"Bearer {TOKEN}")
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(body, registrationBody(KEY))
        self.assertTrue(
            body.startswith(
                b'{"security_profile":"noise_hybrid_ik_v1","executor_public_key":{"suite":"Noise_hybridIK_X25519+MLKEM768_AESGCM_SHA256","x25519_public_key":"'
            )
        )
        self.assertEqual(json.loads(body)["executor_public_key"], KEY.toJson())
        self.assertEqual(
            (registration.environmentId, registration.executorRegistrationId, registration.url),
            ("env-1", "reg-7", "ws://rdv.example/ws?role=environment&sig=SIG"),
        )
        self.assertNotIn("SIG", repr(registration))

    def test_registerRefusesMismatches(self) -> None:
        bodies: list[object] = [
            {
                "environment_id": "other",
                "url": "ws://x",
                "security_profile": "noise_hybrid_ik_v1",
                "executor_registration_id": "r",
            },
            {
                "environment_id": "env-1",
                "url": "ws://x",
                "security_profile": "plain",
                "executor_registration_id": "r",
            },
            {
                "environment_id": "env-1",
                "url": "http://x",
                "security_profile": "noise_hybrid_ik_v1",
                "executor_registration_id": "r",
            },
            {
                "environment_id": "env-1",
                "url": "ws://x",
                "security_profile": "noise_hybrid_ik_v1",
                "executor_registration_id": " ",
            },
            {"environment_id": "env-1", "url": "ws://x", "security_profile": "noise_hybrid_ik_v1"},
            [],
        ]
        for body in bodies:
            self.registry.body = json.dumps(body).encode()
            self.failureResultOf(self.client.register(KEY), EnvironmentRequestError)

    def test_registerErrors(self) -> None:
        self.registry.status = 401
        self.registry.body = b'{"error":{"code":"bad","message":"token rejected"}}'
        failure = self.failureResultOf(self.client.register(KEY), EnvironmentAuthError)
        self.assertIn("token rejected", str(failure.value))
        self.registry.status = 503
        self.registry.body = b'{"error":{"code":"registration_conflict","message":"busy"}}'
        failure = self.failureResultOf(self.client.register(KEY), EnvironmentRequestError)
        self.assertIn("503 Service Unavailable, registration_conflict", str(failure.value))
        self.assertNotIn(TOKEN, str(failure.value))

    def test_registerTimeout(self) -> None:
        self.registry.hang = True
        d = self.client.register(KEY)
        self.clock.advance(10)
        failure = self.failureResultOf(d, EnvironmentRequestError)
        self.assertIn("no response within 10 s", str(failure.value))

    def test_validate(self) -> None:
        ok = self.successResultOf(
            self.client.validate("reg-7", HARNESS_KEY, "auth-xyz", "stream-1")
        )
        self.assertTrue(ok)
        [(path, headers, body)] = self.registry.requests
        self.assertEqual(path, "/cloud/environment/env-1/validate")
        self.assertEqual(headers["x-codex-noise-stream-id"], "stream-1")
        self.assertEqual(
            json.loads(body),
            {
                "executor_registration_id": "reg-7",
                "harness_public_key": HARNESS_KEY.toJson(),
                "harness_key_authorization": "auth-xyz",
            },
        )

    def test_validateRefusals(self) -> None:
        for status, body in (
            (200, b'{"valid":false}'),
            (200, b'{"valid":"yes"}'),
            (200, b"nope"),
            (500, b'{"valid":true}'),
            (403, b""),
        ):
            self.registry.status, self.registry.body = status, body
            self.assertFalse(self.successResultOf(self.client.validate("r", HARNESS_KEY, "a", "s")))
