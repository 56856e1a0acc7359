"""One HTTP exchange with a rendezvous's ``/cloud/...`` API, as the harness makes them.

The executor listing (``listing``) and 0.171's environment connect (``environment``) both send a
request with a bearer, read a capped body under one timeout and turn the failures into the
harness's typed errors; the parts they share are here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

from twisted_exec.harness.errors import AuthenticationError, RendezvousUnreachableError
from twisted_exec.net.httpbody import parseErrorBody, readCapped


def httpBase(rendezvousUrl: str) -> str:
    """The rendezvous base URL as ``http(s)://`` (``ws(s)://`` accepted too)."""
    url = rendezvousUrl.strip().rstrip("/")
    for old, new in (("ws://", "http://"), ("wss://", "https://")):
        if url.startswith(old):
            return new + url[len(old) :]
    return url


async def exchange(
    reactor: Any,
    send: Callable[[], Deferred[Any]],
    maxBytes: int,
    timeout: float,
    unreachable: Callable[[Exception], str],
) -> tuple[Any, bytes]:
    """The response of ``send()`` and its body (at most ``maxBytes``), each within ``timeout``;
    any failure on the way is a :class:`RendezvousUnreachableError` of ``unreachable(error)``."""
    try:
        response: Any = await send().addTimeout(timeout, reactor)
        body, _ = await readCapped(response, maxBytes).addTimeout(timeout, reactor)
    except Exception as e:
        raise RendezvousUnreachableError(unreachable(e)) from None
    return response, body


def checkBearerAccepted(response: Any, body: bytes, who: str) -> None:
    """A 401 or 403 from ``who`` (``the rendezvous at URL``) is an :class:`AuthenticationError`."""
    if response.code in (401, 403):
        _, message = parseErrorBody(body)
        raise AuthenticationError(
            f"{who} refused the bearer token ({response.code}): {message or 'unauthorized'}"
        )
