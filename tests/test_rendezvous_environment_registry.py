"""The 0.171 environment registry's life (sans-IO): register an executor, connect a harness
(a one-use key authorization), validate that authorization; who may do each, and when."""

from __future__ import annotations

import base64
import json
from typing import Any

from twisted.internet.task import Clock
from twisted.trial import unittest

from tests.support.environments import ALICE, BOB, keyJson, mint, newKey, registerBody
from twisted_exec.rendezvous.environments import EnvironmentRegistry, NoisePublicKey


class RegistryTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.registry = EnvironmentRegistry(self.clock, authorizationTtl=30.0)
        self.key = newKey()

    def register(
        self, credential: str = ALICE, env: str = "env-1", key: NoisePublicKey | None = None
    ) -> tuple[int, dict[str, Any]]:
        return self.registry.register(
            credential, env, registerBody(key or self.key), mint("environment")
        )

    def online(self, env: str = "env-1") -> str:
        status, body = self.register(env=env)
        self.assertEqual(status, 200, body)
        registration: str = body["executor_registration_id"]
        self.registry.executorConnected(env, registration)
        return registration

    def connect(
        self, harnessKey: NoisePublicKey, env: str = "env-1", credential: str = BOB
    ) -> tuple[int, dict[str, Any]]:
        body = json.dumps({"harness_public_key": harnessKey.toJson()}).encode()
        return self.registry.connect(credential, env, body, mint("harness"))

    def validate(
        self,
        registration: str,
        harnessKey: NoisePublicKey,
        authorization: str,
        env: str = "env-1",
        credential: str = ALICE,
    ) -> tuple[int, dict[str, Any]]:
        body = {
            "executor_registration_id": registration,
            "harness_public_key": harnessKey.toJson(),
            "harness_key_authorization": authorization,
        }
        return self.registry.validate(credential, env, json.dumps(body).encode())

    def authorize(self, harnessKey: NoisePublicKey) -> str:
        """A fresh one-use authorization for ``harnessKey`` from a connect to ``env-1``."""
        authorization: str = self.connect(harnessKey)[1]["harness_key_authorization"]
        return authorization

    def assertValidates(
        self,
        valid: bool,
        registration: str,
        harnessKey: NoisePublicKey,
        authorization: str,
        **where: str,
    ) -> None:
        """``validate`` (``env``, ``credential`` in ``where``) answers 200 ``{"valid": valid}``."""
        self.assertEqual(
            self.validate(registration, harnessKey, authorization, **where),
            (200, {"valid": valid}),
        )

    # -- register -------------------------------------------------------------------------

    def test_registerAnswersWhat071Expects(self) -> None:
        status, body = self.register()
        self.assertEqual(status, 200)
        registration = body["executor_registration_id"]
        self.assertTrue(registration.startswith("reg-"))
        self.assertEqual(
            body,
            {
                "environment_id": "env-1",
                "url": f"ws://rdv/ws/environment/env-1?role=environment&reg={registration}",
                "security_profile": "noise_hybrid_ik_v1",
                "executor_registration_id": registration,
            },
        )
        env = self.registry.environment("env-1")
        assert env is not None
        self.assertEqual((env.owner, env.executorKey), (ALICE, self.key))

    def test_registerRefusals(self) -> None:
        cases = [
            (registerBody(self.key, security_profile="clear"), "unsupported_security_profile"),
            (registerBody(self.key, security_profile=None), "invalid_request"),
            (registerBody(self.key, executor_public_key=keyJson(extra=1)), "invalid_public_key"),
            (registerBody(self.key, executor_public_key=None), "invalid_public_key"),
            (b"not json", "invalid_request"),
        ]
        for body, code in cases:
            status, reply = self.registry.register(ALICE, "env-1", body, mint("environment"))
            self.assertEqual((status, reply["error"]["code"]), (400, code), body[:60])
        for bad in ("", " env", "a/b", "x" * 129, "tab\there"):
            status, reply = self.registry.register(
                ALICE, bad, registerBody(self.key), mint("environment")
            )
            self.assertEqual((status, reply["error"]["code"]), (400, "invalid_environment_id"))
        self.assertEqual(self.registry.environments(), [])

    def test_unknownTopLevelFieldsAreIgnored(self) -> None:
        status, _ = self.registry.register(
            ALICE, "env-1", registerBody(self.key, name="box"), mint("environment")
        )
        self.assertEqual(status, 200)

    def test_sameKeyKeepsTheRegistration(self) -> None:
        registration = self.online()
        status, body = self.register()  # its websocket URL was refused: it registers again
        self.assertEqual((status, body["executor_registration_id"]), (200, registration))
        env = self.registry.environment("env-1")
        assert env is not None
        self.assertEqual(env.registrations, 2)

    def test_anotherCredentialNeverDisplacesTheHolder(self) -> None:
        registration = self.online()
        for connected in (True, False):
            if not connected:
                self.registry.executorLost("env-1", registration)
            status, body = self.register(credential=BOB, key=newKey())
            self.assertEqual(
                (status, body["error"]["code"]), (409, "environment_id_taken"), connected
            )
        env = self.registry.environment("env-1")
        assert env is not None
        self.assertEqual(
            (env.owner, env.registrationId, env.executorKey), (ALICE, registration, self.key)
        )

    def test_anotherKeyWhileConnectedIsARegistrationConflict(self) -> None:
        registration = self.online()
        status, body = self.register(key=newKey())
        self.assertEqual((status, body["error"]["code"]), (503, "registration_conflict"))
        self.registry.executorLost("env-1", registration)
        other = newKey()
        status, body = self.register(key=other)
        self.assertEqual(status, 200)
        self.assertNotEqual(body["executor_registration_id"], registration)
        env = self.registry.environment("env-1")
        assert env is not None
        self.assertEqual(env.executorKey, other)
        self.assertFalse(self.registry.registrationValid("env-1", registration))

    # -- connect --------------------------------------------------------------------------

    def test_connectAnswersWhat071Expects(self) -> None:
        registration = self.online()
        harness = newKey()
        status, body = self.connect(harness)
        self.assertEqual(status, 200, body)
        authorization = body.pop("harness_key_authorization")
        self.assertGreaterEqual(len(authorization), 40)
        self.assertEqual(
            body,
            {
                "environment_id": "env-1",
                "url": f"ws://rdv/ws/environment/env-1?role=harness&reg={registration}",
                "security_profile": "noise_hybrid_ik_v1",
                "executor_registration_id": registration,
                "executor_public_key": self.key.toJson(),
            },
        )
        _, again = self.connect(harness)
        self.assertNotEqual(again["harness_key_authorization"], authorization)
        self.assertEqual(self.registry.pendingAuthorizations("env-1"), 2)

    def test_connectRefusals(self) -> None:
        status, body = self.connect(newKey(), env="nowhere")
        self.assertEqual((status, body["error"]["code"]), (404, "environment_not_found"))
        registration = self.online()
        self.registry.executorLost("env-1", registration)
        status, body = self.connect(newKey())
        self.assertEqual((status, body["error"]["code"]), (409, "environment_offline"))
        self.registry.executorConnected("env-1", registration)
        status, body = self.registry.connect(
            BOB, "env-1", b'{"harness_public_key": {"suite": "x"}}', mint("harness")
        )
        self.assertEqual((status, body["error"]["code"]), (400, "invalid_public_key"))
        self.assertEqual(self.registry.pendingAuthorizations(), 0)

    def test_pendingAuthorizationsAreCapped(self) -> None:
        self.registry.maxGrantsPerEnvironment = 3
        self.online()
        for _ in range(3):
            self.assertEqual(self.connect(newKey())[0], 200)
        status, body = self.connect(newKey())
        self.assertEqual((status, body["error"]["code"]), (429, "too_many_pending_authorizations"))
        self.clock.advance(31)  # they expire
        self.assertEqual(self.connect(newKey())[0], 200)
        self.assertEqual(self.registry.pendingAuthorizations(), 1)

    # -- validate -------------------------------------------------------------------------

    def test_validateOnceForTheKeyItWasMintedFor(self) -> None:
        registration = self.online()
        harness = newKey()
        authorization = self.authorize(harness)
        self.assertValidates(True, registration, harness, authorization)
        self.assertValidates(False, registration, harness, authorization)
        self.assertEqual(self.registry.pendingAuthorizations(), 0)

    def test_validateRefusesAnotherKeyAndSpendsTheAuthorization(self) -> None:
        registration = self.online()
        harness = newKey()
        authorization = self.authorize(harness)
        self.assertValidates(False, registration, newKey(), authorization)
        self.assertValidates(False, registration, harness, authorization)

    def test_validateIsBoundToTheRegistrationAndEnvironment(self) -> None:
        registration = self.online()
        other = self.online(env="env-2")
        harness = newKey()
        authorization = self.authorize(harness)
        self.assertValidates(False, other, harness, authorization, env="env-2")
        authorization = self.authorize(harness)
        self.assertValidates(False, "reg-forged", harness, authorization)
        authorization = self.authorize(harness)
        self.assertValidates(False, registration, harness, "forged")
        self.assertValidates(True, registration, harness, authorization)

    def test_validateAfterExpiry(self) -> None:
        registration = self.online()
        harness = newKey()
        authorization = self.authorize(harness)
        self.clock.advance(30)
        self.assertValidates(False, registration, harness, authorization)

    def test_newRegistrationVoidsOutstandingAuthorizations(self) -> None:
        registration = self.online()
        harness = newKey()
        authorization = self.authorize(harness)
        self.registry.executorLost("env-1", registration)
        status, body = self.register(key=newKey())
        self.assertEqual(status, 200)
        self.assertEqual(self.registry.pendingAuthorizations(), 0)
        self.assertValidates(False, body["executor_registration_id"], harness, authorization)

    def test_validateRefusals(self) -> None:
        registration = self.online()
        harness = newKey()
        authorization = self.authorize(harness)
        status, body = self.validate(registration, harness, authorization, credential=BOB)
        self.assertEqual((status, body["error"]["code"]), (403, "forbidden"))
        status, body = self.validate(registration, harness, authorization, env="nowhere")
        self.assertEqual((status, body["error"]["code"]), (404, "environment_not_found"))
        status, body = self.registry.validate(ALICE, "env-1", b'{"harness_public_key": 1}')
        self.assertEqual((status, body["error"]["code"]), (400, "invalid_request"))
        # Refused requests did not spend it.
        self.assertValidates(True, registration, harness, authorization)

    def test_reprShowsNoSecrets(self) -> None:
        self.online()
        harness = newKey()
        authorization = self.authorize(harness)
        self.assertNotIn(authorization, repr(self.registry))
        self.assertNotIn(authorization, repr(self.registry.environments()))
        self.assertNotIn(base64.b64encode(harness.x25519).decode(), repr(harness))
