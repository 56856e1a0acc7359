"""Hardening scenarios against a real remote-mode executor process, at any scale.

Each scenario starts the test cloud in this process (a :class:`FakeRegistry` and a rendezvous on
loopback), runs ``twistd -n codex-executor --remote ...`` as a child process
(:class:`~twisted_exec.testing.executorproc.ExecutorProcess`), drives it, and returns a result
with the numbers the hardening issue asks for. ``tests/test_soak.py`` runs them small, on every
test run; ``python scripts/soak.py --full`` runs the issue's full sizes. Same code, two scales.

- :func:`fuzzFrames`: random and mutated relay frames over the real websocket, interleaved with
  valid requests on other streams: no unhandled error, every valid request answered.
- :func:`faults`: the rendezvous drops the websocket again and again while processes run: the
  executor reconnects every time, the session is resumed, nothing leaks.
- :func:`load`: many streams each running commands that print a unique token: no cross-talk,
  flat RSS.
- :func:`slowConsumer`: a rendezvous reading at a fixed rate while a child writes a lot: the
  executor's memory stays bounded and every byte arrives in order.

Every wait is bounded; the executor child is killed if a scenario fails.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, DeferredList, ensureDeferred
from twisted.internet.task import deferLater

from twisted_exec.testing.executorproc import ExecutorProcess, processesInSessions
from twisted_exec.testing.registry import FakeRegistry
from twisted_exec.testing.rendezvous import ExecutorConnection, HarnessStream, Rendezvous
from twisted_exec.testing.slowpeer import SlowConnection, SlowRendezvous
from twisted_exec.wire import relay_pb2
from twisted_exec.wire.frames import encodeData, encodeResume

T = TypeVar("T")

TOKEN = "tok-SOAK-never-logged-7f3a"
EXECUTOR_ID = "soak-executor"
STEP_TIMEOUT = 30.0
PATH = os.environ.get("PATH", "/usr/bin:/bin")


def bounded(reactor: Any, d: Deferred[T], seconds: float = STEP_TIMEOUT) -> Deferred[T]:
    return d.addTimeout(seconds, reactor)


def pause(reactor: Any, seconds: float) -> Deferred[None]:
    return deferLater(reactor, seconds, lambda: None)


async def poll(reactor: Any, predicate: Callable[[], bool], seconds: float) -> bool:
    """True once ``predicate()`` holds, False if it still does not after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await pause(reactor, 0.05)
    return True


def startParams(processId: str, argv: list[str], cwd: str) -> dict[str, Any]:
    return {"processId": processId, "argv": argv, "cwd": cwd, "env": {"PATH": PATH}, "tty": False}


@dataclass
class Common:
    """What every scenario reports about the executor process."""

    seconds: float = 0.0
    rssStart: int = 0
    rssEnd: int = 0
    rssPeak: int = 0
    logLines: int = 0
    unhandledErrors: int = 0
    errorSamples: list[str] = field(default_factory=list)
    secretLogLines: int = 0
    exitCode: int | None = None
    shutdownSeconds: float = 0.0

    def asDict(self) -> dict[str, Any]:
        return asdict(self)


class _Cloud:
    """Registry + rendezvous in this process, the executor as a child; torn down in ``close``."""

    def __init__(self, reactor: Any, rendezvous: Rendezvous | SlowRendezvous) -> None:
        self.reactor = reactor
        self.rendezvous = rendezvous
        rendezvous.listen()
        self.registry = FakeRegistry(TOKEN, self._url)
        self.registry.listen(reactor)
        self.executor: ExecutorProcess | None = None
        self.tmp = tempfile.mkdtemp(prefix="twisted-exec-soak-")

    def _url(self, executorId: str) -> str:
        url = self.rendezvous.executorUrl(executorId)
        if self.executor is not None:
            self.executor.addSecret(url.partition("?")[2])
        return url

    def start(self, extraArgs: tuple[str, ...] = ()) -> ExecutorProcess:
        self.executor = ExecutorProcess(
            self.reactor, self.registry.baseUrl, EXECUTOR_ID, TOKEN, extraArgs=extraArgs
        )
        return self.executor

    async def stop(self, common: Common) -> None:
        """SIGTERM the executor (timing it), then collect its log numbers."""
        executor = self.executor
        assert executor is not None
        began = time.monotonic()
        common.exitCode = await bounded(self.reactor, executor.terminate(), 10)
        common.shutdownSeconds = time.monotonic() - began
        scan = executor.scan
        common.logLines = scan.lines
        common.unhandledErrors = len(scan.errorLines)
        common.errorSamples = scan.errorLines[:5]
        common.secretLogLines = scan.secretLines

    async def close(self) -> None:
        if self.executor is not None:
            self.executor.kill()
        if isinstance(self.rendezvous, Rendezvous):
            self.rendezvous.closeAll()
        await self.rendezvous.stopListening()
        await self.registry.stopListening()
        for root, dirs, files in os.walk(self.tmp, topdown=False):
            for name in files:
                os.unlink(os.path.join(root, name))
            for name in dirs:
                os.rmdir(os.path.join(root, name))
        os.rmdir(self.tmp)


