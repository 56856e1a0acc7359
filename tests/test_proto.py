"""The checked-in relay_pb2 matches proto/ and the wire layout in relay.md."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from twisted.trial.unittest import TestCase

from twisted_exec.wire import relay_pb2

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto" / "codex.exec_server.relay.v1.proto"
GENERATED = ROOT / "twisted_exec" / "wire"
HAVE_GRPC_TOOLS = importlib.util.find_spec("grpc_tools") is not None
NO_GRPC_TOOLS = "grpc_tools is not importable: install the dev extra to check generated code"


def regenerate(out: Path) -> None:
    env = dict(os.environ, PYTHON=sys.executable)
    subprocess.run(
        ["sh", str(ROOT / "scripts" / "gen_proto.sh"), str(out)],
        check=True,
        env=env,
        capture_output=True,
        timeout=60,
    )


def versionLine(text: str) -> str:
    return next(line for line in text.splitlines() if "Protobuf Python Version" in line)


class WireLayoutTests(TestCase):
    def test_vector(self) -> None:
        """relay.md's test vector: a resume frame on stream s-1."""
        frame = relay_pb2.RelayMessageFrame(
            version=1, stream_id="s-1", resume=relay_pb2.RelayResume(next_seq=0)
        )
        self.assertEqual(frame.SerializeToString(), bytes.fromhex("0801 1203 732d31 3a00"))

    def test_fieldNumbers(self) -> None:
        fields = {f.name: f.number for f in relay_pb2.RelayMessageFrame.DESCRIPTOR.fields}
        self.assertEqual(
            fields,
            {
                "version": 1,
                "stream_id": 2,
                "ack": 3,
                "ack_bits": 4,
                "data": 5,
                "ack_frame": 6,
                "resume": 7,
                "reset": 8,
                "heartbeat": 9,
                "handshake": 10,
                "traceparent": 11,
                "tracestate": 12,
            },
        )
        hs = {f.name: f.number for f in relay_pb2.RelayHandshake.DESCRIPTOR.fields}
        self.assertEqual(hs, {"payload": 1})
        data = {f.name: f.number for f in relay_pb2.RelayData.DESCRIPTOR.fields}
        self.assertEqual(data, {"seq": 1, "segment_index": 2, "segment_count": 3, "payload": 4})
        self.assertEqual(relay_pb2.DESCRIPTOR.package, "codex.exec_server.relay.v1")

    def test_dataFrameBytes(self) -> None:
        """A data frame as the reference emits it: seq 1, segment 0 of 1, ack fields absent."""
        frame = relay_pb2.RelayMessageFrame(
            version=1,
            stream_id="s",
            data=relay_pb2.RelayData(seq=1, segment_index=0, segment_count=1, payload=b"{}"),
        )
        self.assertEqual(
            frame.SerializeToString(), bytes.fromhex("0801 1201 73 2a08 0801 1801 22027b7d")
        )


class GeneratedCodeTests(TestCase):
    def setUp(self) -> None:
        if not HAVE_GRPC_TOOLS:
            self.skipTest(NO_GRPC_TOOLS)
        self.tmp = Path(tempfile.mkdtemp())
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", str(self.tmp)], check=False))
        regenerate(self.tmp)

    def test_descriptorIsCurrent(self) -> None:
        """The checked-in module describes exactly what proto/ declares (any protoc version)."""
        namespace: dict[str, object] = {}
        source = (self.tmp / "relay_pb2.py").read_text()
        # Compile the fresh module in a private pool so it does not clash with the imported one.
        fresh = descriptor_pb2.FileDescriptorProto()
        start = source.index("AddSerializedFile(") + len("AddSerializedFile(")
        end = source.index(")\n", start)
        exec(f"blob = {source[start:end]}", namespace)
        fresh.ParseFromString(namespace["blob"])  # type: ignore[arg-type]
        current = descriptor_pb2.FileDescriptorProto()
        relay_pb2.DESCRIPTOR.CopyToProto(current)
        self.assertEqual(
            current,
            fresh,
            "twisted_exec/relay/relay_pb2.py is stale: run scripts/gen_proto.sh",
        )

    def test_textIsCurrent(self) -> None:
        """Byte-identical output when the same generator version is installed."""
        fresh = (self.tmp / "relay_pb2.py").read_text()
        checkedIn = (GENERATED / "relay_pb2.py").read_text()
        if versionLine(fresh) != versionLine(checkedIn):
            self.skipTest(
                f"installed grpc_tools generates {versionLine(fresh)!r}, the checked-in code "
                f"has {versionLine(checkedIn)!r}; the descriptor check still applies"
            )
        for name in ("relay_pb2.py", "relay_pb2.pyi"):
            self.assertEqual(
                (GENERATED / name).read_text(),
                (self.tmp / name).read_text(),
                f"twisted_exec/relay/{name} is stale: run scripts/gen_proto.sh",
            )
