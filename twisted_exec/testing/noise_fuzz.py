"""Fuzzing the executor's Noise relay (:class:`NoiseRelayDemux`) with mutated frames.

Each *epoch* is one websocket: a fresh demux, a *guard* stream opened properly, and a
*victim* stream that mutations may target too. Mutated frames come from real ones (message 1
of fresh handshakes, data records of the victim, resets, resumes) by bit flips, truncation,
extension, splicing and re-targeting, plus random protobuf frames and raw garbage. After every
frame: nothing escaped ``frameReceived``; the guard stream still answers a request (checked
every ``checkEvery`` frames and at the end of each epoch); the demux never charged more than
its limit of failed handshakes and, once at the limit, ended the websocket exactly once and
ignores everything after. The guard's own stream id is never a mutation target: only its
neighbours may be disturbed.
"""

from __future__ import annotations

import json
import random
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from zope.interface import implementer

from twisted_exec.executor.core.interfaces import IJsonRpcProcessor, IMessageSink, IProcessorFactory
from twisted_exec.executor.transports.relay.noise_demux import NoiseRelayDemux
from twisted_exec.harness.noise_stream import ConnectBundle, NoiseHarnessStream, NoiseStreamError
from twisted_exec.wire import noise, relay_pb2
from twisted_exec.wire.frames import encodeData, encodeHandshake, encodeReset, encodeResume


@implementer(IJsonRpcProcessor)
class _Echo:
    def __init__(self) -> None:
        self.sink: IMessageSink | None = None

    def makeConnection(self, sink: IMessageSink) -> None:
        self.sink = sink

    def messageReceived(self, payload: bytes) -> None:
        message = json.loads(payload)
        if "id" in message and self.sink is not None:
            self.sink.sendMessage(json.dumps({"id": message["id"], "result": "ok"}).encode())

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def connectionLost(self) -> None:
        pass

    def closeSession(self) -> None:
        pass


@implementer(IProcessorFactory)
class _EchoFactory:
    def buildProcessor(self, parseErrorContext: str | None) -> IJsonRpcProcessor:
        return _Echo()


class FuzzInvariantError(AssertionError):
    """An invariant broke; the message names the epoch and frame."""


@dataclass
class FuzzStats:
    frames: int = 0
    epochs: int = 0
    exhaustions: int = 0
    resetsSent: int = 0
    handshakeFailures: int = 0
    guardChecks: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


