"""Sans-IO codec for ``RelayMessageFrame``: bytes in, typed events out; payloads in, bytes out.

The rules are the Codex CLI 0.131.0 executor's (see ``reference-0.131.md`` "Relay framing"):
version must be 1, the stream id must be non-empty, a data frame must be one whole message
(segment 0 of 1) with a non-empty payload, a reset needs a reason, and ack / resume / heartbeat
frames are accepted and ignored (0.131 has no reliability layer). Inbound ``seq`` is not checked.

We deliberately refuse stream ids longer than 128 bytes or with surrounding whitespace, as later
Codex releases do: 0.131 accepts them, but a harness never sends them (ids are UUIDs), and an
unbounded id is memory we would keep per stream.

Decoding never raises: whatever the bytes, the result is an event, and anything the executor
cannot act on is :class:`Invalid` with a reason fit for a log line (it never echoes the payload).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

FRAME_VERSION = 1
MAX_STREAM_ID_BYTES = 128
SEQ_MODULUS = 2**32

# What Rust's ``str::trim`` strips (Unicode White_Space). Python's ``str.isspace`` also counts
# U+001C..U+001F as space, which Rust does not; keep the reference's notion.
_WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


@dataclass(frozen=True)
class Data:
    """One complete JSON-RPC message for ``streamId``."""

    streamId: str
    seq: int
    payload: bytes = field(repr=False)


@dataclass(frozen=True)
class Reset:
    """The harness ended ``streamId``."""

    streamId: str
    reason: str


@dataclass(frozen=True)
class Ignored:
    """A valid control frame (``ack_frame``, ``resume``, ``heartbeat``) that needs no action.

    ``ack`` is the frame's ``ack`` field: our rendezvous' delivery count on an ``ack_frame``
    (per-stream flow control, docs/flow-control.md "Relay"); the reference ignores it.
    """

    streamId: str
    kind: str
    ack: int = 0


@dataclass(frozen=True)
class Handshake:
    """A Noise handshake message for ``streamId`` (decoded only with ``noise=True``)."""

    streamId: str
    payload: bytes = field(repr=False)


@dataclass(frozen=True)
class Invalid:
    """A frame we drop; ``reason`` is safe to log."""

    reason: str


FrameEvent = Data | Reset | Ignored | Handshake | Invalid

#: ``relay_pb2`` and protobuf's ``DecodeError``, imported by the first frame decoded or built
#: with protobuf (:func:`_protobuf`): protobuf's runtime and descriptor pool are ~2.5 MiB and 36
#: modules that an idle executor, connected but with no stream, never uses (data frames out are
#: written by hand, :func:`encodeData`).
_pb2: ModuleType | None = None
_DecodeError: Any = None


def _protobuf() -> ModuleType:
    global _pb2, _DecodeError
    if _pb2 is None:
        from google.protobuf.message import DecodeError

        from twisted_exec.wire import relay_pb2

        _DecodeError = DecodeError
        _pb2 = relay_pb2
    return _pb2


def streamIdProblem(streamId: str) -> str | None:
    """Why ``streamId`` is refused, or ``None`` when it is acceptable."""
    if not streamId:
        return "empty stream_id"
    size = len(streamId.encode("utf-8"))
    if size > MAX_STREAM_ID_BYTES:
        return f"stream_id of {size} bytes exceeds {MAX_STREAM_ID_BYTES}"
    if streamId[0] in _WHITESPACE or streamId[-1] in _WHITESPACE:
        return "stream_id has leading or trailing whitespace"
    return None


def decodeFrame(raw: bytes, *, noise: bool = False) -> FrameEvent:
    """Decode and validate one binary websocket message.

    ``noise`` is the encrypted relay of 0.171 (``--environment-id``): a ``handshake`` frame is
    then a :class:`Handshake` (its payload must be non-empty, as 0.171's ``validate`` wants);
    in clear mode it stays :class:`Invalid`. ``traceparent``/``tracestate`` are ignored.
    """
    frame = (_pb2 or _protobuf()).RelayMessageFrame()
    try:
        frame.ParseFromString(raw)
    except Exception as e:  # other protobuf backends too; a frame must never break the connection
        if isinstance(e, _DecodeError):
            return Invalid(f"undecodable relay frame ({len(raw)} bytes): {e}")
        return Invalid(f"undecodable relay frame ({len(raw)} bytes): {type(e).__name__}")
    if frame.version != FRAME_VERSION:
        return Invalid(f"unsupported relay frame version {frame.version}")
    streamId: str = frame.stream_id
    problem = streamIdProblem(streamId)
    if problem is not None:
        return Invalid(problem)
    kind = frame.WhichOneof("body")
    if kind == "data":
        data = frame.data
        if data.segment_index != 0 or data.segment_count != 1:
            return Invalid(
                f"segmented relay data frame on stream {streamId!r} "
                f"(segment {data.segment_index} of {data.segment_count}) is not supported"
            )
        payload = data.payload  # each read of the field is a fresh copy of the payload
        if not payload:
            return Invalid(f"empty relay data payload on stream {streamId!r}")
        return Data(streamId, data.seq, payload)
    if kind == "reset":
        if not frame.reset.reason:
            return Invalid(f"relay reset without reason on stream {streamId!r}")
        return Reset(streamId, frame.reset.reason)
    if kind in ("ack_frame", "resume", "heartbeat"):
        return Ignored(streamId, kind, frame.ack)
    if kind == "handshake":
        if not noise:
            return Invalid(f"relay handshake on stream {streamId!r}: encryption is not supported")
        if not frame.handshake.payload:
            return Invalid(f"relay handshake without payload on stream {streamId!r}")
        return Handshake(streamId, frame.handshake.payload)
    return Invalid(f"relay frame without body on stream {streamId!r}")


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL_VARINTS[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_VARINTS = tuple(bytes((n,)) for n in range(0x80))
_VERSION = b"\x08" + _varint(FRAME_VERSION)  # ``version = 1`` (field 1, varint)
_SEGMENT_COUNT_ONE = b"\x18\x01"  # RelayData.segment_count = 1 (field 3); segment_index 0 omitted


def encodeData(streamId: str, seq: int, payload: bytes) -> bytes:
    """One whole-message data frame, as the reference sends them (ack and ack_bits 0).

    Written by hand, byte for byte what protobuf serializes (fields in number order, zero
    values left out; ``tests/test_frames_fast.py`` holds the two together): this runs once per
    outbound message, and building the two protobuf messages cost about 3 µs of a ~50 µs call.
    """
    if not 0 <= seq < SEQ_MODULUS:
        raise ValueError(f"seq out of range: {seq}")
    sid = streamId.encode("utf-8")
    body = b"".join(
        (
            b"\x08" + _varint(seq) if seq else b"",
            _SEGMENT_COUNT_ONE,
            b"\x22" + _varint(len(payload)) if payload else b"",
            payload,
        )
    )
    head = b"".join((_VERSION, b"\x12", _varint(len(sid)), sid)) if sid else _VERSION
    return b"".join((head, b"\x2a", _varint(len(body)), body))


def encodeHandshake(streamId: str, payload: bytes) -> bytes:
    """A Noise handshake frame (message 1 from a harness, message 2 from an executor)."""
    pb = _pb2 or _protobuf()
    frame = pb.RelayMessageFrame(
        version=FRAME_VERSION,
        stream_id=streamId,
        handshake=pb.RelayHandshake(payload=payload),
    )
    out: bytes = frame.SerializeToString()
    return out


def encodeReset(streamId: str, reason: str) -> bytes:
    """A reset frame (the 0.131 executor never sends one; the test rendezvous and harness do)."""
    pb = _pb2 or _protobuf()
    frame = pb.RelayMessageFrame(
        version=FRAME_VERSION, stream_id=streamId, reset=pb.RelayReset(reason=reason)
    )
    out: bytes = frame.SerializeToString()
    return out


def encodeResume(streamId: str, nextSeq: int = 0) -> bytes:
    """A resume frame, which a harness sends to open a stream."""
    pb = _pb2 or _protobuf()
    frame = pb.RelayMessageFrame(
        version=FRAME_VERSION, stream_id=streamId, resume=pb.RelayResume(next_seq=nextSeq)
    )
    out: bytes = frame.SerializeToString()
    return out


class FrameCodec:
    """Per-connection codec: stateless decoding, and the outbound ``seq`` counter of each stream.

    Outbound seq starts at 0 per stream and wraps at 2**32 (the field is a uint32). The demux
    calls :meth:`forget` when a stream ends, so a reused stream id starts again at 0, as the
    reference does.
    """

    def __init__(self) -> None:
        self._nextSeq: dict[str, int] = {}

    def decode(self, raw: bytes) -> FrameEvent:
        return decodeFrame(raw)

    def encode(self, streamId: str, payload: bytes) -> bytes:
        """Frame one outbound JSON-RPC message on ``streamId`` with the stream's next seq."""
        seq = self._nextSeq.get(streamId, 0)
        self._nextSeq[streamId] = (seq + 1) % SEQ_MODULUS
        return encodeData(streamId, seq, payload)

    def forget(self, streamId: str) -> None:
        self._nextSeq.pop(streamId, None)

    def nextSeq(self, streamId: str) -> int:
        """The seq the next outbound frame on ``streamId`` will carry (for tests and status)."""
        return self._nextSeq.get(streamId, 0)