async def _withCloud(
    reactor: Any,
    rendezvous: Rendezvous | SlowRendezvous,
    body: Callable[[_Cloud], Awaitable[T]],
) -> T:
    cloud = _Cloud(reactor, rendezvous)
    try:
        return await body(cloud)
    finally:
        await cloud.close()


class _RssSampler:
    """Samples the executor's RSS every ``interval`` seconds (for the peak and the curve)."""

    def __init__(self, reactor: Any, executor: ExecutorProcess, interval: float = 0.1) -> None:
        from twisted.internet.task import LoopingCall

        self.executor = executor
        self.peak = 0
        self.samples: list[int] = []
        self._loop = LoopingCall(self._sample)
        self._loop.clock = reactor
        self._loop.start(interval)

    def _sample(self) -> None:
        if self.executor.running:
            rss = self.executor.rss()
            self.samples.append(rss)
            self.peak = max(self.peak, rss)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()


async def _connectAndInitialize(
    cloud: _Cloud, streamIds: list[str]
) -> tuple[ExecutorConnection, dict[str, HarnessStream]]:
    assert isinstance(cloud.rendezvous, Rendezvous)
    conn = await bounded(cloud.reactor, cloud.rendezvous.waitForConnection(1))
    streams = {sid: conn.stream(sid) for sid in streamIds}
    for stream in streams.values():
        stream.resume()
    await bounded(
        cloud.reactor,
        DeferredList([s.initialize() for s in streams.values()], fireOnOneErrback=True),
    )
    return conn, streams


async def _runProcess(
    reactor: Any,
    stream: HarnessStream,
    processId: str,
    argv: list[str],
    cwd: str,
    others: frozenset[str] = frozenset(),
) -> bytes:
    """Start a process and collect its output from notifications until ``process/closed``.

    A notification for any other process of the stream than those in ``others`` is cross-talk.
    """
    reply = await bounded(
        reactor, stream.request("process/start", startParams(processId, argv, cwd))
    )
    if reply.get("result") != {"processId": processId}:
        raise AssertionError(f"process/start {processId}: {reply!r}")
    output = b""
    while True:
        note = await bounded(reactor, stream.notifications.get())
        params = note.get("params", {})
        if params.get("processId") in others:
            continue
        if params.get("processId") != processId:
            raise AssertionError(f"cross-talk on {stream.streamId}: {note!r}")
        if note["method"] == "process/output":
            output += base64.b64decode(params["chunk"])
        elif note["method"] == "process/closed":
            return output


# -- 1. fuzzed frames ----------------


