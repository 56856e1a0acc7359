"""http/request against a real twisted.web loopback server: streamed responses (``streamResponse``:
deltas in order, timeouts, resets, cancel, pause, a 50 MB stream in bounded memory).
"""

from __future__ import annotations

import base64
import resource
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from tests.support.httprequests import LoopbackCase, P, rpcMessage
from twisted_exec.executor.resources.http_request import HttpRequester
from twisted_exec.testing.httpsite import PATTERN, patternBytes, serverIdle

reactor: Any = _reactor


class StreamingTests(LoopbackCase):
    async def test_streamChunked(self) -> None:
        result, deltas = await self.stream(url="/chunked?count=3&size=8&delay=0.05")
        self.assertEqual((result["status"], result["bodyBase64"]), (200, ""))
        self.assertEqual(
            deltas,
            [
                {
                    "requestId": "s",
                    "seq": 1,
                    "deltaBase64": "QUFBQUFBQUE=",
                    "done": False,
                    "error": None,
                },
                {
                    "requestId": "s",
                    "seq": 2,
                    "deltaBase64": "QkJCQkJCQkI=",
                    "done": False,
                    "error": None,
                },
                {
                    "requestId": "s",
                    "seq": 3,
                    "deltaBase64": "Q0NDQ0NDQ0M=",
                    "done": False,
                    "error": None,
                },
                {"requestId": "s", "seq": 4, "deltaBase64": "", "done": True, "error": None},
            ],
        )
        self.assertEqual(self.requester.activeCount, 0)

    async def test_streamBodyInSameReadAsHeaders(self) -> None:
        """The reply still precedes the first delta when the body arrives with the headers."""
        result, deltas = await self.stream(url="/status/404")
        self.assertEqual(result["status"], 404)
        self.assertEqual(
            [(d["deltaBase64"], d["done"]) for d in deltas],
            [("c3RhdHVzIDQwNA==", False), ("", True)],
        )

    async def test_stream204(self) -> None:
        _, deltas = await self.stream(url="/status/204")
        self.assertEqual(
            deltas, [{"requestId": "s", "seq": 1, "deltaBase64": "", "done": True, "error": None}]
        )

    async def test_streamTimeout(self) -> None:
        _, deltas = await self.stream(url="/stall", timeoutMs=200)
        self.assertEqual(
            [(d["deltaBase64"], d["done"], d["error"]) for d in deltas],
            [("eHh4eHh4eHh4eA==", False, None), ("", True, "error decoding response body")],
        )

    async def test_streamReset(self) -> None:
        for path in ("/reset", "/closeearly"):
            self.events.clear()
            _, deltas = await self.stream(url=path, requestId=path)
            self.assertEqual(
                [(d["deltaBase64"], d["done"], d["error"]) for d in deltas],
                [("MDEyMzQ1Njc4OQ==", False, None), ("", True, "error decoding response body")],
            )

    async def test_duplicateActiveRequestId(self) -> None:
        first = await self.request(
            url="/chunked?count=2&size=1&delay=0.1", requestId="dup", streamResponse=True
        )
        self.assertEqual(first["status"], 200)
        d = self.request(url="/echo", requestId="dup", streamResponse=True)
        self.assertEqual(
            rpcMessage(await self._settled(d)),
            (-32602, "http/request streamResponse requestId `dup` is already active"),
        )
        # A buffered request with the same id just runs.
        buffered = await self.request(url="/echo", requestId="dup")
        self.assertEqual(buffered["status"], 200)
        while not any(e["done"] for e in self.events):
            await deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(len([e for e in self.events if e["done"]]), 1)
        # Once the stream ended the id can be used again.
        self.events.clear()
        _, deltas = await self.stream(url="/status/204", requestId="dup")
        self.assertEqual(len(deltas), 1)

    async def test_cancelAllStopsStreams(self) -> None:
        await self.request(
            url="/chunked?count=50&size=4&delay=0.02", requestId="c", streamResponse=True
        )
        while not self.events:
            await deferLater(reactor, 0.01, lambda: None)
        self.requester.cancelAll()
        seen = len(self.events)
        await serverIdle(self.site).addTimeout(10, reactor)
        await deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(len(self.events), seen)
        self.assertFalse(any(e["done"] for e in self.events))
        self.assertEqual(self.requester.activeCount, 0)

    async def test_pauseHoldsDeltas(self) -> None:
        """While paused, only bytes read before the pause (at most one socket read) come out."""
        self.requester.pauseProducing()
        await self.request(url="/bytes?n=1000000", requestId="p", streamResponse=True)
        await deferLater(reactor, 0.2, lambda: None)
        heldBack = sum(len(base64.b64decode(e["deltaBase64"])) for e in self.events)
        self.assertLessEqual(heldBack, 65536 * 2)
        self.assertFalse(any(e["done"] for e in self.events))
        self.requester.resumeProducing()
        while not any(e["done"] for e in self.events):
            await deferLater(reactor, 0.01, lambda: None)
        body = b"".join(base64.b64decode(e["deltaBase64"]) for e in self.events)
        self.assertTrue(body == patternBytes(1000000), "streamed body differs")

    async def test_streamFiftyMegabytesBoundedMemory(self) -> None:
        """50 MB streamed: never held whole; report the largest buffer and the RSS growth."""
        total = 50 * 1000 * 1000
        received = 0
        largest = 0
        done: Deferred[None] = Deferred()
        check = PATTERN * 2

        def notify(method: str, params: dict[str, Any]) -> None:
            nonlocal received, largest
            data = base64.b64decode(params["deltaBase64"])
            # Spot-check content: the pattern repeats every 64 KiB.
            offset = received % len(PATTERN)
            self.assertEqual(data[:1024], check[offset : offset + min(1024, len(data))])
            received += len(data)
            largest = max(largest, len(data))
            if params["done"]:
                done.callback(None)

        requester = HttpRequester(reactor, notify)
        self.addCleanup(requester.cancelAll)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        await requester.request(
            P(url=f"{self.base}/bytes?n={total}", requestId="big", streamResponse=True)
        )
        await done.addTimeout(60, reactor)
        growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        self.assertEqual(received, total)
        self.assertLessEqual(largest, requester.maxDeltaBytes + 65536)
        self.assertLess(growth, 40_000, f"peak RSS grew by {growth} KiB")
        print(f"\n50 MB stream: largest delta {largest} B, peak RSS growth {growth} KiB")
        if requester.pool is not None:
            await requester.pool.closeCachedConnections()
