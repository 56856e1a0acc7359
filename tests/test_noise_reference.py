"""Our Noise initiator against the real Codex 0.171 executor, and the same harness against ours.

A tiny environment registry (register, validate) and a websocket stand in for the cloud; the
test is the harness on that websocket: ``resume`` + ``handshake{msg1}`` on a UUIDv4 stream,
``handshake{msg2}`` back, then JSON-RPC over Noise records. Against the 0.171 binary this
shows the pattern (message 2 = ``ekem, skem, e, ee, se``), the u64 prologue (a u32 one is
reset), the authorization in message 1, the validate call and the record framing are the
reference's, byte for byte. Skipped when the 0.171 binary is absent.
"""

from __future__ import annotations

import base64
import json
import os
import struct
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IProcessTransport
from twisted.trial.unittest import TestCase

from tests.support.children import ChildOutput, spawnChild
from tests.support.reference import binary171, codexHome, spawnReference
from twisted_exec.executor.transports.relay.environment_registry import EnvironmentConfig
from twisted_exec.executor.transports.relay.environment_service import EnvironmentExecutorService
from twisted_exec.harness.noise_stream import ConnectBundle, NoiseHarnessStream
from twisted_exec.testing.noise_cloud import AUTHORIZATION, NoiseCloud
from twisted_exec.wire import noise, relay_pb2
from twisted_exec.wire.frames import encodeHandshake

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 20.0


def bounded(d: Deferred[Any], timeout: float = TIMEOUT) -> Deferred[Any]:
    return d.addTimeout(timeout, reactor)


async def nextFrame(ws: Any) -> relay_pb2.RelayMessageFrame:
    while not ws.inbox:
        ws.waiter = Deferred()
        await bounded(ws.waiter)
    frame = relay_pb2.RelayMessageFrame()
    frame.ParseFromString(ws.inbox.pop(0))
    return frame


async def openStream(cloud: NoiseCloud, ws: Any) -> NoiseHarnessStream:
    assert cloud.executorKey is not None
    bundle = ConnectBundle("e1", "ws://unused", "reg-1", cloud.executorKey, AUTHORIZATION)
    stream = NoiseHarnessStream(cloud.harness, bundle)
    for raw in stream.openingFrames():
        ws.sendMessage(raw, isBinary=True)
    while not stream.established:
        frame = await nextFrame(ws)
        stream.frameReceived(frame.SerializeToString())
    return stream


async def rpc(ws: Any, stream: NoiseHarnessStream, message: dict[str, Any]) -> list[Any]:
    """Send one request; collect messages until its response arrives."""
    for raw in stream.encodeMessage(json.dumps(message).encode()):
        ws.sendMessage(raw, isBinary=True)
    seen: list[Any] = []
    while not any(m.get("id") == message["id"] for m in seen):
        frame = await nextFrame(ws)
        seen.extend(json.loads(m) for m in stream.frameReceived(frame.SerializeToString()))
    return seen


def ppidCommand(home: str) -> dict[str, Any]:
    """0.171 ``process/start`` params of a command that prints its parent's pid (the executor's)."""
    return {
        "processId": "p1",
        "argv": ["/bin/sh", "-c", "echo ppid=$PPID"],
        "cwd": Path(home).as_uri(),
        "env": {},
        "tty": False,
        "pipeStdin": False,
        "arg0": None,
        "sandbox": None,
    }


def startReferenceBehind(case: TestCase) -> tuple[NoiseCloud, str, IProcessTransport]:
    """A NoiseCloud and the 0.171 reference registered with it as environment ``e1``."""
    binary171()  # skip before listening when the binary is absent
    cloud = NoiseCloud(reactor)
    case.addCleanup(cloud.listening.stopListening)
    home = codexHome(case)
    argv = ["--remote", cloud.url, "--environment-id", "e1"]
    transport = spawnReference(
        case, ChildOutput(), home, *argv, env={"CODEX_API_KEY": "test-bearer"}
    )
    return cloud, home, transport


def startOursBehind(case: TestCase, **options: Any) -> NoiseCloud:
    """A NoiseCloud and our executor, in this process, registered with it as environment ``e1``."""
    from twisted_exec.executor.executor import Executor

    cloud = NoiseCloud(reactor)
    case.addCleanup(cloud.listening.stopListening)
    executor = Executor(reactor)
    case.addCleanup(executor.shutdown)
    config = EnvironmentConfig.fromInputs(cloud.url, "e1", environ={"CODEX_API_KEY": "tb"})
    service = EnvironmentExecutorService(reactor, executor.processorFactory, config, **options)
    service.startService()
    case.addCleanup(lambda: service.stopService() if service.running else None)
    return cloud