@dataclass
class FramesResult(Common):
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

    async def body(cloud: _Cloud) -> FramesResult:
        executor = cloud.start()
        began = time.monotonic()
        ids = [f"valid-{i}" for i in range(validStreams)] + ["probe"]
        conn, streams = await _connectAndInitialize(cloud, ids)
        result.rssStart = executor.rss()
        sampler = _RssSampler(reactor, executor, 0.5)
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
                    out = await _runProcess(
                        reactor, stream, f"p{n}", ["/bin/echo", token], cloud.tmp
                    )
                    ok = out == token.encode() + b"\n"
                elif n % 3 == 1:
                    reply = await bounded(
                        reactor,
                        stream.request(
                            "fs/readFile", {"path": os.path.join(cloud.tmp, "known.txt")}
                        ),
                    )
                    expected = base64.b64encode(b"known content\n").decode()
                    ok = reply.get("result") == {"dataBase64": expected}
                else:
                    reply = await bounded(
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
            reply = await bounded(reactor, probe.request("fs/getMetadata", {"path": "/"}))
            result.validAnswered += 1
            if "result" not in reply:
                result.wrongAnswers += 1
        result.frames = sent
        done = True
        await bounded(reactor, DeferredList(loops, fireOnOneErrback=True, consumeErrors=True))
        result.streamsRefusedOrReset = sum(
            1
            for raw in conn.orphans
            if _isReset(raw)  # resets the executor sent for fuzz streams over the limit
        )
        result.rssEnd = executor.rss()
        sampler.stop()
        result.rssPeak = sampler.peak
        result.seconds = time.monotonic() - began
        await cloud.stop(result)
        return result

    return await _withCloud(reactor, Rendezvous(reactor), body)


def _isReset(raw: bytes) -> bool:
    frame = relay_pb2.RelayMessageFrame()
    try:
        frame.ParseFromString(raw)
    except Exception:
        return False
    return frame.WhichOneof("body") == "reset"


# -- 2. dropped websockets ----------------


@dataclass
class FaultsResult(Common):
    drops: int = 0
    reconnects: int = 0
    resumes: int = 0
    maxResumeSeconds: float = 0.0
    roundsChecked: int = 0
    fdsBefore: int = 0
    fdsAfter: int = 0
    fdsLeaked: list[str] = field(default_factory=list)
    processesSpawned: int = 0
    processesLeaked: int = 0


TICKER = "echo pid=$$; i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.05; done"


async def faults(reactor: Any, drops: int = 5) -> FaultsResult:
    """The rendezvous drops the websocket ``drops`` times (alternating close and abort)."""
    result = FaultsResult()

    async def readUntil(stream: HarnessStream, processId: str, afterSeq: int) -> dict[str, Any]:
        reply = await bounded(
            reactor,
            stream.request(
                "process/read", {"processId": processId, "afterSeq": afterSeq, "waitMs": 3000}
            ),
        )
        if "result" not in reply:
            raise AssertionError(f"process/read {processId}: {reply!r}")
        answer: dict[str, Any] = reply["result"]
        return answer

    async def body(cloud: _Cloud) -> FaultsResult:
        assert isinstance(cloud.rendezvous, Rendezvous)
        executor = cloud.start()
        began = time.monotonic()
        conn, streams = await _connectAndInitialize(cloud, ["s-0"])
        stream = streams["s-0"]
        # Baseline once registered and connected, with a session and no process.
        await pause(reactor, 0.5)
        before = executor.fds()
        result.fdsBefore = len(before)
        result.rssStart = executor.rss()
        sessionId = await _sessionIdOf(stream)
        reply = await bounded(
            reactor,
            stream.request("process/start", startParams("ticker", ["sh", "-c", TICKER], "/")),
        )
        if "result" not in reply:
            raise AssertionError(f"ticker: {reply!r}")
        sessions: set[int] = set()
        first = await readUntil(stream, "ticker", 0)
        text = b"".join(base64.b64decode(c["chunk"]) for c in first["chunks"])
        match = re.search(rb"pid=(\d+)", text)
        if match is None:
            raise AssertionError(f"no pid in {text!r}")
        sessions.add(int(match.group(1)))
        result.processesSpawned += 1
        nextSeq = first["nextSeq"]
        for n in range(1, drops + 1):
            dropped = time.monotonic()
            if n % 2:
                conn.abort()
            else:
                conn.close()
            result.drops += 1
            conn = await bounded(reactor, cloud.rendezvous.waitForConnection(n + 1))
            result.reconnects += 1
            stream = conn.stream(f"s-{n}")
            stream.resume()
            reply = await bounded(
                reactor,
                stream.request("initialize", {"clientName": "soak", "resumeSessionId": sessionId}),
            )
            if reply.get("result") != {"sessionId": sessionId}:
                raise AssertionError(f"resume {n}: {reply!r}")
            stream.notify("initialized")
            result.resumes += 1
            result.maxResumeSeconds = max(result.maxResumeSeconds, time.monotonic() - dropped)
            # the ticker ran on while we were away, and runs on now
            read = await readUntil(stream, "ticker", nextSeq)
            if not read["chunks"] or read["closed"]:
                raise AssertionError(f"ticker silent after drop {n}: {read!r}")
            nextSeq = read["nextSeq"]
            # a short process per round, its output complete
            token = f"round-{n}"
            out = await _runProcess(
                reactor,
                stream,
                f"r{n}",
                ["sh", "-c", f"echo pid=$$; echo {token}"],
                "/",
                others=frozenset({"ticker"}),
            )
            match = re.search(rb"pid=(\d+)", out)
            if match is None or not out.endswith(token.encode() + b"\n"):
                raise AssertionError(f"round {n}: {out!r}")
            sessions.add(int(match.group(1)))
            result.processesSpawned += 1
            result.roundsChecked += 1
        reply = await bounded(reactor, stream.request("process/terminate", {"processId": "ticker"}))
        while not (await readUntil(stream, "ticker", nextSeq))["closed"]:
            pass
        stream.reset("soak done")
        await poll(reactor, lambda: not processesInSessions(sessions), 5)
        result.processesLeaked = len(processesInSessions(sessions)) + len(executor.children())
        await poll(reactor, lambda: len(executor.fds()) <= len(before), 5)
        after = executor.fds()
        result.fdsAfter = len(after)
        result.fdsLeaked = _fdDiff(before, after)
        result.rssEnd = executor.rss()
        result.rssPeak = executor.peakRss()
        result.seconds = time.monotonic() - began
        await cloud.stop(result)
        return result

    return await _withCloud(reactor, Rendezvous(reactor), body)


async def _sessionIdOf(stream: HarnessStream) -> str:
    for message in stream.messages:
        result = message.get("result")
        if isinstance(result, dict) and "sessionId" in result:
            return str(result["sessionId"])
    raise AssertionError("stream was not initialized")


def _fdDiff(before: list[str], after: list[str]) -> list[str]:
    """Descriptors in ``after`` beyond ``before``, by kind (socket/pipe numbers differ)."""

    def kind(target: str) -> str:
        return re.sub(r"\[\d+\]", "[]", target)

    remaining = [kind(t) for t in before]
    extra = []
    for target in after:
        k = kind(target)
        if k in remaining:
            remaining.remove(k)
        else:
            extra.append(target)
    return extra


# -- 3. load ----------------


@dataclass
class LoadResult(Common):
    streams: int = 0
    processes: int = 0
    crossTalk: int = 0
    wrongOutput: int = 0
    rssAfterWarmup: int = 0


async def load(
    reactor: Any, streams: int = 8, seconds: float = 3.0, executorArgs: tuple[str, ...] = ()
) -> LoadResult:
    """``streams`` streams, each running ``echo <unique token>`` in a loop for ``seconds``."""
    result = LoadResult(streams=streams)

    async def body(cloud: _Cloud) -> LoadResult:
        executor = cloud.start(executorArgs)
        began = time.monotonic()
        ids = [f"load-{i}" for i in range(streams)]
        conn, harness = await _connectAndInitialize(cloud, ids)
        result.rssStart = executor.rss()
        sampler = _RssSampler(reactor, executor, 0.5)
        until = time.monotonic() + seconds
        warmup = time.monotonic() + seconds / 4  # sessions reach their retention caps
        salt = os.urandom(4).hex()

        async def loop(index: int, stream: HarnessStream) -> None:
            n = 0
            while time.monotonic() < until:
                n += 1
                token = f"{salt}-{index}-{n}"
                try:
                    out = await _runProcess(
                        reactor, stream, f"{index}-{n}", ["/bin/echo", token], cloud.tmp
                    )
                except AssertionError as err:
                    if "cross-talk" in str(err):
                        result.crossTalk += 1
                        return
                    raise
                result.processes += 1
                if out != token.encode() + b"\n":
                    result.wrongOutput += 1
                    if re.match(rb"[0-9a-f]+-\d+-\d+", out):
                        result.crossTalk += 1
                if result.rssAfterWarmup == 0 and time.monotonic() > warmup:
                    result.rssAfterWarmup = executor.rss()

        await bounded(
            reactor,
            DeferredList(
                [ensureDeferred(loop(i, harness[sid])) for i, sid in enumerate(ids)],
                fireOnOneErrback=True,
                consumeErrors=True,
            ),
            seconds + STEP_TIMEOUT,
        )
        # every message on every stream belongs to that stream's own processes
        for i, sid in enumerate(ids):
            for message in harness[sid].messages:
                pid = message.get("params", {}).get("processId")
                if pid is not None and not str(pid).startswith(f"{i}-"):
                    result.crossTalk += 1
        if conn.orphans:
            result.crossTalk += len(conn.orphans)
        result.rssEnd = executor.rss()
        sampler.stop()
        result.rssPeak = sampler.peak
        result.seconds = time.monotonic() - began
        await cloud.stop(result)
        return result

    return await _withCloud(reactor, Rendezvous(reactor), body)


# -- 4. slow consumer ----------------


@dataclass
class SlowResult(Common):
    megabytes: int = 0
    rate: float = 0.0
    bytesReceived: int = 0
    intact: bool = False
    firstBadOffset: int | None = None
    wireBytes: int = 0
    rssIdle: int = 0
    rssGrowth: int = 0


BLOCK = 64 * 1024
WRITER = (
    "import sys\n"
    "out = sys.stdout.buffer\n"
    "for i in range(int(sys.argv[1])):\n"
    "    out.write(i.to_bytes(4, 'big') * 16384)\n"
    "out.flush()\n"
)


class PatternChecker:
    """Checks a stream of 64 KiB blocks ``i.to_bytes(4) * 16384`` incrementally (no copy kept)."""

    def __init__(self) -> None:
        self.offset = 0
        self.firstBad: int | None = None

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            block, within = divmod(self.offset, BLOCK)
            take = min(len(view), BLOCK - within)
            expected = (block.to_bytes(4, "big") * 16384)[within : within + take]
            if self.firstBad is None and view[:take] != expected:
                self.firstBad = self.offset
            self.offset += take
            view = view[take:]


async def slowConsumer(
    reactor: Any, megabytes: int = 20, rate: float = 10e6, sampleEvery: float = 0.1
) -> SlowResult:
    """A child writes ``megabytes`` MiB while the rendezvous reads ``rate`` bytes/s."""
    result = SlowResult(megabytes=megabytes, rate=rate)
    blocks = megabytes * 1024 * 1024 // BLOCK

    async def body(cloud: _Cloud) -> SlowResult:
        assert isinstance(cloud.rendezvous, SlowRendezvous)
        executor = cloud.start()
        began = time.monotonic()
        conn: SlowConnection = await bounded(reactor, cloud.rendezvous.waitForConnection())
        checker = PatternChecker()
        replies: dict[int, Deferred[dict[str, Any]]] = {}
        closed: Deferred[None] = Deferred()

        def onFrame(streamId: str, seq: int, payload: bytes) -> None:
            message = json.loads(payload)
            if "id" in message and message["id"] in replies:
                replies.pop(message["id"]).callback(message)
                return
            params = message.get("params", {})
            if message.get("method") == "process/output":
                checker.feed(base64.b64decode(params["chunk"]))
            elif message.get("method") == "process/closed" and not closed.called:
                closed.callback(None)

        conn.onFrame = onFrame
        seq = 0

        def request(ident: int, method: str, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
            nonlocal seq
            d: Deferred[dict[str, Any]] = Deferred()
            replies[ident] = d
            body = json.dumps({"id": ident, "method": method, "params": params}).encode()
            conn.sendFrame(encodeData("slow-1", seq, body))
            seq += 1
            return d

        conn.sendFrame(encodeResume("slow-1"))
        await bounded(reactor, request(1, "initialize", {"clientName": "slow"}))
        conn.sendFrame(encodeData("slow-1", seq, b'{"method":"initialized"}'))
        seq += 1
        await pause(reactor, 0.5)
        result.rssIdle = result.rssStart = executor.rss()
        sampler = _RssSampler(reactor, executor, sampleEvery)
        script = os.path.join(cloud.tmp, "writer.py")
        with open(script, "w") as f:
            f.write(WRITER)
        reply = await bounded(
            reactor,
            request(
                2,
                "process/start",
                startParams("writer", [sys.executable, script, str(blocks)], cloud.tmp),
            ),
        )
        if "result" not in reply:
            raise AssertionError(f"writer: {reply!r}")
        expectedSeconds = blocks * BLOCK * 1.4 / rate
        await bounded(reactor, closed, expectedSeconds * 2 + STEP_TIMEOUT)
        sampler.stop()
        result.bytesReceived = checker.offset
        result.firstBadOffset = checker.firstBad
        result.intact = checker.firstBad is None and checker.offset == blocks * BLOCK
        result.wireBytes = conn.bytesRead
        result.rssEnd = executor.rss()
        result.rssPeak = max(sampler.peak, result.rssEnd)
        result.rssGrowth = result.rssPeak - result.rssIdle
        result.seconds = time.monotonic() - began
        await cloud.stop(result)
        return result

    return await _withCloud(reactor, SlowRendezvous(reactor, rate), body)


SCENARIOS: dict[str, Callable[..., Awaitable[Common]]] = {
    "frames": fuzzFrames,
    "faults": faults,
    "load": load,
    "slow": slowConsumer,
}

#: The issue's full sizes (``scripts/soak.py --full``) and the quick ones CI runs.
FULL: dict[str, dict[str, Any]] = {
    "frames": {"frames": 100_000},
    "faults": {"drops": 50},
    "load": {"streams": 128, "seconds": 60.0},
    "slow": {"megabytes": 200, "rate": 1e6},
}
QUICK: dict[str, dict[str, Any]] = {
    "frames": {"frames": 2000},
    "faults": {"drops": 5},
    "load": {"streams": 8, "seconds": 3.0},
    "slow": {"megabytes": 20, "rate": 10e6},
}

#: The slow-consumer bound on the executor's RSS growth over idle (docs/flow-control.md):
#: the per-connection and per-stream buffers are a few MiB; without flow control a 20 MB
#: run alone grows it by more than this.
RSS_GROWTH_BOUND = 16 * 1024 * 1024


def verdict(name: str, result: Common) -> list[str]:
    """The issue's acceptance checks for one scenario's result; empty when all hold."""
    problems = []
    if result.unhandledErrors:
        problems.append(f"{result.unhandledErrors} unhandled error line(s) in the executor log")
    if result.secretLogLines:
        problems.append(f"{result.secretLogLines} log line(s) contain the token or a signature")
    if result.exitCode != 0:
        problems.append(f"executor exit code {result.exitCode} after SIGTERM")
    if result.shutdownSeconds >= 5:
        problems.append(f"shutdown took {result.shutdownSeconds:.1f} s")
    if isinstance(result, FramesResult):
        if result.validAnswered != result.validRequests or result.wrongAnswers:
            problems.append(
                f"valid requests: {result.validRequests} sent, {result.validAnswered} "
                f"answered, {result.wrongAnswers} wrong"
            )
    elif isinstance(result, FaultsResult):
        if not (result.drops == result.reconnects == result.resumes == result.roundsChecked):
            problems.append(
                f"{result.drops} drops, {result.reconnects} reconnects, {result.resumes} "
                f"resumes, {result.roundsChecked} rounds checked"
            )
        if result.maxResumeSeconds >= 10:
            problems.append(f"a resume took {result.maxResumeSeconds:.1f} s (TTL 10 s)")
        if result.fdsLeaked or result.processesLeaked:
            problems.append(
                f"leaked {len(result.fdsLeaked)} fd(s) {result.fdsLeaked} and "
                f"{result.processesLeaked} process(es)"
            )
    elif isinstance(result, LoadResult):
        if result.crossTalk or result.wrongOutput or not result.processes:
            problems.append(
                f"{result.crossTalk} cross-talk, {result.wrongOutput} wrong outputs "
                f"in {result.processes} processes"
            )
    elif isinstance(result, SlowResult):
        if not result.intact:
            problems.append(
                f"output not intact: {result.bytesReceived} bytes, first bad offset "
                f"{result.firstBadOffset}"
            )
        if result.rssGrowth > RSS_GROWTH_BOUND:
            problems.append(f"RSS grew by {result.rssGrowth} bytes (bound {RSS_GROWTH_BOUND})")
    return problems
