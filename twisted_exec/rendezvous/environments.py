"""The environment registry of Codex 0.171, sans-IO: register, connect, validate.

A 0.171 executor does not register an *executor* (0.131's ``/cloud/executor/{id}/register``) but
an *environment*, with the static Noise public key every harness will pin; every relay stream is
then end to end encrypted between harness and executor, and the rendezvous only routes
ciphertext. The registry's part in that handshake is the *harness key authorization*:

1. ``register`` (executor, bearer): ``{security_profile, executor_public_key}`` →
   ``{environment_id, url, security_profile, executor_registration_id}``. The key is stored with
   the environment; ``url`` is the executor's signed websocket URL (``?role=environment``).
2. ``connect`` (harness, bearer): ``{harness_public_key}`` → the same fields plus
   ``executor_public_key`` (the harness pins it) and ``harness_key_authorization``: a random,
   single-use, expiring token bound to this harness key and this registration, which the harness
   carries in its first Noise message; ``url`` is a signed websocket URL (``?role=harness``).
3. ``validate`` (executor, bearer, once per handshake): ``{executor_registration_id,
   harness_public_key, harness_key_authorization}`` → ``{valid}``. Noise proved the harness holds
   the key; the registry says whether that key may use this executor. The authorization is spent
   by the first validation that names it, whatever the answer.

Tenancy: an environment id belongs to the credential that first registered it. Another
credential gets ``409 environment_id_taken`` (the 0.171 executor gives up), and the holder is
never displaced. The holder's own credential re-registering with the same key keeps the
registration id (an executor re-registers whenever its websocket URL is refused); with another
key it replaces the registration, unless an executor of the current registration is connected:
then ``503 registration_conflict``, which the 0.171 executor retries with backoff until the
connected one is gone (two executors started with one id do not take turns displacing each
other).

Errors use the cloud's body, ``{"error": {"code", "message"}}``, with the statuses 0.171 reacts
to: the harness retries 5xx, 408, 429 and ``409 environment_offline`` (registered, but no executor
connected now); the executor retries only ``503 registration_conflict``.

Every table here has a bound: grants expire, are spent on use, and are capped per environment
and in total (``429`` beyond, which the harness retries).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IReactorTime

from twisted_exec.rendezvous.environment_requests import (
    MLKEM768_KEY_BYTES,
    NOISE_SUITE,
    SECURITY_PROFILE,
    X25519_KEY_BYTES,
    NoisePublicKey,
    RegistryError,
    Reply,
    parseBody,
    parsePublicKey,
    string,
)
from twisted_exec.rendezvous.registry import executorIdProblem

__all__ = [
    "MLKEM768_KEY_BYTES",
    "NOISE_SUITE",
    "SECURITY_PROFILE",
    "X25519_KEY_BYTES",
    "Environment",
    "EnvironmentRegistry",
    "NoisePublicKey",
    "RegistryError",
    "parseBody",
    "parsePublicKey",
]

AUTHORIZATION_TTL = 60.0
MAX_GRANTS_PER_ENVIRONMENT = 256
MAX_GRANTS = 65536

MintUrl = Callable[[str, str], str]  # (environment id, registration id) -> websocket URL


def environmentIdProblem(environmentId: str) -> str | None:
    problem = executorIdProblem(environmentId)
    return None if problem is None else problem.replace("executor id", "environment id")


@dataclass
class Environment:
    """One registered environment: its owner, and its current registration."""

    environmentId: str
    owner: str  # opaque credential id (never the token itself)
    registrationId: str
    executorKey: NoisePublicKey
    registeredAt: float
    registrations: int = 1
    connectedRegistration: str | None = None  # registration id of the connected executor


@dataclass(frozen=True)
class _Grant:
    environmentId: str
    registrationId: str
    harnessKey: NoisePublicKey
    expiresAt: float


def _digest(authorization: str) -> bytes:
    """Grants are looked up by a digest, so timing cannot reveal a stored token's bytes."""
    return hashlib.sha256(authorization.encode("utf-8", "surrogatepass")).digest()


