"""The hand-written data frame encoder is byte for byte protobuf's serialization."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.wire import relay_pb2
from twisted_exec.wire.frames import FRAME_VERSION, Data, decodeFrame, encodeData


def protobufData(streamId: str, seq: int, payload: bytes) -> bytes:
    frame = relay_pb2.RelayMessageFrame(
        version=FRAME_VERSION,
        stream_id=streamId,
        data=relay_pb2.RelayData(seq=seq, segment_index=0, segment_count=1, payload=payload),
    )
    out: bytes = frame.SerializeToString()
    return out


class EncodeDataTests(SynchronousTestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=300), st.integers(0, 2**32 - 1), st.binary(max_size=400))
    def test_sameBytesAsProtobuf(self, streamId: str, seq: int, payload: bytes) -> None:
        self.assertEqual(encodeData(streamId, seq, payload), protobufData(streamId, seq, payload))

    def test_edges(self) -> None:
        big = b"x" * 70_000  # a length that needs three varint bytes
        for streamId, seq, payload in [("", 0, b""), ("s", 127, b"a"), ("s", 128, big)]:
            self.assertEqual(
                encodeData(streamId, seq, payload), protobufData(streamId, seq, payload)
            )
        event = decodeFrame(encodeData("8a5f0c3e-0000-4000-8000-000000000001", 5, b"{}"))
        self.assertEqual(event, Data("8a5f0c3e-0000-4000-8000-000000000001", 5, b"{}"))

    def test_seqOutOfRange(self) -> None:
        with self.assertRaises(ValueError):
            encodeData("s", 2**32, b"")
        with self.assertRaises(ValueError):
            encodeData("s", -1, b"")
