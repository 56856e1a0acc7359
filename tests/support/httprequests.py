"""http/request test set-up: params by keyword, the RpcError of a failed Deferred, and a test
case with an :class:`~.HttpRequester` and the loopback test site (``testing/httpsite.py``), torn
down so that no connection or timer outlives a test.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from twisted_exec.compat.params import HttpHeader, HttpRequestParams
from twisted_exec.executor.resources.http_request import DELTA_METHOD, HttpRequester
from twisted_exec.testing.httpsite import makeSite, serverIdle
from twisted_exec.wire.errors import RpcError

reactor: Any = _reactor


def P(
    method: str = "GET", url: str = "http://127.0.0.1:1/", requestId: str = "r", **kw: Any
) -> HttpRequestParams:
    headers = kw.pop("headers", None)
    if headers is not None:
        headers = [HttpHeader(n, v) for n, v in headers]
    return HttpRequestParams(method=method, url=url, requestId=requestId, headers=headers, **kw)


def rpcMessage(d: Deferred[Any]) -> tuple[int, str]:
    failures: list[Failure] = []
    d.addErrback(failures.append)
    assert failures, "expected an error"
    err = failures[0].value
    assert isinstance(err, RpcError), failures[0]
    return err.code, err.message


class LoopbackCase(TestCase):
    """An HttpRequester against the test site on 127.0.0.1; ``request``/``stream`` run one."""

    timeout = 60

    def setUp(self) -> None:
        self.site, self.resource = makeSite(reactor)
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        self.hostLine = f"host: 127.0.0.1:{self.port.getHost().port}"
        self.events: list[Any] = []
        self.requester = HttpRequester(reactor, self.notify)
        self.addCleanup(self.cleanUp)

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.assertEqual(method, DELTA_METHOD)
        self.events.append(params)

    async def cleanUp(self) -> None:
        self.requester.cancelAll()
        self.resource.cancelCalls()
        if self.requester.pool is not None:
            await self.requester.pool.closeCachedConnections()
        for channel in list(self.site.connections):  # type: ignore[attr-defined]
            channel.transport.abortConnection()
        await serverIdle(self.site).addTimeout(10, reactor)
        await self.port.stopListening()

    def request(self, **kw: Any) -> Deferred[dict[str, Any]]:
        if "url" in kw and kw["url"].startswith("/"):
            kw["url"] = self.base + kw["url"]
        return self.requester.request(P(**kw)).addTimeout(30, reactor)

    async def stream(self, **kw: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run a streamed request; record the reply's place among the notifications."""
        requestId = kw.setdefault("requestId", "s")

        def replied(result: dict[str, Any]) -> dict[str, Any]:
            self.events.append("RESULT")
            return result

        result = await self.request(streamResponse=True, **kw).addCallback(replied)
        while not any(isinstance(e, dict) and e["done"] for e in self.events):
            await deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(self.events[0], "RESULT")
        deltas = [e for e in self.events[1:] if e["requestId"] == requestId]
        self.assertEqual([d["seq"] for d in deltas], list(range(1, len(deltas) + 1)))
        return result, deltas

    def decode(self, result: dict[str, Any]) -> Any:
        return json.loads(base64.b64decode(result["bodyBase64"]))

    async def _settled(self, d: Deferred[Any]) -> Deferred[Any]:
        outcome: list[Any] = []
        d.addBoth(outcome.append)
        while not outcome:
            await deferLater(reactor, 0.01, lambda: None)
        failed: Deferred[Any] = Deferred()
        failed.errback(outcome[0]) if isinstance(outcome[0], Failure) else failed.callback(
            outcome[0]
        )
        return failed
