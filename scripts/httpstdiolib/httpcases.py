"""``http/request`` against both executors: the cases, a 50 MB stream, and their comparison.

The transcripts are normalised (ports, ``date``, content lengths, timings) and streams compare by
content and order, not by how the bytes were split into deltas.
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

from twisted.internet import task

from bench.benchlib import statusKiB
from scripts.httpstdiolib.cases import CASES, KNOWN
from scripts.httpstdiolib.executor import spawn, waitFor
from twisted_exec.testing.httpsite import makeSite


def substitute(value: Any, base: str, port: int) -> Any:
    text = json.dumps(value).replace("BASE", base).replace("PORT", str(port))
    return json.loads(text)


async def runHttpCases(
    reactor: Any, target: str, cases: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    site, endpoints = makeSite(reactor)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    number = port.getHost().port
    base = f"http://127.0.0.1:{number}"
    executor = spawn(reactor, target)
    executor.send({"id": 0, "method": "initialize", "params": {"clientName": "probe"}})
    await waitFor(executor, 0, lambda m: m.get("id") == 0, 10)
    executor.send({"method": "initialized"})
    transcripts: dict[str, Any] = {}
    for index, spec in enumerate(cases or CASES, 1):
        params = substitute(spec["params"], base, number)
        if isinstance(params, dict) and "requestId" in params:
            params["requestId"] = f"q{index}"
        start = len(executor.messages)
        endpoints.seen.clear()
        began = time.monotonic()
        executor.send({"id": index, "method": "http/request", "params": params})
        reply = await waitFor(
            executor, start, lambda m, i=index: m.get("id") == i, spec.get("wait", 10)
        )
        if (
            reply is not None
            and "result" in reply
            and isinstance(params, dict)
            and params.get("streamResponse")
        ):
            await waitFor(
                executor,
                start,
                lambda m, i=index: (
                    m.get("method") == "http/request/bodyDelta"
                    and m["params"]["requestId"] == f"q{i}"
                    and m["params"]["done"]
                ),
                spec.get("wait", 10),
            )
        await task.deferLater(reactor, 0.05, lambda: None)
        messages = executor.messages[start:]
        transcripts[spec["name"]] = {
            "messages": [normalise(m, began) for m in messages],
            "order": [orderTag(m) for m in messages],
            "sent": [r["raw"] for r in endpoints.seen],
            "sentBodies": [r["bodyBase64"] for r in endpoints.seen],
            "elapsed": round(time.monotonic() - began, 3),
        }
        endpoints.cancelCalls()
    executor.process.closeStdin()
    transcripts["__exit__"] = {"code": await executor.ended}
    for channel in list(site.connections):  # type: ignore[attr-defined]
        channel.transport.abortConnection()
    await port.stopListening()
    return transcripts


def orderTag(message: dict[str, Any]) -> str:
    if "id" in message:
        return "reply"
    if message.get("method") == "http/request/bodyDelta":
        return "delta-done" if message["params"]["done"] else "delta"
    return str(message.get("method"))


def normalise(message: dict[str, Any], began: float) -> dict[str, Any]:
    message = json.loads(json.dumps(message))
    message.pop("_t", None)
    result = message.get("result")
    if isinstance(result, dict) and "headers" in result:
        result["headers"] = [h for h in result["headers"] if h["name"] != "date"]
        body = base64.b64decode(result.pop("bodyBase64"))
        result["bodyLength"] = len(body)
        if b'"raw"' in body:
            result["body"] = json.loads(body)
        elif len(body) <= 200:
            result["body"] = body.decode("latin-1")
    if message.get("method") == "http/request/bodyDelta":
        params = message["params"]
        params["deltaLength"] = len(base64.b64decode(params["deltaBase64"]))
        if params["deltaLength"] > 64:
            params["deltaBase64"] = "<elided>"
    return message


def scrub(value: Any) -> Any:
    text = json.dumps(value)
    text = re.sub(r"(127\.0\.0\.1|localhost):\d{4,5}", r"\1:PORT", text)
    text = re.sub(r'"content-length", "value": "\d+"', '"content-length", "value": "N"', text)
    return json.loads(text)


def streamShape(transcript: dict[str, Any]) -> dict[str, Any]:
    """Streams compare by content and order, not by how the bytes were split into deltas."""
    deltas = [
        m["params"] for m in transcript["messages"] if m.get("method") == "http/request/bodyDelta"
    ]
    replies = [m for m in transcript["messages"] if "id" in m]
    order = transcript["order"]
    return {
        "replies": replies,
        "replyFirst": bool(order) and order[0] == "reply",
        "bytes": sum(d["deltaLength"] for d in deltas),
        "seqs": [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1)),
        "final": deltas[-1] if deltas else None,
        "sent": transcript["sent"],
    }


def comparable(name: str, transcript: dict[str, Any]) -> Any:
    if name.startswith("stream-"):
        shape = streamShape(transcript)
        if shape["final"] is not None:
            shape["final"] = {k: shape["final"][k] for k in ("done", "error", "deltaLength")}
        return scrub(shape)
    return scrub({k: transcript[k] for k in ("messages", "sent", "sentBodies")})


def compare(ref: dict[str, Any], ours: dict[str, Any]) -> list[tuple[str, str, Any, Any]]:
    """(case, verdict, ref, ours) for every case: verdict is same, known or DIFF."""
    rows = []
    for name in ref:
        left = comparable(name, ref[name]) if name != "__exit__" else ref[name]
        right = comparable(name, ours[name]) if name != "__exit__" else ours.get(name)
        if left == right:
            rows.append((name, "same", left, right))
        elif name in KNOWN:
            rows.append((name, "known", left, right))
        else:
            rows.append((name, "DIFF", left, right))
    return rows


async def bigStream(reactor: Any, target: str, megabytes: int) -> dict[str, Any]:
    """Stream ``megabytes`` MB through the executor; report its peak RSS (VmHWM) and timing."""
    site, _ = makeSite(reactor)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    base = f"http://127.0.0.1:{port.getHost().port}"
    executor = spawn(reactor, target)
    executor.send({"id": 0, "method": "initialize", "params": {"clientName": "probe"}})
    await waitFor(executor, 0, lambda m: m.get("id") == 0, 10)
    executor.send({"method": "initialized"})
    pid = executor.process.pid
    baseline = statusKiB(pid, "VmHWM")
    total = megabytes * 1000 * 1000
    began = time.monotonic()
    executor.send(
        {
            "id": 1,
            "method": "http/request",
            "params": {
                "method": "GET",
                "url": f"{base}/bytes?n={total}",
                "requestId": "big",
                "streamResponse": True,
            },
        }
    )
    done = await waitFor(
        executor,
        0,
        lambda m: m.get("method") == "http/request/bodyDelta" and m["params"]["done"],
        120,
    )
    elapsed = time.monotonic() - began
    peak = statusKiB(pid, "VmHWM")
    received = sum(
        len(base64.b64decode(m["params"]["deltaBase64"]))
        for m in executor.messages
        if m.get("method") == "http/request/bodyDelta"
    )
    deltas = sum(1 for m in executor.messages if m.get("method") == "http/request/bodyDelta")
    executor.messages.clear()
    executor.process.closeStdin()
    await executor.ended
    await port.stopListening()
    return {
        "bytes": received,
        "complete": done is not None and received == total,
        "deltas": deltas,
        "seconds": round(elapsed, 2),
        "MBps": round(total / elapsed / 1e6, 1),
        "baselineKiB": baseline,
        "peakKiB": peak,
        "growthKiB": None if peak is None or baseline is None else peak - baseline,
    }
