"""The relay transport (``--remote``): each connection is one virtual stream through a rendezvous.

Both executors run in remote mode against a registry and a rendezvous in this process, and the
runner plays the harness on the rendezvous's real ``/harness/{id}`` websocket.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred, DeferredQueue

from scripts.conformancelib.transport import (
    Connection,
    Event,
    LocalWsTarget,
    connectWs,
    fireWhenDone,
)

RELAY_TOKEN = "conformance-token-not-secret"


class RelayCloud:
    """A registry and a rendezvous on loopback, in this process: both executors register here
    and dial the rendezvous, and the runner plays the harness on its side of the relay."""

    def __init__(self, reactor: Any) -> None:
        from twisted_exec.testing.registry import FakeRegistry
        from twisted_exec.testing.rendezvous import Rendezvous

        self.reactor = reactor
        self.rendezvous = Rendezvous(reactor)
        self.rendezvous.listen()
        self.registry = FakeRegistry(RELAY_TOKEN, self.rendezvous.executorUrl)
        self.registry.listen(reactor)

    async def stop(self) -> None:
        self.rendezvous.closeAll()
        await self.rendezvous.stopListening()
        await self.registry.stopListening()


class RelayTarget(LocalWsTarget):
    """An executor started in remote mode (``--remote URL --executor-id ID``) against the
    in-process :class:`RelayCloud`. The runner is a harness on the rendezvous's real
    ``/harness/{id}`` websocket: :meth:`connect` opens a new stream on it (UUIDv4 stream id and
    an opening ``resume`` frame, as a harness does), and closing a connection sends a ``reset``.
    Its executor id is ``conformance-`` and its name."""

    def __init__(
        self, cloud: RelayCloud, name: str, argv: Sequence[str], env: dict[str, str], cwd: str
    ) -> None:
        executorId = f"conformance-{name.replace('#', '-')}"
        reactor = cloud.reactor
        remoteArgs = ["--remote", cloud.registry.baseUrl, "--executor-id", executorId]
        env = {**env, "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN": RELAY_TOKEN}
        super().__init__(reactor, name, [*argv, *remoteArgs], env, cwd)
        self.cloud = cloud
        self.executorId = executorId
        self.harness: Any = None
        self._streams: dict[str, RelayConnection] = {}
        self._proto.urlFound.addErrback(lambda _: None)  # no URL is printed in remote mode

    async def _start(self) -> None:
        rendezvous = self.cloud.rendezvous
        connected = rendezvous.waitForConnection(len(rendezvous.connections) + 1)
        self._transport = self.reactor.spawnProcess(
            self._proto, self.argv[0], self.argv, env=self.env, path=self.cwd
        )
        exited: Deferred[None] = Deferred()
        fireWhenDone(self._proto.ended, exited)
        either: list[Deferred[Any]] = [connected, exited]
        first = defer.DeferredList(either, fireOnOneCallback=True, consumeErrors=True)
        first.addTimeout(self.startTimeout, self.reactor)
        await first
        if not connected.called or self._proto.ended.called:
            tail = "\n".join(self._proto.output[-20:])
            raise RuntimeError(f"{self.name} did not connect to the rendezvous:\n{tail}")
        connection: Any = connected.result
        if connection.executorId != self.executorId:
            raise RuntimeError(f"unexpected executor {connection.executorId!r} connected")
        self.harness = await connectWs(self.reactor, rendezvous.harnessUrl(self.executorId))
        defer.ensureDeferred(self._pump())
        self.url = f"relay {rendezvous.baseUrl} executor {self.executorId}"

    def connect(self) -> Deferred[Connection]:
        from twisted_exec.wire.frames import encodeResume

        streamId = str(uuid.uuid4())
        conn = RelayConnection(self, streamId)
        self._streams[streamId] = conn
        self.sendFrame(encodeResume(streamId, 0))
        return defer.succeed(conn)

    def sendFrame(self, raw: bytes) -> None:
        self.harness.sendBinary(raw)

    async def _pump(self) -> None:
        """Route the frames the rendezvous sends this harness to their streams."""
        from twisted_exec.wire import relay_pb2

        while True:
            ev = await self.harness.receive()
            if ev.kind == "closed":
                for each in self._streams.values():
                    each.ended("harness websocket closed", ev.at)
                return
            if ev.kind != "binary":
                continue
            frame = relay_pb2.RelayMessageFrame()
            frame.ParseFromString(base64.b64decode(ev.data))
            conn = self._streams.get(frame.stream_id)
            if conn is None:
                continue
            body = frame.WhichOneof("body")
            if body == "data":
                text = frame.data.payload.decode("utf-8", "replace")
                conn.queue.put(Event("text", text, ev.at))
            elif body == "reset":
                conn.ended(f"reset: {frame.reset.reason}", ev.at)

    async def _stop(self) -> None:
        if self.harness is not None:
            await self.harness.close()
        await super()._stop()


class RelayConnection:
    """A :class:`Connection` over one relay stream."""

    def __init__(self, target: RelayTarget, streamId: str) -> None:
        self.target = target
        self.streamId = streamId
        self.queue: DeferredQueue[Event] = DeferredQueue()
        self._nextSeq = 0
        self._ended = False

    def send(self, text: str) -> None:
        from twisted_exec.wire.frames import encodeData

        payload = text.encode("utf-8", "surrogateescape")
        self.target.sendFrame(encodeData(self.streamId, self._nextSeq, payload))
        self._nextSeq = (self._nextSeq + 1) % 2**32

    def receive(self) -> Deferred[Event]:
        return self.queue.get()

    def ended(self, why: str, at: float) -> None:
        if not self._ended:
            self._ended = True
            self.queue.put(Event("closed", why, at))

    def close(self) -> Deferred[None]:
        from twisted_exec.wire.frames import encodeReset

        if not self._ended:
            self.target.sendFrame(encodeReset(self.streamId, "conformance closed"))
            self.ended("reset by harness", self.target.reactor.seconds())
        return defer.succeed(None)
