"""``GET /cloud/executors``: the executors a rendezvous knows (for ``codex-exec ls-executors``)."""

from __future__ import annotations

import json
from typing import Any

from treq.client import HTTPClient
from twisted.web.client import Agent

from twisted_exec.harness.cloud_http import checkBearerAccepted, exchange, httpBase
from twisted_exec.harness.describe import describeConnectError
from twisted_exec.harness.errors import (
    HarnessError,
)
from twisted_exec.net.httpbody import parseErrorBody
from twisted_exec.net.quietweb import QuietConnectionPool

MAX_LISTING_BYTES = 4 * 1024 * 1024


async def listExecutors(
    reactor: Any, rendezvousUrl: str, token: str | None, *, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """The ``executors`` array of the listing; typed errors as :func:`connectHarness`'s."""
    base = httpBase(rendezvousUrl)
    http = HTTPClient(Agent(reactor, pool=QuietConnectionPool(reactor, persistent=False)))
    headers: dict[bytes | str, bytes | str] = {"Authorization": f"Bearer {token}"} if token else {}
    response, body = await exchange(
        reactor,
        lambda: http.get(f"{base}/cloud/executors", headers=headers),
        MAX_LISTING_BYTES,
        timeout,
        lambda e: f"cannot reach the rendezvous at {base}: {describeConnectError(e, base)}",
    )
    checkBearerAccepted(response, body, f"the rendezvous at {base}")
    if response.code != 200:
        _, message = parseErrorBody(body)
        raise HarnessError(
            f"the rendezvous at {base} answered {response.code} to the executor listing"
            + (f": {message}" if message else "")
        )
    try:
        executors = json.loads(body)["executors"]
    except (ValueError, KeyError, TypeError):
        raise HarnessError(
            f"the rendezvous at {base} sent an unreadable executor listing"
        ) from None
    return list(executors)
