"""The local websocket's checks, sans IO: each answer as probed on the Codex 0.171 binary."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

from twisted.trial.unittest import TestCase

from twisted_exec.net import wsauth
from twisted_exec.net.wsauth import (
    Refusal,
    authorizeUpgrade,
    hostRefusal,
    listenerProblem,
    originRefusal,
)
from twisted_exec.net.wsauth_config import (
    CapabilityToken,
    SignedBearerToken,
    WsAuthArgs,
    WsAuthConfigError,
    sha256,
)
from twisted_exec.net.wsauth_jwt import mintSignedBearer

SECRET = b"k" * 32
NOW = 1_800_000_000


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def handMade(header: bytes, claims: bytes, secret: bytes = SECRET) -> str:
    signing = f"{b64(header)}.{b64(claims)}"
    mac = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64(mac)}"


def bearer(token: str) -> list[bytes]:
    return [f"Bearer {token}".encode()]


class CapabilityTokenTests(TestCase):
    mode = CapabilityToken(sha256(b"s3cret-capability"))

    def check(self, headers: Any) -> Refusal | None:
        return authorizeUpgrade(self.mode, headers, NOW)

    def test_answers(self) -> None:
        cases: list[tuple[Any, Refusal | None]] = [
            (None, Refusal(401, "missing websocket bearer token")),
            ([], Refusal(401, "missing websocket bearer token")),
            (bearer("s3cret-capability"), None),
            ([b"bearer s3cret-capability"], None),
            ([b"BEARER   s3cret-capability"], None),
            (bearer("nope"), Refusal(401, "invalid websocket bearer token")),
            ([b"Basic abc"], Refusal(401, "invalid authorization header")),
            ([b"Bearer "], Refusal(401, "invalid authorization header")),
            ([b"Bearers3cret-capability"], Refusal(401, "invalid authorization header")),
            ([b"Bearer\ts3cret-capability"], Refusal(401, "invalid authorization header")),
            ([b"Bearer \xff"], Refusal(401, "invalid authorization header")),
            ([b"Bearer s3cret-capability", b"Bearer nope"], None),
            (
                [b"Bearer nope", b"Bearer s3cret-capability"],
                Refusal(401, "invalid websocket bearer token"),
            ),
        ]
        for headers, expected in cases:
            self.assertEqual(self.check(headers), expected, headers)

    def test_noModeAdmitsEveryone(self) -> None:
        self.assertIsNone(authorizeUpgrade(None, None, NOW))

    def test_reprHidesTheDigest(self) -> None:
        self.assertEqual(repr(self.mode), "<CapabilityToken>")


class SignedBearerTests(TestCase):
    mode = SignedBearerToken(SECRET)
    scoped = SignedBearerToken(SECRET, issuer="iss1", audience="aud1")

    def verdict(self, token: str, mode: SignedBearerToken | None = None, now: int = NOW) -> str:
        refusal = authorizeUpgrade(mode or self.mode, bearer(token), now)
        return "ok" if refusal is None else refusal.body

    def jwt(self, claims: dict[str, Any], secret: bytes = SECRET) -> str:
        return handMade(b'{"alg":"HS256","typ":"JWT"}', json.dumps(claims).encode(), secret)

    def test_mintedByPyJwt(self) -> None:
        self.assertEqual(self.verdict(mintSignedBearer(SECRET, {"exp": NOW + 60})), "ok")

    def test_expiryAndNotBefore(self) -> None:
        cases: dict[str, list[dict[str, Any]]] = {
            "ok": [
                {"exp": NOW + 60},
                {"exp": NOW - 30},
                {"exp": NOW + 60, "nbf": NOW + 30},
                {"exp": NOW + 60, "nbf": None},
                {"exp": 2**62},
            ],
            "expired websocket jwt": [{"exp": NOW - 31}, {"exp": NOW - 600}, {"exp": -5}],
            "websocket jwt is not valid yet": [{"exp": NOW + 600, "nbf": NOW + 31}],
            "invalid websocket jwt": [
                {},
                {"iat": NOW},
                {"exp": str(NOW)},
                {"exp": NOW + 0.5},
                {"exp": None},
                {"exp": True},
                {"exp": 2**64},
                {"exp": NOW + 60, "nbf": "x"},
            ],
        }
        for expected, claimSets in cases.items():
            for claims in claimSets:
                self.assertEqual(self.verdict(self.jwt(claims)), expected, claims)

    def test_claimsNotLookedAt(self) -> None:
        for extra in (
            {"iat": NOW + 1000},
            {"iat": "x"},
            {"iat": 1.5},
            {"sub": 5},
            {"jti": 5},
            {"iss": "anyone"},
            {"aud": ["a", "b"]},
        ):
            self.assertEqual(self.verdict(self.jwt({"exp": NOW + 60, **extra})), "ok", extra)
        self.assertEqual(
            self.verdict(self.jwt({"exp": NOW + 60, "iss": 5})), "invalid websocket jwt"
        )
        self.assertEqual(
            self.verdict(self.jwt({"exp": NOW + 60, "aud": 5})), "invalid websocket jwt"
        )

    def test_issuerAndAudience(self) -> None:
        base = {"exp": NOW + 60, "iss": "iss1", "aud": "aud1"}
        cases: list[tuple[dict[str, Any], str]] = [
            (base, "ok"),
            ({**base, "aud": ["x", "aud1"]}, "ok"),
            ({**base, "aud": []}, "websocket jwt audience mismatch"),
            ({**base, "aud": None}, "websocket jwt audience mismatch"),
            ({"exp": NOW + 60, "iss": "iss1"}, "websocket jwt audience mismatch"),
            ({**base, "aud": "aud2"}, "websocket jwt audience mismatch"),
            ({"exp": NOW + 60, "aud": "aud1"}, "websocket jwt issuer mismatch"),
            ({**base, "iss": "ISS1"}, "websocket jwt issuer mismatch"),
            ({**base, "iss": None}, "websocket jwt issuer mismatch"),
            ({**base, "iss": "x", "aud": "y"}, "websocket jwt issuer mismatch"),
            ({**base, "exp": NOW - 100, "iss": "x"}, "expired websocket jwt"),
            (
                {**base, "exp": NOW + 600, "nbf": NOW + 100, "iss": "x"},
                "websocket jwt is not valid yet",
            ),
            ({**base, "aud": ["aud1", 3]}, "invalid websocket jwt"),
        ]
        for claims, expected in cases:
            self.assertEqual(self.verdict(self.jwt(claims), self.scoped), expected, claims)

    def test_customSkew(self) -> None:
        none = SignedBearerToken(SECRET, maxClockSkewSeconds=0)
        self.assertEqual(self.verdict(self.jwt({"exp": NOW}), none), "ok")
        self.assertEqual(self.verdict(self.jwt({"exp": NOW - 1}), none), "expired websocket jwt")
        self.assertEqual(
            self.verdict(self.jwt({"exp": NOW + 9, "nbf": NOW + 1}), none),
            "websocket jwt is not valid yet",
        )
        wide = SignedBearerToken(SECRET, maxClockSkewSeconds=100)
        self.assertEqual(self.verdict(self.jwt({"exp": NOW - 90}), wide), "ok")
        self.assertEqual(self.verdict(self.jwt({"exp": NOW - 110}), wide), "expired websocket jwt")

    def test_signatureAndShape(self) -> None:
        claims = json.dumps({"exp": NOW + 60}).encode()
        good = handMade(b'{"alg":"HS256","typ":"JWT"}', claims)
        self.assertEqual(self.verdict(good), "ok")
        h, c, s = good.split(".")
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        i = alphabet.index(s[-1])
        nonCanonical = f"{h}.{c}.{s[:-1]}{alphabet[(i & ~3) | ((i + 1) & 3)]}"
        invalid = [
            self.jwt({"exp": NOW + 60}, secret=b"j" * 32),
            handMade(b'{"alg":"HS384"}', claims),
            handMade(b'{"alg":"hs256"}', claims),
            handMade(b'{"typ":"JWT"}', claims),
            b64(b'{"alg":"none"}') + f".{c}.",
            handMade(b'{"alg":"HS256","typ":5}', claims),
            handMade(b'{"alg":"HS256","kid":5}', claims),
            handMade(b'{"alg":"HS256","x5c":5}', claims),
            handMade(b'{"alg":"HS256","alg":"HS256"}', claims),
            handMade(b'["HS256"]', claims),
            handMade(b'{"alg":"HS256"}', b"[1800000060]"),
            handMade(b'{"alg":"HS256"}', b'"x"'),
            handMade(b'{"alg":"HS256"}', b'{"exp":1e10}'),
            handMade(b'{"alg":"HS256"}', b'{"exp":-0}'),
            handMade(b'{"alg":"HS256"}', b'{"exp":NaN}'),
            handMade(b'{"alg":"HS256"}', b'{"exp":1800000060,"exp":1800000060}'),
            nonCanonical,
            good + "=",
            "a.b",
            "zzzz",
            good + ".x",
            good[:10] + " " + good[10:],
        ]
        for token in invalid:
            self.assertEqual(self.verdict(token), "invalid websocket jwt", token)
        accepted = [
            handMade(b'{"alg":"HS256"}', claims),
            handMade(b'{"alg":"HS256","typ":"foo","kid":"x"}', claims),
            handMade(b'{"alg":"HS256","crit":["x"]}', claims),
            handMade(b'{"alg":"HS256","crit":5}', claims),
            handMade(b'{"alg":"HS256"}', b'{"exp":1800000060,"x":1,"x":2}'),
        ]
        for token in accepted:
            self.assertEqual(self.verdict(token), "ok", token)


class OriginAndHostTests(TestCase):
    def test_anyOriginIsRefusedWithAnEmptyBody(self) -> None:
        for origin in (b"https://evil.example", b"null", b"http://127.0.0.1:1", b""):
            self.assertEqual(originRefusal([origin]), Refusal(403, ""))
        self.assertIsNone(originRefusal(None))

    def test_hostMustNameLoopbackOrTheBoundAddress(self) -> None:
        refused = Refusal(403, "Forbidden: Host header is not allowed")
        for bind, host, expected in [
            ("127.0.0.1", b"127.0.0.1:8765", None),
            ("127.0.0.1", b"127.0.0.1:9000", None),  # an SSH tunnel remaps the port
            ("127.0.0.1", b"localhost:8765", None),
            ("127.0.0.1", b"LOCALHOST.", None),
            ("127.0.0.1", b"[::1]:8765", None),
            ("127.0.0.1", b"127.0.0.2", None),
            ("127.0.0.1", b"evil.example", refused),
            ("127.0.0.1", b"evil.example:8765", refused),
            ("127.0.0.1", b"localhost.evil.example", refused),
            ("127.0.0.1", b"192.0.2.7:8765", refused),
            ("127.0.0.1", b"\xff", refused),
            ("192.0.2.7", b"192.0.2.7:8765", None),
            ("192.0.2.7", b"127.0.0.1:8765", None),
            ("192.0.2.7", b"buildbox:8765", refused),
            ("0.0.0.0", b"buildbox:8765", None),
            ("::", b"buildbox", None),
        ]:
            self.assertEqual(hostRefusal([host], bind), expected, (bind, host))
        self.assertIsNone(hostRefusal(None, "127.0.0.1"))


class OptionsTests(TestCase):
    def setUp(self) -> None:
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)

    def file(self, name: str, content: bytes) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(content)
        return path

    def error(self, args: WsAuthArgs) -> str:
        with self.assertRaises(WsAuthConfigError) as caught:
            args.resolve(cwd=self.dir)
        return str(caught.exception)

    def test_theReferenceMessages(self) -> None:
        tok = self.file("tok", b"tok\n")
        cases = [
            (
                WsAuthArgs("capability-token"),
                "`--ws-token-file` or `--ws-token-sha256` is required when "
                "`--ws-auth capability-token` is set",
            ),
            (
                WsAuthArgs("capability-token", tokenFile=tok, tokenSha256="00" * 32),
                "`--ws-token-file` and `--ws-token-sha256` are mutually exclusive",
            ),
            (
                WsAuthArgs("capability-token", tokenFile=tok, issuer="x"),
                "`--ws-shared-secret-file`, `--ws-issuer`, `--ws-audience`, and "
                "`--ws-max-clock-skew-seconds` require `--ws-auth signed-bearer-token`",
            ),
            (
                WsAuthArgs(tokenFile=tok),
                "websocket auth flags require `--ws-auth capability-token` or "
                "`--ws-auth signed-bearer-token`",
            ),
            (
                WsAuthArgs("capability-token", tokenSha256="00" * 5),
                "--ws-token-sha256 must be a 64-character hex SHA-256 digest",
            ),
            (
                WsAuthArgs("signed-bearer-token"),
                "`--ws-shared-secret-file` is required when `--ws-auth signed-bearer-token` is set",
            ),
            (
                WsAuthArgs("signed-bearer-token", sharedSecretFile=tok, tokenFile=tok),
                "`--ws-token-file` and `--ws-token-sha256` require "
                "`--ws-auth capability-token`, not `signed-bearer-token`",
            ),
            (
                WsAuthArgs("signed-bearer-token", sharedSecretFile=tok),
                f"signed websocket bearer secret {tok} must be at least 32 bytes",
            ),
            (
                WsAuthArgs("signed-bearer-token", sharedSecretFile=tok, maxClockSkewSeconds=2**63),
                "websocket auth clock skew must fit in a signed 64-bit integer",
            ),
            (
                WsAuthArgs("capability-token", tokenFile=self.file("empty", b"  \n")),
                f"websocket auth secret {self.dir}/empty must not be empty",
            ),
            (
                WsAuthArgs("capability-token", tokenFile="missing"),
                f"failed to read websocket auth secret {self.dir}/missing: "
                "No such file or directory (os error 2)",
            ),
        ]
        for args, message in cases:
            self.assertEqual(self.error(args), message)

    def test_resolved(self) -> None:
        tok = self.file("tok", b"  the-token \n")
        mode = WsAuthArgs("capability-token", tokenFile=tok).resolve()
        self.assertEqual(mode, CapabilityToken(hashlib.sha256(b"the-token").digest()))
        digest = hashlib.sha256(b"the-token").hexdigest().upper()
        self.assertEqual(WsAuthArgs("capability-token", tokenSha256=digest).resolve(), mode)
        secret = self.file("secret", b"k" * 32 + b"\n")
        signed = WsAuthArgs(
            "signed-bearer-token", sharedSecretFile=secret, issuer="  iss1  ", audience="   "
        ).resolve()
        self.assertEqual(signed, SignedBearerToken(b"k" * 32, "iss1", None, 30))
        self.assertNotIn("k" * 32, repr(signed))
        self.assertIsNone(WsAuthArgs().resolve())

    def test_listenerBeyondLoopbackNeedsAuth(self) -> None:
        self.assertIsNone(listenerProblem("127.0.0.1", None, False))
        self.assertIsNone(listenerProblem("::1", None, False))
        self.assertIsNone(listenerProblem("0.0.0.0", CapabilityToken(b"x" * 32), False))
        self.assertIsNone(listenerProblem("0.0.0.0", None, True))
        problem = listenerProblem("0.0.0.0", None, False)
        assert problem is not None
        self.assertIn("refusing to listen on 0.0.0.0 without websocket auth", problem)
        self.assertIn("--insecure-no-auth", problem)

    def test_clientBearer(self) -> None:
        tok = self.file("tok", b"from-file\n")
        self.assertEqual(wsauth.clientBearer(tok, {}), "from-file")
        self.assertEqual(wsauth.clientBearer(None, {wsauth.TOKEN_FILE_ENV: tok}), "from-file")
        self.assertEqual(wsauth.clientBearer(None, {wsauth.TOKEN_ENV: " env "}), "env")
        self.assertIsNone(wsauth.clientBearer(None, {}))
