"""What the 0.171 environment registry accepts as input (sans-IO): Noise public keys exactly
as 0.171 parses them, request bodies, and hostile bodies that must get the cloud's error shape."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial import unittest

from tests.support.environments import ALICE, BOB, keyJson, mint, newKey
from twisted_exec.rendezvous.environments import (
    NOISE_SUITE,
    SECURITY_PROFILE,
    EnvironmentRegistry,
    RegistryError,
    parseBody,
    parsePublicKey,
)


class PublicKeyTests(unittest.TestCase):
    """``NoiseChannelPublicKey`` as 0.171 parses it: deny_unknown_fields, exact sizes."""

    def _refused(self, value: Any) -> str:
        with self.assertRaises(RegistryError) as caught:
            parsePublicKey(value, "k")
        self.assertEqual(
            (caught.exception.status, caught.exception.code), (400, "invalid_public_key")
        )
        return caught.exception.message

    def test_roundTrip(self) -> None:
        key = newKey()
        self.assertEqual(parsePublicKey(key.toJson(), "k"), key)
        self.assertEqual(key.toJson()["suite"], NOISE_SUITE)
        self.assertEqual(len(key.toJson()["x25519_public_key"]), 44)
        self.assertEqual(len(key.toJson()["mlkem768_public_key"]), 1580)

    def test_unknownAndMissingFields(self) -> None:
        self.assertIn("unknown field `extra`", self._refused(keyJson(extra="x")))
        value = keyJson()
        del value["suite"]
        self.assertIn("missing field `suite`", self._refused(value))
        self.assertIn("must be an object", self._refused(["x"]))
        self.assertIn("must be strings", self._refused(keyJson(suite=1)))

    def test_suite(self) -> None:
        self.assertIn(
            "unsupported suite", self._refused(keyJson(suite="Noise_IK_25519_AESGCM_SHA256"))
        )

    def test_sizes(self) -> None:
        short = base64.b64encode(os.urandom(31)).decode()
        self.assertIn("must be 32 bytes, got 31", self._refused(keyJson(x25519_public_key=short)))
        long = base64.b64encode(os.urandom(1185)).decode()
        self.assertIn("must be 1184 bytes", self._refused(keyJson(mlkem768_public_key=long)))

    def test_strictBase64(self) -> None:
        good = base64.b64encode(bytes(range(32))).decode()
        for bad in (
            good.rstrip("="),  # unpadded
            good[:-2] + "B=",  # non-zero trailing bits: not canonical
            " " + good,  # whitespace
            good.replace("+", "-").replace("/", "_")
            if ("+" in good or "/" in good)
            else "-" + good[1:],
            "é" * 44,
        ):
            self.assertIn("x25519_public_key", self._refused(keyJson(x25519_public_key=bad)))


class BodyTests(unittest.TestCase):
    def _refused(self, body: bytes) -> str:
        with self.assertRaises(RegistryError) as caught:
            parseBody(body)
        self.assertEqual((caught.exception.status, caught.exception.code), (400, "invalid_request"))
        return caught.exception.message

    def test_body(self) -> None:
        self.assertEqual(parseBody(b'{"a": 1, "b": [true]}'), {"a": 1, "b": [True]})
        self.assertIn("not valid JSON", self._refused(b"{"))
        self.assertIn("not valid JSON", self._refused(b"\xff"))
        self.assertIn("JSON object", self._refused(b"[1]"))
        self.assertIn("duplicate field `a`", self._refused(b'{"a": 1, "a": 2}'))
        self.assertIn("not JSON", self._refused(b'{"a": NaN}'))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    [
        "security_profile",
        "executor_public_key",
        "harness_public_key",
        "executor_registration_id",
        "harness_key_authorization",
        "suite",
        "x25519_public_key",
        "mlkem768_public_key",
    ]
)


class HostileBodyTests(unittest.TestCase):
    """Any body gets a status and the cloud's error shape, never an exception; nothing but a
    well-formed register creates an environment."""

    def _check(self, reply: tuple[int, dict[str, Any]]) -> None:
        status, body = reply
        if status != 200:
            self.assertEqual(set(body), {"error"})
            self.assertEqual(set(body["error"]), {"code", "message"})
            self.assertIsInstance(body["error"]["message"], str)

    @settings(max_examples=100, deadline=None, database=None)
    @given(st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()))
    def test_anyBytes(self, body: bytes) -> None:
        registry = EnvironmentRegistry(Clock())
        for call in (registry.connect, registry.register):
            self._check(call(ALICE, "env-1", body, mint("x")))
        self._check(registry.validate(ALICE, "env-1", body))

    @settings(max_examples=100, deadline=None, database=None)
    @given(st.dictionaries(FIELDS, JSON | st.just(newKey().toJson()), max_size=4))
    def test_nearlyRightObjects(self, fields: dict[str, Any]) -> None:
        registry = EnvironmentRegistry(Clock())
        body = json.dumps(fields).encode()
        status, reply = registry.register(ALICE, "env-1", body, mint("x"))
        self._check((status, reply))
        self.assertEqual(status == 200, registry.environment("env-1") is not None)
        if status == 200:
            self.assertEqual(fields["security_profile"], SECURITY_PROFILE)
        self._check(registry.connect(BOB, "env-1", body, mint("x")))
        self._check(registry.validate(ALICE, "env-1", body))
