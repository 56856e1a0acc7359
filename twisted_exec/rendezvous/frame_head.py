"""The little the rendezvous reads of a relay frame: its ``stream_id`` and its body kind.

The router forwards the original bytes; this parse only decides where they go (and the test
rendezvous uses it to tell routable frames from garbage).
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from twisted_exec.wire import relay_pb2
from twisted_exec.wire.frames import streamIdProblem


@dataclass(frozen=True)
class FrameHead:
    """What the router reads of a frame: its stream and body kind (``None`` when absent)."""

    streamId: str
    kind: str | None


def readHead(raw: bytes) -> FrameHead | str:
    """The frame's head, or why it cannot be routed (a reason safe for a log line)."""
    frame = relay_pb2.RelayMessageFrame()
    try:
        frame.ParseFromString(raw)
    except DecodeError:
        return f"undecodable relay frame ({len(raw)} bytes)"
    except Exception as e:  # other protobuf backends; never let a frame break a connection
        return f"undecodable relay frame ({len(raw)} bytes): {type(e).__name__}"
    streamId: str = frame.stream_id
    problem = streamIdProblem(streamId)
    if problem is not None:
        return problem
    return FrameHead(streamId, frame.WhichOneof("body"))