class Reference171Tests(TestCase):
    timeout = 60

    async def test_handshakeAndJsonRpcWithReference(self) -> None:
        cloud, home, transport = startReferenceBehind(self)
        ws = await bounded(cloud.executorConnected)

        # The register call: bearer, compact body, the suite's key shape.
        [(headers, body)] = cloud.registrations
        self.assertEqual(headers["authorization"], "Bearer test-bearer")
        self.assertTrue(body.startswith(b'{"security_profile":"noise_hybrid_ik_v1",'))
        assert cloud.executorKey is not None

        # A u32-prologue handshake (the older source's width) is reset by 0.171.
        streamId = "7f0c1a52-9a7e-4e55-9d1c-000000000001"
        u32 = b"".join(
            struct.pack(">I", len(p)) + p
            for p in (noise.PROLOGUE_DOMAIN, b"e1", b"reg-1", streamId.encode())
        )
        old = noise.InitiatorHandshake(cloud.harness, cloud.executorKey, u32, b"x")
        ws.sendMessage(encodeHandshake(streamId, old.message1), isBinary=True)
        frame = await nextFrame(ws)
        self.assertEqual((frame.WhichOneof("body"), frame.stream_id), ("reset", streamId))
        self.assertEqual(frame.reset.reason, "noise_relay_protocol_error")

        stream = await openStream(cloud, ws)
        [(vheaders, validation)] = cloud.validations
        self.assertEqual(vheaders["x-codex-noise-stream-id"], stream.streamId)
        self.assertEqual(validation["executor_registration_id"], "reg-1")
        self.assertEqual(validation["harness_key_authorization"], AUTHORIZATION)

        [init] = await rpc(
            ws,
            stream,
            {
                "id": 1,
                "method": "initialize",
                "params": {"clientName": "codex-environment", "resumeSessionId": None},
            },
        )
        self.assertIn("sessionId", init["result"])
        ws.sendMessage(
            stream.encodeMessage(b'{"method":"initialized","params":{}}')[0], isBinary=True
        )
        start = {"id": 2, "method": "process/start", "params": ppidCommand(home)}
        messages = await rpc(ws, stream, start)
        while not any(m.get("method") == "process/closed" for m in messages):
            frame = await nextFrame(ws)
            messages.extend(json.loads(m) for m in stream.frameReceived(frame.SerializeToString()))
        chunks = b"".join(
            base64.b64decode(m["params"]["chunk"])
            for m in messages
            if m.get("method") == "process/output"
        )
        self.assertEqual(chunks, f"ppid={transport.pid}\n".encode())


class HarnessLibraryTests(TestCase):
    """``connectEnvironment`` (our harness library) through a routing rendezvous."""

    timeout = 60

    async def runAgainst(self, cloud: NoiseCloud) -> Any:
        from twisted_exec.harness import connectEnvironment

        await bounded(cloud.executorConnected)
        connection = await bounded(connectEnvironment(reactor, cloud.url, "e1", "harness-bearer"))
        self.addCleanup(connection.close)
        self.assertEqual(len(cloud.connects), 1)
        self.assertEqual(list(cloud.connects[0]), ["harness_public_key"])
        session = await bounded(connection.openSession("codex-environment"))
        self.assertTrue(session.sessionId)
        return connection, session

    async def test_againstReference(self) -> None:
        cloud, home, transport = startReferenceBehind(self)
        _, session = await self.runAgainst(cloud)
        outputs: list[bytes] = []
        closed: Deferred[None] = Deferred()

        def onNote(message: Any) -> None:
            if message.get("method") == "process/output":
                outputs.append(base64.b64decode(message["params"]["chunk"]))
            if message.get("method") == "process/closed" and not closed.called:
                closed.callback(None)

        session.onNotification(onNote)
        result = await bounded(session.call("process/start", ppidCommand(home)))
        self.assertEqual(result["processId"], "p1")
        await bounded(closed)
        self.assertEqual(b"".join(outputs), f"ppid={transport.pid}\n".encode())

    async def test_againstOurs(self) -> None:
        cloud = startOursBehind(self)
        await self.runAgainst(cloud)


class CodexExecNoiseTests(TestCase):
    """``codex-exec --noise -e ID run`` through the routing rendezvous to our executor."""

    timeout = 60

    async def test_runOverNoise(self) -> None:
        import sys

        cloud = startOursBehind(self)
        await bounded(cloud.executorConnected)
        proto = ChildOutput()
        argv = [sys.executable, "-m", "twisted_exec.cli", "--rendezvous", cloud.url]
        argv += ["--noise", "-e", "e1", "run", "--", "/bin/sh", "-c", "echo noise-ok; exit 4"]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)}
        env["CODEX_RENDEZVOUS_TOKEN"] = "harness-bearer"
        spawnChild(self, proto, argv, env, path=str(ROOT))
        code = await bounded(proto.ended, 40)
        self.assertEqual((proto.stdout, code), (b"noise-ok\n", 4), proto.stderr)
        self.assertEqual(len(cloud.connects), 1)
        self.assertEqual(len(cloud.validations), 1)


class OursTests(TestCase):
    """The same harness against our executor (``--environment-id``), in this process."""

    timeout = 30

    async def test_handshakeAndJsonRpcWithOurs(self) -> None:
        cloud = startOursBehind(self)
        ws = await bounded(cloud.executorConnected)
        [(headers, _)] = cloud.registrations
        self.assertEqual(headers["authorization"], "Bearer tb")
        stream = await openStream(cloud, ws)
        [init] = await rpc(
            ws,
            stream,
            {"id": 1, "method": "initialize", "params": {"clientName": "codex-environment"}},
        )
        self.assertIn("sessionId", init["result"])
        self.assertEqual(len(cloud.validations), 1)


class ReconnectTests(TestCase):
    """Registration reuse across reconnects, and registering again after a 4xx upgrade."""

    timeout = 30

    async def test_reusesRegistrationThenRegistersAgainAfter4xx(self) -> None:
        cloud = startOursBehind(self, retryPolicy=lambda n: 0.05)
        ws = await bounded(cloud.executorConnected)
        firstKey = cloud.executorKey

        # A dropped websocket: reconnect with the same registration (no second register).
        ws.dropConnection(abort=True)
        await bounded(cloud.waitForEnvironmentConnections(2))
        self.assertEqual(len(cloud.registrations), 1)
        # A refused upgrade (403): register again, with the same in-memory key.
        cloud.refuseEnvironmentUpgrades = 1
        cloud.environmentWs.dropConnection(abort=True)
        await bounded(cloud.waitForEnvironmentConnections(3))
        self.assertEqual(len(cloud.registrations), 2)
        self.assertEqual(cloud.executorKey, firstKey)
        stream = await openStream(cloud, cloud.environmentWs)
        self.assertTrue(stream.established)