class NoiseFuzzer:
    def __init__(self, seed: int = 0, checkEvery: int = 50) -> None:
        self.rnd = random.Random(seed)
        self.checkEvery = checkEvery
        self.executor = noise.NoiseIdentity.generate()
        self.harness = noise.NoiseIdentity.generate()
        self.stats = FuzzStats()
        self.sent: list[bytes] = []
        self.exhaustedCalls = 0
        # Fresh message 1s to mutate (making one costs an ML-KEM encapsulation and key pair).
        self._hellos = [
            NoiseHarnessStream(self.harness, self._bundle()).openingFrames()[1][-3572:]
            for _ in range(24)
        ]

    # -- plumbing -----------------------------------------------------------------------------

    def _bundle(self) -> ConnectBundle:
        return ConnectBundle("env-f", "ws://f", "reg-f", self.executor.publicKey, "auth")

    def _newDemux(self) -> NoiseRelayDemux:
        self.sent.clear()
        self.exhaustedCalls = 0

        def exhausted() -> None:
            self.exhaustedCalls += 1

        return NoiseRelayDemux(
            _EchoFactory(),
            self.sent.append,
            identity=self.executor,
            environmentId="env-f",
            executorRegistrationId="reg-f",
            validator=lambda key, auth, sid: succeed(auth == "auth"),
            clock=Clock(),
            onExhausted=exhausted,
        )

    def _open(self, demux: NoiseRelayDemux) -> NoiseHarnessStream:
        stream = NoiseHarnessStream(self.harness, self._bundle())
        for raw in stream.openingFrames():
            demux.frameReceived(raw)
        self._drain(stream)
        if not stream.established:
            raise FuzzInvariantError("a clean stream failed to open")
        return stream

    def _drain(self, stream: NoiseHarnessStream) -> list[Any]:
        out: list[Any] = []
        sent, self.sent[:] = list(self.sent), []
        for raw in sent:
            frame = relay_pb2.RelayMessageFrame()
            frame.ParseFromString(raw)
            if frame.stream_id == stream.streamId:
                out.extend(json.loads(m) for m in stream.frameReceived(raw))
        return out

    def _checkGuard(self, demux: NoiseRelayDemux, guard: NoiseHarnessStream, where: str) -> None:
        self.sent.clear()
        ident = self.stats.guardChecks
        for raw in guard.encodeMessage(json.dumps({"id": ident, "method": "ping"}).encode()):
            demux.frameReceived(raw)
        replies = self._drain(guard)
        if replies != [{"id": ident, "result": "ok"}]:
            raise FuzzInvariantError(f"guard stream disturbed at {where}: {replies!r}")
        self.stats.guardChecks += 1

    # -- mutations ----------------------------------------------------------------------------

    def _mutate(self, raw: bytes) -> bytes:
        rnd = self.rnd
        data = bytearray(raw)
        op = rnd.randrange(6)
        if op == 0 and data:
            for _ in range(rnd.randint(1, 4)):
                data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
        elif op == 1 and data:
            del data[rnd.randrange(len(data)) :]
        elif op == 2:
            data += rnd.randbytes(rnd.randint(1, 64))
        elif op == 3 and len(data) > 2:
            i = rnd.randrange(len(data))
            j = rnd.randrange(i, len(data))
            data[i:j] = rnd.randbytes(j - i)
        elif op == 4 and data:
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        else:
            return rnd.randbytes(rnd.randint(0, 200))
        return bytes(data)

    def _randomFrame(self, streamIds: list[str]) -> bytes:
        rnd = self.rnd
        frame = relay_pb2.RelayMessageFrame(
            version=rnd.choice([1, 1, 1, 0, 2]), stream_id=rnd.choice([*streamIds, "", " x"])
        )
        kind = rnd.randrange(7)
        if kind == 0:
            frame.data.seq = rnd.choice([0, 1, 63, 64, 65, 2**32 - 1])
            frame.data.segment_index = rnd.choice([0, 0, 1])
            frame.data.segment_count = rnd.choice([1, 1, 0, 2])
            frame.data.payload = rnd.randbytes(rnd.choice([0, 1, 15, 16, 17, 100, 61456]))
        elif kind == 1:
            frame.handshake.payload = rnd.randbytes(rnd.choice([0, 1, 3568, 3572, 5000]))
        elif kind == 2:
            frame.reset.reason = rnd.choice(["", "x", "noise_relay_protocol_error"])
        elif kind == 3:
            frame.resume.next_seq = rnd.randrange(100)
        elif kind == 4:
            frame.ack_frame.SetInParent()
        elif kind == 5:
            frame.heartbeat.SetInParent()
        if rnd.random() < 0.2:
            frame.traceparent = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
        out: bytes = frame.SerializeToString()
        return out

    def _nextFrame(
        self, guard: NoiseHarnessStream, victim: NoiseHarnessStream | None
    ) -> tuple[str, bytes]:
        rnd = self.rnd
        ids = [f"fz-{rnd.randrange(40)}"] + ([victim.streamId] if victim else [])
        choice = rnd.randrange(8)
        if choice <= 1:
            hello = encodeHandshake(rnd.choice(ids), rnd.choice(self._hellos))
            return "mutated-handshake", self._mutate(hello)
        if choice == 2:
            # A valid message 1 replayed on another stream id (prologue mismatch).
            return "spliced-handshake", encodeHandshake(rnd.choice(ids), rnd.choice(self._hellos))
        if choice == 3 and victim is not None and victim.established:
            frames = victim.encodeMessage(b'{"id":1,"method":"x"}')
            return "victim-data", self._mutate(frames[0]) if rnd.random() < 0.7 else frames[0]
        if choice == 4:
            return "random-frame", self._randomFrame(ids)
        if choice == 5:
            return "mutated-control", self._mutate(
                rnd.choice(
                    [
                        encodeReset(ids[0], "r"),
                        encodeResume(ids[0]),
                        encodeData(ids[0], 0, b"x" * 20),
                    ]
                )
            )
        return "garbage", rnd.randbytes(rnd.randint(0, 300))

    # -- run ----------------------------------------------------------------------------------

    def run(self, frames: int) -> FuzzStats:
        while self.stats.frames < frames:
            self._epoch(frames)
        return self.stats

    def _epoch(self, total: int) -> None:
        demux = self._newDemux()
        guard = self._open(demux)
        victim: NoiseHarnessStream | None = self._open(demux)
        self.stats.epochs += 1
        epoch = self.stats.epochs
        sinceCheck = 0
        while self.stats.frames < total:
            kind, raw = self._nextFrame(guard, victim)
            if _targets(raw, guard.streamId):
                continue
            self.stats.kinds[kind] = self.stats.kinds.get(kind, 0) + 1
            before = demux.failedHandshakes
            try:
                demux.frameReceived(raw)
            except Exception as e:
                raise FuzzInvariantError(
                    f"epoch {epoch}, frame {self.stats.frames} ({kind}): {e!r}"
                ) from e
            self.stats.frames += 1
            self.stats.handshakeFailures += demux.failedHandshakes - before
            if demux.failedHandshakes > demux.maxFailedHandshakes:
                raise FuzzInvariantError("more failed handshakes charged than the limit")
            if demux.exhausted:
                if self.exhaustedCalls != 1 or demux.failedHandshakes != demux.maxFailedHandshakes:
                    raise FuzzInvariantError(
                        f"websocket ended after {demux.failedHandshakes} failed handshakes, "
                        f"reported {self.exhaustedCalls} times"
                    )
                self._checkEnded(demux, guard)
                self.stats.exhaustions += 1
                self.stats.resetsSent += demux.resetsSent
                return
            if victim is not None and victim.failed is None:
                # Keep the victim's view current; mutations may end it, which is allowed.
                with suppress(NoiseStreamError):
                    self._drain(victim)
            else:
                self.sent.clear()
            sinceCheck += 1
            lastChance = demux.failedHandshakes == demux.maxFailedHandshakes - 1
            if lastChance and demux.failedHandshakes > before:
                # One failure short of the limit: the guard must still be untouched.
                sinceCheck = self.checkEvery
            if sinceCheck >= self.checkEvery:
                sinceCheck = 0
                self._checkGuard(demux, guard, f"epoch {epoch}, frame {self.stats.frames}")
                if (
                    victim is None
                    or victim.failed is not None
                    or victim.streamId not in demux.streamIds
                ):
                    victim = self._open(demux)
        self._checkGuard(demux, guard, f"end of epoch {epoch}")
        self.stats.resetsSent += demux.resetsSent

    def _checkEnded(self, demux: NoiseRelayDemux, guard: NoiseHarnessStream) -> None:
        """After the limit the websocket is over: nothing more is answered on it."""
        self.sent.clear()
        for raw in guard.encodeMessage(b'{"id":-1,"method":"ping"}'):
            demux.frameReceived(raw)
        if self.sent:
            raise FuzzInvariantError("the demux answered after ending the websocket")


def _targets(raw: bytes, streamId: str) -> bool:
    """Does this (possibly mutated) frame decode with ``streamId``?"""
    frame = relay_pb2.RelayMessageFrame()
    try:
        frame.ParseFromString(raw)
    except Exception:
        return False
    return bool(frame.stream_id == streamId)
