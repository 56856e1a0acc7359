"""Executor registry client: ``POST {base}/cloud/executor/{id}/register`` → the relay websocket URL.

Error texts are modelled on the Codex CLI 0.131.0 executor's, because operators compare logs:

- ``executor registry configuration error: executor id is required for remote exec-server
  registration`` (and ``... executor registry base URL is required``);
- ``executor registry authentication error: executor registry bearer token environment variable
  `CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN` is not set`` (``... is empty``);
- ``executor registry authentication error: executor registry authentication failed (401
  Unauthorized): <error.message or body preview>`` (403 alike);
- ``executor registry request failed (500 Internal Server Error, <error.code>): <error.message>``,
  or ``(<status>): <body preview>`` without a JSON error body;
- ``executor registry request failed: <transport problem>``.

Unlike the reference, only configuration and authentication errors are permanent
(:class:`RegistryPermanentError`); everything else is :class:`RegistryTransientError` and the
connector retries it. Response bodies are read up to a cap and the whole exchange has a timeout on
the injected clock. The token and the returned websocket URL (which may carry a signature) never
appear in ``repr``, log lines or error messages.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote, urlsplit

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IResponse

from twisted_exec.net.httpbody import (
    bodyPreview,
    parseErrorBody,
    readCapped,
    statusText,
)
from twisted_exec.net.urls import redactUrl

log = Logger()

TOKEN_ENV = "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN"
MAX_RESPONSE_BYTES = 64 * 1024
DEFAULT_TIMEOUT = 30.0


class RegistryError(Exception):
    """Base class; ``str()`` is the operator-facing message (never holds the token)."""


class RegistryPermanentError(RegistryError):
    """Retrying cannot help: bad configuration or rejected credentials."""


class RegistryConfigError(RegistryPermanentError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"executor registry configuration error: {detail}")


class RegistryAuthError(RegistryPermanentError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"executor registry authentication error: {detail}")


class RegistryTransientError(RegistryError):
    """A failed exchange that may succeed later: transport errors, timeouts, non-auth statuses."""


class RegistryHttpError(RegistryTransientError):
    def __init__(self, status: int, code: str | None, detail: str) -> None:
        self.status = status
        self.code = code
        where = statusText(status) if code is None else f"{statusText(status)}, {code}"
        super().__init__(f"executor registry request failed ({where}): {detail}")


@dataclass(frozen=True, repr=False)
class RegistryConfig:
    """What both remote modes are configured with first: the registry; ``repr`` hides secrets.

    Every field declared ``repr=False`` (the bearer token) shows as ``<redacted>``.
    """

    baseUrl: str

    def __repr__(self) -> str:
        return redactedRepr(self)


@dataclass(frozen=True, repr=False)
class RemoteConfig(RegistryConfig):
    """Validated ``--remote``/``--executor-id`` registration inputs."""

    executorId: str
    token: str = field(repr=False)
    name: str | None = None

    @classmethod
    def fromInputs(
        cls,
        baseUrl: str,
        executorId: str,
        name: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> RemoteConfig:
        """Validate in the reference's order: token, then executor id, then base URL."""
        env = os.environ if environ is None else environ
        raw = env.get(TOKEN_ENV)
        if raw is None:
            raise RegistryAuthError(
                f"executor registry bearer token environment variable `{TOKEN_ENV}` is not set"
            )
        token = raw.strip()
        if not token:
            raise RegistryAuthError(
                f"executor registry bearer token environment variable `{TOKEN_ENV}` is empty"
            )
        ident = checkedId(executorId, "executor", RegistryConfigError)
        # The reference only finds out at request time ("builder error"); a URL that can never
        # work is a configuration error for us, so the service stops instead of retrying.
        base = checkedBaseUrl(baseUrl, "executor", RegistryConfigError)
        if any(c in token for c in "\r\n\0"):
            raise RegistryAuthError(
                f"executor registry bearer token in `{TOKEN_ENV}` contains a control character"
            )
        return cls(baseUrl=base, executorId=ident, token=token, name=name)

    @property
    def registrationUrl(self) -> str:
        return f"{self.baseUrl}/cloud/executor/{quote(self.executorId, safe='')}/register"


def redactedRepr(config: Any) -> str:
    """A config dataclass's ``repr`` with ``<redacted>`` for its hidden (``repr=False``) fields."""
    shown = (
        f"{f.name}={getattr(config, f.name)!r}" if f.repr else f"{f.name}=<redacted>"
        for f in fields(config)
    )
    return f"{type(config).__name__}({', '.join(shown)})"


def checkedId(ident: str, kind: str, error: type[RegistryError]) -> str:
    """The executor's or environment's id, stripped; ``error`` if there is none."""
    ident = ident.strip()
    if not ident:
        raise error(f"{kind} id is required for remote exec-server registration")
    return ident


def checkedBaseUrl(baseUrl: str, registry: str, error: type[RegistryError]) -> str:
    """The registry's base URL without a trailing slash; ``error`` unless absolute http(s)."""
    base = baseUrl.strip().rstrip("/")
    if not base:
        raise error(f"{registry} registry base URL is required")
    parts = urlsplit(base)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise error(f"{registry} registry base URL must be an absolute http(s) URL, got {base!r}")
    return base


