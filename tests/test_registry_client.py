"""Registry client against the test registry's real twisted.web resource, via StubTreq."""

from __future__ import annotations

from typing import Any, cast

from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from twisted_exec.executor.transports.relay.registry import (
    TOKEN_ENV,
    HTTPPoster,
    Registration,
    RegistryAuthError,
    RegistryClient,
    RegistryConfigError,
    RegistryHttpError,
    RegistryTransientError,
    RemoteConfig,
)
from twisted_exec.net.urls import redactUrl
from twisted_exec.testing.registry import FakeRegistry, Reply, errorBody

TOKEN = "tok-Zq81-secret"
WS_URL = "wss://relay.example/executor/exec-1?sig=S1GNATURE"


def config(**kwargs: Any) -> RemoteConfig:
    env = {TOKEN_ENV: kwargs.pop("token", TOKEN)}
    return RemoteConfig.fromInputs(
        kwargs.pop("base", "http://registry.example/"), kwargs.pop("ident", "exec-1"), environ=env
    )


class ConfigTests(TestCase):
    def test_trimming(self) -> None:
        env = {TOKEN_ENV: f"  {TOKEN}\n"}
        c = RemoteConfig.fromInputs(" https://r.example/base// ", "  ex 1 ", "n", environ=env)
        self.assertEqual(
            (c.baseUrl, c.executorId, c.token, c.name),
            ("https://r.example/base", "ex 1", TOKEN, "n"),
        )
        self.assertEqual(c.registrationUrl, "https://r.example/base/cloud/executor/ex%201/register")

    def test_reprRedactsToken(self) -> None:
        c = config()
        self.assertNotIn(TOKEN, repr(c))
        self.assertNotIn(TOKEN, str(c))
        self.assertIn("token=<redacted>", repr(c))

    def assertConfigError(self, exc: type[Exception], message: str, **kwargs: Any) -> None:
        env = kwargs.pop("env")
        with self.assertRaises(exc) as caught:
            RemoteConfig.fromInputs(
                kwargs.get("base", "http://r"), kwargs.get("ident", "x"), environ=env
            )
        self.assertEqual(str(caught.exception), message)

    def test_errorsInReferenceOrder(self) -> None:
        unset = (
            "executor registry authentication error: executor registry bearer token environment "
            "variable `CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN` is not set"
        )
        self.assertConfigError(RegistryAuthError, unset, env={}, base="", ident=" ")
        self.assertConfigError(
            RegistryAuthError, unset.replace("is not set", "is empty"), env={TOKEN_ENV: "  "}
        )
        self.assertConfigError(
            RegistryConfigError,
            "executor registry configuration error: executor id is required for remote "
            "exec-server registration",
            env={TOKEN_ENV: "t"},
            base="",
            ident=" ",
        )
        self.assertConfigError(
            RegistryConfigError,
            "executor registry configuration error: executor registry base URL is required",
            env={TOKEN_ENV: "t"},
            base="  /",
        )

    def test_unusableBaseUrl(self) -> None:
        for base in ("notaurl", "ftp://x", "http://"):
            with self.assertRaises(RegistryConfigError):
                RemoteConfig.fromInputs(base, "x", environ={TOKEN_ENV: "t"})

    def test_registrationRepr(self) -> None:
        r = Registration("e", WS_URL)
        self.assertNotIn("S1GNATURE", repr(r))
        self.assertEqual(redactUrl(WS_URL), "wss://relay.example/executor/exec-1?<redacted>")
        self.assertEqual(redactUrl("ws://u:p@h:81/x"), "ws://h:81/x")


