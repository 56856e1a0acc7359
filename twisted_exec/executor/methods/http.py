"""``http/request`` in both dialects, around the session's one ``HttpRequester``.

0.171 adds (probed on the 0.171.0 binary):

- ``redirectPolicy``: ``follow`` (the default) or ``stop``, which returns a redirect response
  as it is (``null`` is ``invalid type: null, expected string or map``);
- header ``valueEnvVar``: the header's value is ``value`` followed by that variable of the
  executor's environment; an unset (or empty-named) variable is -32602 ``http/request header
  <name> requires executor environment variable <VAR>``. This is the ``httpHeaderEnvVars``
  capability: a harness can put a credential the executor holds into a request without ever
  seeing it.
"""

from __future__ import annotations

from typing import Any

from twisted_exec.compat import params
from twisted_exec.compat.params import (
    Field,
    boolean,
    decodeStruct,
    optional,
    sequenceOf,
    string,
    struct,
    u64,
)
from twisted_exec.compat.params171 import decode171, variant
from twisted_exec.compat.record import frozen, replace
from twisted_exec.executor.core.dialect import Dialect
from twisted_exec.executor.methods.environment import environmentOf
from twisted_exec.executor.methods.registry import Method, MethodRegistry
from twisted_exec.wire.errors import invalidParams

HTTP = "http"


@frozen
class Header171:
    name: str
    value: str
    valueEnvVar: str | None = None


_HEADER171_FIELDS = (
    Field("name", string),
    Field("value", string),
    Field("valueEnvVar", optional(string), False, seqDefault=True),
)


def _header171(value: object) -> Header171:
    return Header171(**decodeStruct(value, "HttpHeader", _HEADER171_FIELDS))


@struct(
    "HttpRequestParams",
    Field("method", string),
    Field("url", string),
    Field("headers", sequenceOf(_header171), False, seqDefault=True),
    Field("bodyBase64", optional(string), False, seqDefault=True),
    Field("timeoutMs", optional(u64), False, seqDefault=True),
    Field("redirectPolicy", variant("follow", "stop"), False, seqDefault=True),
    Field("requestId", string),
    Field("streamResponse", boolean, False, seqDefault=True),
)
@frozen
class HttpRequest171:
    method: str
    url: str
    requestId: str
    headers: list[Header171] | None = None
    bodyBase64: str | None = None
    timeoutMs: int | None = None
    redirectPolicy: str | None = None
    streamResponse: bool | None = None


def resolveHeaders(headers: list[Header171] | None, environ: Any) -> list[params.HttpHeader] | None:
    """Each header's final value, with ``valueEnvVar`` read from the executor's environment."""
    if headers is None:
        return None
    resolved = []
    for header in headers:
        value = header.value
        if header.valueEnvVar is not None:
            extra = environ.get(header.valueEnvVar) if header.valueEnvVar else None
            if extra is None:
                raise invalidParams(
                    f"http/request header {header.name} requires executor environment "
                    f"variable {header.valueEnvVar}"
                )
            value += extra
        resolved.append(params.HttpHeader(name=header.name, value=value))
    return resolved


def _request171(ctx: Any, p: HttpRequest171) -> object:
    request = params.HttpRequestParams(
        method=p.method,
        url=p.url,
        requestId=p.requestId,
        headers=resolveHeaders(p.headers, environmentOf(ctx).environ),
        bodyBase64=p.bodyBase64,
        timeoutMs=p.timeoutMs,
        streamResponse=p.streamResponse,
    )
    if p.redirectPolicy == "stop":
        request = replace(request, followRedirects=False)
    return ctx.session.resources.http.request(request)


def register(registry: MethodRegistry) -> None:
    registry.add(
        Method(
            "http/request",
            Dialect.V131,
            params.HttpRequestParams.fromJson,  # type: ignore[attr-defined]
            lambda ctx, p: ctx.session.resources.http.request(p),
            HTTP,
        )
    )
    registry.add(
        Method(
            "http/request",
            Dialect.V171,
            decode171(HttpRequest171.fromJson),  # type: ignore[attr-defined]
            _request171,
            HTTP,
            provides=("httpHeaderEnvVars",),
        )
    )


__all__ = ["Header171", "HttpRequest171", "register", "resolveHeaders"]