@dataclass(frozen=True)
class Registration:
    """A successful registration; ``repr`` hides the URL's query (it may hold a signature)."""

    executorId: str
    url: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Registration(executorId={self.executorId!r}, url={redactUrl(self.url)!r})"


class HTTPPoster(Protocol):
    """The slice of ``treq.client.HTTPClient`` we use (``treq.testing.StubTreq`` fits too)."""

    def post(self, url: str, *args: Any, **kwargs: Any) -> Deferred[Any]: ...


#: Our executors send ``--name`` in this header (percent-encoded UTF-8) so that a rendezvous
#: can list it; the reference sends no name, and a registry that does not know it ignores it.
NAME_HEADER = "X-Codex-Executor-Name"


def registrationHeaders(config: RemoteConfig) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {config.token}", "Accept": "*/*"}
    if config.name:
        headers[NAME_HEADER] = quote(config.name, safe=" ")
    return headers


ConfigT = TypeVar("ConfigT")
ResultT = TypeVar("ResultT")


class RegistryCalls(Generic[ConfigT]):
    """What both registry clients (0.131's and 0.171's environments) share: the HTTP client,
    the injected clock, the config, and one deadline per call, each call one attempt."""

    #: The deadline of a call when none is given.
    defaultTimeout = DEFAULT_TIMEOUT

    def __init__(
        self,
        http: HTTPPoster,
        clock: IReactorTime,
        config: ConfigT,
        *,
        timeout: float | None = None,
        maxResponseBytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self._http = http
        self._clock = clock
        self.config = config
        self._timeout = self.defaultTimeout if timeout is None else timeout
        self._maxResponseBytes = maxResponseBytes

    def _requestFailed(self, detail: str) -> RegistryTransientError:
        """The transient error of a failed call, worded as this registry's operators read it."""
        return RegistryTransientError(f"executor registry request failed: {detail}")

    def _bounded(self, attempt: Deferred[ResultT]) -> Deferred[ResultT]:
        """``attempt`` cancelled at the deadline; failures other than ours become transient."""
        timedOut: list[bool] = []

        def onTimeout() -> None:
            timedOut.append(True)
            attempt.cancel()

        call: IDelayedCall = self._clock.callLater(self._timeout, onTimeout)

        def finish(result: ResultT | Failure) -> ResultT | Failure:
            if call.active():
                call.cancel()
            if isinstance(result, Failure):
                if timedOut:  # whatever the cancelled request failed with
                    return Failure(self._requestFailed(f"no response within {self._timeout:g} s"))
                if not result.check(RegistryError):
                    return Failure(self._requestFailed(describeFailure(result)))
            return result

        return attempt.addBoth(finish)


class RegistryClient(RegistryCalls[RemoteConfig]):
    """Registers one executor; each :meth:`register` call is one attempt (no retries here)."""

    def register(self) -> Deferred[Registration]:
        """One registration attempt, bounded by the timeout; fails with a :class:`RegistryError`."""
        return self._bounded(Deferred.fromCoroutine(self._register()))

    async def _register(self) -> Registration:
        config = self.config
        response: IResponse = await self._http.post(
            config.registrationUrl,
            headers=registrationHeaders(config),
        )
        body, truncated = await readCapped(response, self._maxResponseBytes)
        status = response.code
        if 200 <= status < 300:
            if truncated:
                raise RegistryTransientError(
                    "executor registry request failed: response body exceeds "
                    f"{self._maxResponseBytes} bytes"
                )
            return parseRegistration(body)
        code, message = parseErrorBody(body)
        if status in (401, 403):
            detail = message if message is not None else bodyPreview(body)
            raise RegistryAuthError(
                f"executor registry authentication failed ({statusText(status)}): {detail}"
            )
        if message is not None:
            raise RegistryHttpError(status, code, message)
        raise RegistryHttpError(status, code, bodyPreview(body))


def describeFailure(failure: Failure) -> str:
    """A short, secret-free description of a transport failure."""
    value = failure.value
    inner = getattr(value, "reasons", None)  # twisted.web's ResponseFailed / RequestNotSent
    if inner:
        value = inner[0].value
    text = str(value) or type(value).__name__
    return f"error sending request ({type(value).__name__}: {text})"


def parseRegistration(body: bytes) -> Registration:
    try:
        data = json.loads(body)
    except ValueError as e:
        raise RegistryTransientError(
            f"executor registry request failed: error decoding response body: {e}"
        ) from None
    if not isinstance(data, dict):
        raise RegistryTransientError(
            "executor registry request failed: error decoding response body: not a JSON object"
        )
    for key in ("executor_id", "url"):
        if key not in data:
            raise RegistryTransientError(
                "executor registry request failed: error decoding response body: "
                f"missing field `{key}`"
            )
        if not isinstance(data[key], str):
            raise RegistryTransientError(
                "executor registry request failed: error decoding response body: "
                f"`{key}` is not a string"
            )
    url: str = data["url"]
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("ws", "wss"):
        raise RegistryTransientError(
            "executor registry request failed: registry returned a non-websocket url "
            f"({redactUrl(url)})"
        )
    return Registration(executorId=data["executor_id"], url=url)