class RegisterTests(TestCase):
    def setUp(self) -> None:
        self.registry = FakeRegistry(TOKEN, lambda ident: WS_URL)
        self.clock = Clock()

    def client(self, resource: Any = None, **kwargs: Any) -> RegistryClient:
        stub = StubTreq(resource if resource is not None else self.registry.resource())
        return RegistryClient(cast(HTTPPoster, stub), self.clock, config(**kwargs))

    def test_success(self) -> None:
        registration = self.successResultOf(self.client().register())
        self.assertEqual(registration, Registration("exec-1", WS_URL))
        [req] = self.registry.requests
        self.assertEqual(
            (req.method, req.path, req.query), ("POST", "/cloud/executor/exec-1/register", "")
        )
        self.assertEqual(req.headers["authorization"], [f"Bearer {TOKEN}"])
        self.assertEqual(req.headers["accept"], ["*/*"])
        self.assertEqual(req.body, b"")
        self.assertNotIn("content-type", req.headers)

    def failure(self, reply: Reply) -> Exception:
        self.registry.script(reply)
        f = self.failureResultOf(self.client().register())
        value = f.value
        assert isinstance(value, Exception)
        self.assertNotIn(TOKEN, str(value))
        return value

    def test_401WithMessage(self) -> None:
        e = self.failure(Reply(401, errorBody("unauthorized", "invalid bearer token")))
        self.assertIsInstance(e, RegistryAuthError)
        self.assertEqual(
            str(e),
            "executor registry authentication error: executor registry authentication failed "
            "(401 Unauthorized): invalid bearer token",
        )

    def test_403Preview(self) -> None:
        e = self.failure(Reply(403, b"go away"))
        self.assertEqual(
            str(e),
            "executor registry authentication error: executor registry authentication failed "
            "(403 Forbidden): go away",
        )
        e = self.failure(Reply(401, b""))
        self.assertTrue(str(e).endswith("(401 Unauthorized): empty or malformed error body"))

    def test_500Variants(self) -> None:
        """The texts the reference prints for the same replies (probed)."""
        cases = [
            (
                errorBody("internal", "database down"),
                "(500 Internal Server Error, internal): database down",
            ),
            (errorBody(None, "database down"), "(500 Internal Server Error): database down"),
            (
                errorBody("internal", None),
                '(500 Internal Server Error, internal): {"error": {"code": "internal"}}',
            ),
            (b"", "(500 Internal Server Error): empty or malformed error body"),
        ]
        for body, tail in cases:
            e = self.failure(Reply(500, body))
            self.assertIsInstance(e, RegistryHttpError)
            self.assertIsInstance(e, RegistryTransientError)
            self.assertEqual(str(e), f"executor registry request failed {tail}")
        e = self.failure(Reply(502, b"<html>bad gateway</html>"))
        self.assertEqual(
            str(e), "executor registry request failed (502 Bad Gateway): <html>bad gateway</html>"
        )

    def test_previewIs4096Characters(self) -> None:
        e = self.failure(Reply(500, b"x" * 5000))
        self.assertEqual(
            str(e), "executor registry request failed (500 Internal Server Error): " + "x" * 4096
        )

    def test_badSuccessBodies(self) -> None:
        for body, fragment in [
            ({"executor_id": "exec-1"}, "missing field `url`"),
            (b"nope", "error decoding response body"),
            ([1], "not a JSON object"),
            ({"executor_id": "e", "url": 5}, "`url` is not a string"),
            (
                {"executor_id": "e", "url": "http://x/y?sig=S1GNATURE"},
                "non-websocket url (http://x/y?<redacted>)",
            ),
        ]:
            e = self.failure(Reply(200, body))
            self.assertIsInstance(e, RegistryTransientError)
            self.assertIn(fragment, str(e))
            self.assertNotIn("S1GNATURE", str(e))

    def test_bodyCap(self) -> None:
        self.registry.script(Reply(200, b"{" + b" " * 200_000 + b"}"))
        f = self.failureResultOf(self.client().register())
        self.assertIn("response body exceeds 65536 bytes", str(f.value))
        self.registry.script(Reply(500, b"y" * 200_000))
        f = self.failureResultOf(self.client().register())
        self.assertEqual(
            str(f.value),
            "executor registry request failed (500 Internal Server Error): " + "y" * 4096,
        )

    def test_timeout(self) -> None:
        hanging = _Hanging()
        d = self.client(resource=hanging).register()
        self.assertNoResult(d)
        self.clock.advance(29.9)
        self.assertNoResult(d)
        self.clock.advance(0.2)
        f = self.failureResultOf(d, RegistryTransientError)
        self.assertEqual(str(f.value), "executor registry request failed: no response within 30 s")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_transportErrorIsTransient(self) -> None:
        client = RegistryClient(_Refusing(), self.clock, config())
        f = self.failureResultOf(client.register(), RegistryTransientError)
        self.assertEqual(
            str(f.value),
            "executor registry request failed: error sending request "
            "(ConnectionRefusedError: Connection was refused by other side: 111: refused.)",
        )


class _Hanging(Resource):
    isLeaf = True

    def render(self, request: Any) -> Any:
        return NOT_DONE_YET


class _Refusing:
    def post(self, url: str, *args: Any, **kwargs: Any) -> Deferred[Any]:
        from twisted.internet.error import ConnectionRefusedError

        d: Deferred[Any] = Deferred()
        d.errback(ConnectionRefusedError("111: refused"))
        return d