class EnvironmentRegistry:
    """The environments, their keys and the outstanding harness key authorizations."""

    def __init__(
        self,
        clock: IReactorTime,
        *,
        authorizationTtl: float = AUTHORIZATION_TTL,
        maxGrantsPerEnvironment: int = MAX_GRANTS_PER_ENVIRONMENT,
        maxGrants: int = MAX_GRANTS,
    ) -> None:
        self._clock = clock
        self.authorizationTtl = authorizationTtl
        self.maxGrantsPerEnvironment = maxGrantsPerEnvironment
        self.maxGrants = maxGrants
        self._environments: dict[str, Environment] = {}
        self._grants: dict[bytes, _Grant] = {}  # digest -> grant, oldest first
        #: ``(call, status)`` -> how many: what the registry answered so far (tests, metrics).
        self.answers: Counter[tuple[str, int]] = Counter()

    def __repr__(self) -> str:
        return f"<EnvironmentRegistry of {len(self._environments)} environment(s)>"

    def environment(self, environmentId: str) -> Environment | None:
        return self._environments.get(environmentId)

    def environments(self) -> list[Environment]:
        return sorted(self._environments.values(), key=lambda e: e.environmentId)

    def pendingAuthorizations(self, environmentId: str | None = None) -> int:
        self._expire()
        return sum(1 for g in self._grants.values() if environmentId in (None, g.environmentId))

    # -- the three calls ---------------------------------------------------------------------

    def register(self, credential: str, environmentId: str, body: bytes, mintUrl: MintUrl) -> Reply:
        return self._count("register", self._register(credential, environmentId, body, mintUrl))

    def connect(self, credential: str, environmentId: str, body: bytes, mintUrl: MintUrl) -> Reply:
        return self._count("connect", self._connect(credential, environmentId, body, mintUrl))

    def validate(self, credential: str, environmentId: str, body: bytes) -> Reply:
        return self._count("validate", self._validate(credential, environmentId, body))

    def _count(self, call: str, reply: Reply) -> Reply:
        self.answers[call, reply[0]] += 1
        if call == "validate" and reply[0] == 200:
            self.answers["valid" if reply[1]["valid"] else "invalid", 200] += 1
        return reply

    def _register(
        self, credential: str, environmentId: str, body: bytes, mintUrl: MintUrl
    ) -> Reply:
        try:
            self._checkId(environmentId)
            request = parseBody(body)
            profile = string(request, "security_profile")
            if profile != SECURITY_PROFILE:
                raise RegistryError(
                    400,
                    "unsupported_security_profile",
                    f"security profile `{profile}` is not supported; use `{SECURITY_PROFILE}`",
                )
            key = parsePublicKey(request.get("executor_public_key"), "executor_public_key")
            env = self._claim(credential, environmentId, key)
        except RegistryError as e:
            return e.reply()
        return 200, _urlReply(env, mintUrl)

    def _connect(self, credential: str, environmentId: str, body: bytes, mintUrl: MintUrl) -> Reply:
        try:
            self._checkId(environmentId)
            request = parseBody(body)
            key = parsePublicKey(request.get("harness_public_key"), "harness_public_key")
            env = self._known(environmentId)
            if env.connectedRegistration != env.registrationId:
                raise RegistryError(
                    409,
                    "environment_offline",
                    f"environment {environmentId!r} has no executor connected",
                )
            authorization = self._grant(env, key)
        except RegistryError as e:
            return e.reply()
        return 200, {
            **_urlReply(env, mintUrl),
            "executor_public_key": env.executorKey.toJson(),
            "harness_key_authorization": authorization,
        }

    def _validate(self, credential: str, environmentId: str, body: bytes) -> Reply:
        try:
            self._checkId(environmentId)
            request = parseBody(body)
            registrationId = string(request, "executor_registration_id")
            authorization = string(request, "harness_key_authorization")
            key = parsePublicKey(request.get("harness_public_key"), "harness_public_key")
            env = self._known(environmentId)
            if not hmac.compare_digest(env.owner.encode(), credential.encode()):
                raise RegistryError(
                    403, "forbidden", f"environment {environmentId!r} is not registered by you"
                )
        except RegistryError as e:
            return e.reply()
        self._expire()
        grant = self._grants.pop(_digest(authorization), None)  # spent, whatever the answer
        valid = (
            grant is not None
            and grant.expiresAt > self._clock.seconds()
            and grant.environmentId == environmentId
            and grant.registrationId == registrationId == env.registrationId
            and grant.harnessKey == key
        )
        return 200, {"valid": valid}

    # -- connection state (from the executor's websocket) -------------------------------------

    def registrationValid(self, environmentId: str, registrationId: str) -> bool:
        env = self._environments.get(environmentId)
        return env is not None and env.registrationId == registrationId

    def executorConnected(self, environmentId: str, registrationId: str) -> None:
        env = self._environments.get(environmentId)
        if env is not None:
            env.connectedRegistration = registrationId

    def executorLost(self, environmentId: str, registrationId: str) -> None:
        env = self._environments.get(environmentId)
        if env is not None and env.connectedRegistration == registrationId:
            env.connectedRegistration = None

    # -- internals ----------------------------------------------------------------------------

    def _checkId(self, environmentId: str) -> None:
        problem = environmentIdProblem(environmentId)
        if problem is not None:
            raise RegistryError(400, "invalid_environment_id", problem)

    def _known(self, environmentId: str) -> Environment:
        env = self._environments.get(environmentId)
        if env is None:
            raise RegistryError(
                404, "environment_not_found", f"environment {environmentId!r} is not registered"
            )
        return env

    def _claim(self, credential: str, environmentId: str, key: NoisePublicKey) -> Environment:
        now = self._clock.seconds()
        env = self._environments.get(environmentId)
        if env is None:
            env = Environment(environmentId, credential, _newRegistrationId(), key, now)
            self._environments[environmentId] = env
            return env
        if not hmac.compare_digest(env.owner.encode(), credential.encode()):
            raise RegistryError(
                409,
                "environment_id_taken",
                f"environment {environmentId!r} is registered by another credential",
            )
        if env.executorKey != key:
            if env.connectedRegistration is not None:
                raise RegistryError(
                    503,
                    "registration_conflict",
                    f"environment {environmentId!r} is served by a connected executor",
                )
            env.registrationId = _newRegistrationId()
            env.executorKey = key
            self._dropGrants(environmentId)
        # else: the same executor (its key is per process) asking for a new URL.
        env.registeredAt = now
        env.registrations += 1
        return env

    def _grant(self, env: Environment, key: NoisePublicKey) -> str:
        self._expire()
        mine = sum(1 for g in self._grants.values() if g.environmentId == env.environmentId)
        if mine >= self.maxGrantsPerEnvironment or len(self._grants) >= self.maxGrants:
            raise RegistryError(
                429, "too_many_pending_authorizations", "too many pending harness connections"
            )
        authorization = secrets.token_urlsafe(32)
        self._grants[_digest(authorization)] = _Grant(
            env.environmentId,
            env.registrationId,
            key,
            self._clock.seconds() + self.authorizationTtl,
        )
        return authorization

    def _expire(self) -> None:
        now = self._clock.seconds()
        # Insertion order is expiry order (one TTL): stop at the first live grant.
        for digest, grant in list(self._grants.items()):
            if grant.expiresAt > now:
                break
            del self._grants[digest]

    def _dropGrants(self, environmentId: str) -> None:
        for digest in [d for d, g in self._grants.items() if g.environmentId == environmentId]:
            del self._grants[digest]


def _newRegistrationId() -> str:
    return "reg-" + secrets.token_hex(16)


def _urlReply(env: Environment, mintUrl: MintUrl) -> dict[str, Any]:
    """What ``register`` and ``connect`` both answer: the registration and a fresh signed URL."""
    return {
        "environment_id": env.environmentId,
        "url": mintUrl(env.environmentId, env.registrationId),
        "security_profile": SECURITY_PROFILE,
        "executor_registration_id": env.registrationId,
    }
