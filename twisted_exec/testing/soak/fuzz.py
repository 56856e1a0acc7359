"""Scenario frames: random and mutated relay frames over the real websocket."""

from __future__ import annotations

import base64
import json
import os
import random
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import DeferredList, ensureDeferred

from twisted_exec.testing.rendezvous import HarnessStream, Rendezvous
from twisted_exec.testing.soak import common
from twisted_exec.wire import relay_pb2


@dataclass
class FramesResult(common.Common):
    frames: int = 0
    textMessages: int = 0
    validRequests: int = 0
    validAnswered: int = 0
    wrongAnswers: int = 0
    streamsRefusedOrReset: int = 0


def _fuzzPayload(rng: random.Random) -> bytes:
    """A JSON-RPC-ish payload: valid, broken, mutated or hostile."""
    templates: list[Any] = [
        {"id": rng.randint(-5, 10**6), "method": "initialize", "params": {"clientName": "fz"}},
        {"method": "initialized"},
        {"id": "x", "method": "fs/getMetadata", "params": {"path": "/"}},
        {"id": 7, "method": "process/read", "params": {"processId": "nope", "waitMs": 0}},
        {"id": 8, "method": "no/such", "params": [1, 2, 3]},
        {"id": None, "method": "fs/getMetadata"},
        {"id": 1.5, "method": "initialize"},
        {"jsonrpc": 5, "id": 3, "method": "initialize"},
        {"id": 9, "result": {}},
        [{"id": 1, "method": "initialize"}],
        {"method": "process/output", "params": {}},
        {"id": 2, "method": "initialize", "params": {"clientName": "fz", "resumeSessionId": "x"}},
    ]
    choice = rng.random()
    if choice < 0.15:
        return rng.randbytes(rng.randint(1, 64))
    if choice < 0.2:
        depth = rng.randint(100, 20000)
        return b"[" * depth + b"]" * (depth if rng.random() < 0.5 else 0)
    if choice < 0.25:
        return b'{"id": 1, "method": "' + rng.randbytes(8) + b'"}'
    if choice < 0.3:
        return b'{"id": ' + str(rng.randint(-(10**30), 10**30)).encode() + b', "method": "x"}'
    raw = json.dumps(rng.choice(templates)).encode()
    if rng.random() < 0.5:
        return raw
    data = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        if op < 0.5 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op < 0.75 and data:
            del data[rng.randrange(len(data)) :]
        else:
            data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
    return bytes(data) or b"{"


def _fuzzStreamId(rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.9:
        return f"fz-{rng.randrange(300)}"
    return rng.choice(["", " fz", "fz ", "x" * 200, "\u2028", "fz-\x00", "é" * 70])


def fuzzFrame(rng: random.Random) -> bytes:
    """One random or mutated ``RelayMessageFrame`` (never for a ``valid-*``/``probe`` stream)."""
    choice = rng.random()
    if choice < 0.1:
        return rng.randbytes(rng.randint(0, 300))
    frame = relay_pb2.RelayMessageFrame(
        version=1 if rng.random() < 0.85 else rng.randrange(2**32),
        stream_id=_fuzzStreamId(rng),
    )
    kind = rng.random()
    if kind < 0.6:
        frame.data.seq = rng.randrange(2**32)
        frame.data.segment_index = 0 if rng.random() < 0.85 else rng.randrange(4)
        frame.data.segment_count = 1 if rng.random() < 0.85 else rng.randrange(4)
        frame.data.payload = _fuzzPayload(rng) if rng.random() < 0.95 else b""
    elif kind < 0.7:
        frame.reset.reason = rng.choice(["", "fuzz", "x" * 1000])
    elif kind < 0.8:
        frame.resume.next_seq = rng.randrange(2**32)
    elif kind < 0.85:
        frame.ack_frame.SetInParent()
    elif kind < 0.9:
        frame.heartbeat.SetInParent()
    elif kind < 0.95:
        frame.handshake.payload = rng.randbytes(16)
    raw = bytearray(frame.SerializeToString())
    if rng.random() < 0.3 and raw:
        # protobuf-level damage: flip, cut or splice bytes of an encoded frame
        for _ in range(rng.randint(1, 3)):
            op = rng.random()
            if op < 0.5:
                raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
            elif op < 0.75:
                del raw[rng.randrange(len(raw)) :]
            else:
                raw[rng.randrange(len(raw) + 1) : 0] = rng.randbytes(rng.randint(1, 8))
            if not raw:
                break
    return bytes(raw)


async def fuzzFrames(
    reactor: Any, frames: int = 2000, validStreams: int = 4, seed: int = 1, batch: int = 100
) -> FramesResult:
    """``frames`` fuzzed frames (1 % text messages), with valid traffic on ``validStreams``."""
    result = FramesResult()

    async def body(cloud: common.Cloud) -> FramesResult:
        run = common.Run(cloud, result)
        ids = [f"valid-{i}" for i in range(validStreams)] + ["probe"]
        conn, streams = await common.connectAndInitialize(cloud, ids)
        run.sampleRss(0.5)
        probe = streams.pop("probe")
        with open(os.path.join(cloud.tmp, "known.txt"), "wb") as f:
            f.write(b"known content\n")
        done = False

        async def validLoop(index: int, stream: HarnessStream) -> None:
            n = 0
            while not done:
                n += 1
                result.validRequests += 1
                if n % 3 == 0:
                    token = f"tok-{index}-{n}"
                    out = await common.runProcess(
                        reactor, stream, f"p{n}", ["/bin/echo", token], cloud.tmp
                    )
                    ok = out == token.encode() + b"\n"
                elif n % 3 == 1:
                    reply = await common.bounded(
                        reactor,
                        stream.request(
                            "fs/readFile", {"path": os.path.join(cloud.tmp, "known.txt")}
                        ),
                    )
                    expected = base64.b64encode(b"known content\n").decode()
                    ok = reply.get("result") == {"dataBase64": expected}
                else:
                    reply = await common.bounded(
                        reactor, stream.request("fs/getMetadata", {"path": cloud.tmp})
                    )
                    ok = reply.get("result", {}).get("isDirectory") is True
                result.validAnswered += 1
                if not ok:
                    result.wrongAnswers += 1

        loops = [ensureDeferred(validLoop(i, s)) for i, s in enumerate(streams.values(), start=1)]
        rng = random.Random(seed)
        sent = 0
        while sent < frames:
            for _ in range(min(batch, frames - sent)):
                if rng.random() < 0.01:
                    conn.sendText(rng.choice(['{"id":1,"method":"initialize"}', "hello", ""]))
                    result.textMessages += 1
                else:
                    conn.sendFrame(fuzzFrame(rng))
                sent += 1
            # pace: the executor has handled everything sent so far once the probe answers
            result.validRequests += 1
            reply = await common.bounded(reactor, probe.request("fs/getMetadata", {"path": "/"}))
            result.validAnswered += 1
            if "result" not in reply:
                result.wrongAnswers += 1
        result.frames = sent
        done = True
        await common.bounded(
            reactor, DeferredList(loops, fireOnOneErrback=True, consumeErrors=True)
        )
        result.streamsRefusedOrReset = sum(
            1
            for raw in conn.orphans
            if _isReset(raw)  # resets the executor sent for fuzz streams over the limit
        )
        await run.finish()
        return result

    return await common.withCloud(reactor, Rendezvous(reactor), body)


def _isReset(raw: bytes) -> bool:
    frame = relay_pb2.RelayMessageFrame()
    try:
        frame.ParseFromString(raw)
    except Exception:
        return False
    return frame.WhichOneof("body") == "reset"
