"""Environment registry client (Codex 0.171's encrypted remote mode, ``--environment-id``).

- ``POST {base}/cloud/environment/{id}/register`` with
  ``{"security_profile":"noise_hybrid_ik_v1","executor_public_key":KEY}`` (the exact body the
  0.171 binary sends, keys in that order) and ``Authorization: Bearer <token>``; the answer
  ``{"environment_id","url","security_profile","executor_registration_id"}`` must name the same
  environment and profile (0.171 refuses anything else); extra fields are ignored.
- ``POST {base}/cloud/environment/{id}/validate`` with
  ``{"executor_registration_id","harness_public_key":KEY,"harness_key_authorization"}`` once
  per stream handshake, plus the ``X-Codex-Noise-Stream-Id`` header the 0.171 binary sends;
  ``{"valid": true}`` accepts the harness, anything else (or any failure) refuses it. The
  request holds a short-lived authorization: neither it nor the response body is ever logged.

Errors keep the shape of the 0.131 client's (``registry.py``): configuration and 401/403 are
permanent, everything else transient and retried by the connector.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.iweb import IResponse

from twisted_exec.executor.transports.relay.registry import (
    RegistryCalls,
    RegistryConfig,
    RegistryPermanentError,
    RegistryTransientError,
    checkedBaseUrl,
    checkedId,
)
from twisted_exec.net.httpbody import bodyPreview, parseErrorBody, readCapped, statusText
from twisted_exec.net.urls import redactUrl
from twisted_exec.wire import noise

log = Logger()

#: ``CODEX_API_KEY`` first, as the 0.171 binary (which ignores the other); then the variable of
#: our ``--executor-id`` mode. ``--registration-bearer-stdin`` beats both (as in 0.171).
TOKEN_ENVS = ("CODEX_API_KEY", "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN")
#: 0.171's registry client timeout (``client_api.rs``).
DEFAULT_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 64 * 1024


class EnvironmentConfigError(RegistryPermanentError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"environment registry configuration error: {detail}")


class EnvironmentAuthError(RegistryPermanentError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"environment registry authentication error: {detail}")


class EnvironmentRequestError(RegistryTransientError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"environment registry request failed: {detail}")


@dataclass(frozen=True, repr=False)
class EnvironmentConfig(RegistryConfig):
    """Validated ``--remote``/``--environment-id`` inputs."""

    environmentId: str
    token: str = field(repr=False)
    name: str | None = None

    @classmethod
    def fromInputs(
        cls,
        baseUrl: str,
        environmentId: str,
        name: str | None = None,
        *,
        token: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> EnvironmentConfig:
        """``token`` comes from ``--registration-bearer-stdin``; else from the environment."""
        env = os.environ if environ is None else environ
        source = "--registration-bearer-stdin"
        if token is None:
            for variable in TOKEN_ENVS:
                if env.get(variable, "").strip():
                    token, source = env[variable], f"`{variable}`"
                    break
        if token is None or not token.strip():
            names = " or ".join(f"`{v}`" for v in TOKEN_ENVS)
            raise EnvironmentAuthError(
                "environment registry bearer token is required (set "
                f"{names}, or pass --registration-bearer-stdin)"
            )
        token = token.strip()
        if any(c in token for c in "\r\n\0"):
            raise EnvironmentAuthError(
                f"environment registry bearer token from {source} contains a control character"
            )
        ident = checkedId(environmentId, "environment", EnvironmentConfigError)
        base = checkedBaseUrl(baseUrl, "environment", EnvironmentConfigError)
        return cls(baseUrl=base, environmentId=ident, token=token, name=name)

    def url(self, op: str) -> str:
        return f"{self.baseUrl}/cloud/environment/{quote(self.environmentId, safe='')}/{op}"


@dataclass(frozen=True)
class EnvironmentRegistration:
    """The registry's answer; ``repr`` hides the URL's query (it may carry a signature)."""

    environmentId: str
    url: str = field(repr=False)
    securityProfile: str
    executorRegistrationId: str

    def __repr__(self) -> str:
        return (
            f"EnvironmentRegistration(environmentId={self.environmentId!r}, "
            f"url={redactUrl(self.url)!r}, executorRegistrationId="
            f"{self.executorRegistrationId!r})"
        )


def registrationBody(publicKey: noise.NoisePublicKey) -> bytes:
    """The register body, byte for byte as 0.171 sends it (compact JSON, this key order)."""
    return json.dumps(
        {"security_profile": noise.SECURITY_PROFILE, "executor_public_key": publicKey.toJson()},
        separators=(",", ":"),
    ).encode()


def parseRegistration(body: bytes, environmentId: str) -> EnvironmentRegistration:
    try:
        data = json.loads(body)
    except ValueError as e:
        raise EnvironmentRequestError(f"error decoding response body: {e}") from None
    if not isinstance(data, dict):
        raise EnvironmentRequestError("error decoding response body: not a JSON object")
    fields = ("environment_id", "url", "security_profile", "executor_registration_id")
    for key in fields:
        if not isinstance(data.get(key), str):
            raise EnvironmentRequestError(
                f"error decoding response body: missing or non-string field `{key}`"
            )
    if data["environment_id"] != environmentId:
        raise EnvironmentRequestError("environment registry returned a different environment id")
    if data["security_profile"] != noise.SECURITY_PROFILE:
        raise EnvironmentRequestError(
            "environment registry returned unsupported security profile "
            f"`{data['security_profile'][:64]}`"
        )
    url: str = data["url"]
    if urlsplit(url).scheme.lower() not in ("ws", "wss"):
        raise EnvironmentRequestError(
            f"environment registry returned a non-websocket url ({redactUrl(url)})"
        )
    if not data["executor_registration_id"].strip():
        raise EnvironmentRequestError("environment registry returned an empty registration id")
    return EnvironmentRegistration(
        environmentId=data["environment_id"],
        url=url,
        securityProfile=data["security_profile"],
        executorRegistrationId=data["executor_registration_id"],
    )


class EnvironmentRegistryClient(RegistryCalls[EnvironmentConfig]):
    """One environment's registry calls; each call is one bounded attempt (no retries here)."""

    defaultTimeout = DEFAULT_TIMEOUT

    def _requestFailed(self, detail: str) -> RegistryTransientError:
        return EnvironmentRequestError(detail)

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.config.token}",
            "Content-Type": "application/json",
            "Accept": "*/*",
        }

    def register(self, publicKey: noise.NoisePublicKey) -> Deferred[EnvironmentRegistration]:
        """Register this process's executor key for the configured environment."""
        return self._bounded(Deferred.fromCoroutine(self._register(publicKey)))

    async def _register(self, publicKey: noise.NoisePublicKey) -> EnvironmentRegistration:
        response: IResponse = await self._http.post(
            self.config.url("register"), data=registrationBody(publicKey), headers=self._headers()
        )
        body, truncated = await readCapped(response, self._maxResponseBytes)
        status = response.code
        if 200 <= status < 300:
            if truncated:
                raise EnvironmentRequestError(
                    f"response body exceeds {self._maxResponseBytes} bytes"
                )
            return parseRegistration(body, self.config.environmentId)
        code, message = parseErrorBody(body)
        detail = message if message is not None else bodyPreview(body)
        if status in (401, 403):
            raise EnvironmentAuthError(
                f"environment registry authentication failed ({statusText(status)}): {detail}"
            )
        where = statusText(status) if code is None else f"{statusText(status)}, {code}"
        raise EnvironmentRequestError(f"({where}): {detail}")

    def validate(
        self,
        executorRegistrationId: str,
        harnessKey: noise.NoisePublicKey,
        authorization: str,
        streamId: str,
    ) -> Deferred[bool]:
        """``True`` only for a 2xx ``{"valid": true}``; errors fail the Deferred (never logged)."""
        return self._bounded(
            Deferred.fromCoroutine(
                self._validate(executorRegistrationId, harnessKey, authorization, streamId)
            )
        )

    async def _validate(
        self,
        executorRegistrationId: str,
        harnessKey: noise.NoisePublicKey,
        authorization: str,
        streamId: str,
    ) -> bool:
        body = json.dumps(
            {
                "executor_registration_id": executorRegistrationId,
                "harness_public_key": harnessKey.toJson(),
                "harness_key_authorization": authorization,
            },
            separators=(",", ":"),
        ).encode()
        headers = {**self._headers(), "X-Codex-Noise-Stream-Id": streamId}
        response: IResponse = await self._http.post(
            self.config.url("validate"), data=body, headers=headers
        )
        raw, truncated = await readCapped(response, self._maxResponseBytes)
        if not 200 <= response.code < 300:
            # The body might echo the authorization: report the status only.
            log.warn(
                "environment registry harness key validation failed ({status})",
                status=statusText(response.code),
            )
            return False
        if truncated:
            return False
        try:
            data = json.loads(raw)
        except ValueError:
            return False
        return isinstance(data, dict) and data.get("valid") is True
