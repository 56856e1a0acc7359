"""Sans-IO demultiplexer: one relay websocket, many virtual streams, one processor per stream.

Frames are routed by ``stream_id``. A stream's processor is built on its first data frame (a
harness may or may not send ``resume`` first; the reference needs neither), and everything the
processor emits is framed back onto the same stream with that stream's outbound seq.

- ``reset`` ends one stream: its processor gets ``connectionLost()`` (the session detaches and can
  be resumed for 10 s) and the id is forgotten, so a later data frame on it starts afresh.
- Losing the websocket ends every stream the same way.
- A processor that closes its own sink (session-killing input) ends its stream the same way; no
  frame is sent, as in the reference, and the next data frame on that id opens a new session.
- Invalid frames and control frames for unknown streams are dropped with a log line; they never
  disturb other streams.
- At most ``maxStreams`` streams live at once: the first data frame of one more stream is answered
  with a JSON-RPC error (when it is a request) and a ``reset`` frame naming the limit, and no
  processor is built for it.

Flow control (``docs/flow-control.md``): the relay websocket's backpressure producer calls
:meth:`RelayDemux.pauseProducing` / :meth:`RelayDemux.resumeProducing`, which reach every stream's
processor. A resume hands the websocket to the streams in rotating order and stops as soon as one
of them fills it again, so a flooding stream cannot always be first in line (fair interleaving).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from twisted.logger import Logger
from zope.interface import implementer

from twisted_exec.executor.core.interfaces import IJsonRpcProcessor, IMessageSink, IProcessorFactory
from twisted_exec.wire.errors import INVALID_REQUEST
from twisted_exec.wire.frames import Data, FrameCodec, Ignored, Invalid, Reset, encodeReset

#: Default limit of concurrent streams on one relay websocket (``--max-streams``).
MAX_STREAMS = 4096

log = Logger()


class _Stream:
    """Book-keeping for one live stream."""

    def __init__(self, streamId: str) -> None:
        self.streamId = streamId
        self.processor: IJsonRpcProcessor | None = None
        self.closed = False
        # Depth of calls into the processor in progress, so a processor that closes its own
        # sink from inside messageReceived gets connectionLost() after that call returns.
        self.delivering = 0
        self.lostPending = False


@implementer(IMessageSink)
class _StreamSink:
    """What a stream's processor writes to: frames its messages onto the shared websocket."""

    def __init__(self, demux: RelayDemux, stream: _Stream) -> None:
        self._demux = demux
        self._stream = stream

    def sendMessage(self, payload: bytes) -> None:
        if self._stream.closed:
            # The stream ended (reset, websocket lost): the session is detached and must not
            # write onto a stream id that may already belong to someone else.
            return
        self._demux._send(self._demux.codec.encode(self._stream.streamId, payload))

    def loseConnection(self) -> None:
        self._demux._closeStream(self._stream, "closed by its session")


class RelayDemux:
    """Routes decoded frames to per-stream processors; ``send`` writes one binary message."""

    def __init__(
        self,
        processorFactory: IProcessorFactory,
        send: Callable[[bytes], None],
        codec: FrameCodec | None = None,
        *,
        maxStreams: int | None = MAX_STREAMS,
    ) -> None:
        self._factory = processorFactory
        self._send = send
        self.codec = codec if codec is not None else FrameCodec()
        self.maxStreams = maxStreams
        self._streams: dict[str, _Stream] = {}
        self._lost = False
        self._paused = False
        self._rotation = 0  # where the next resume starts (round robin over the streams)
        self.refusedStreams = 0  # streams refused by maxStreams (for tests and status)

    @property
    def paused(self) -> bool:
        return self._paused

    def pauseProducing(self) -> None:
        """The websocket's write buffer is full: pause every stream's processor."""
        if self._paused or self._lost:
            return
        self._paused = True
        for stream in list(self._streams.values()):
            if stream.processor is not None:
                self._call(stream, stream.processor.pauseProducing)

    def resumeProducing(self) -> None:
        """The write buffer drained: resume the streams, each in turn first, until full again."""
        if not self._paused or self._lost:
            return
        self._paused = False
        streams = list(self._streams.values())
        if not streams:
            return
        start = self._rotation % len(streams)
        self._rotation = start + 1
        order = streams[start:] + streams[:start]
        for stream in order:
            if stream.processor is not None and not stream.closed:
                self._call(stream, stream.processor.resumeProducing)
            if self._paused:
                # That stream filled the websocket again: the rest stay paused (they were
                # never resumed) and go first next time.
                self._rotation = start + order.index(stream) + 1
                return

    @property
    def streamIds(self) -> frozenset[str]:
        """The streams that currently have a processor."""
        return frozenset(self._streams)

    def frameReceived(self, raw: bytes) -> None:
        """One binary websocket message from the rendezvous."""
        if self._lost:
            return
        event = self.codec.decode(raw)
        if isinstance(event, Data):
            self._dataReceived(event)
        elif isinstance(event, Reset):
            stream = self._streams.get(event.streamId)
            if stream is None:
                log.debug(
                    "relay reset for unknown stream {streamId!r} dropped", streamId=event.streamId
                )
                return
            log.debug(
                "relay stream {streamId!r} reset: {reason}",
                streamId=event.streamId,
                reason=event.reason,
            )
            self._closeStream(stream, "reset")
        elif isinstance(event, Ignored):
            if event.streamId in self._streams:
                log.debug(
                    "relay {kind} frame on stream {streamId!r} ignored",
                    kind=event.kind,
                    streamId=event.streamId,
                )
            else:
                log.debug(
                    "relay {kind} frame for unknown stream {streamId!r} dropped",
                    kind=event.kind,
                    streamId=event.streamId,
                )
        else:
            assert isinstance(event, Invalid)
            log.warn("invalid relay frame dropped: {reason}", reason=event.reason)

    def connectionLost(self) -> None:
        """The websocket is gone: every stream's session detaches."""
        if self._lost:
            return
        self._lost = True
        for stream in list(self._streams.values()):
            self._closeStream(stream, "websocket lost")

    def _dataReceived(self, event: Data) -> None:
        stream = self._streams.get(event.streamId)
        if stream is None:
            if self.maxStreams is not None and len(self._streams) >= self.maxStreams:
                self._refuseStream(event)
                return
            stream = _Stream(event.streamId)
            self._streams[event.streamId] = stream
            self.codec.forget(event.streamId)
            log.debug("relay stream {streamId!r} opened", streamId=event.streamId)
            processor = self._factory.buildProcessor(None)
            stream.processor = processor
            self._call(stream, lambda: processor.makeConnection(_StreamSink(self, stream)))
            if stream.closed:
                return
            if self._paused:
                self._call(stream, processor.pauseProducing)
        target = stream.processor
        assert target is not None
        payload = event.payload
        self._call(stream, lambda: target.messageReceived(payload))

    def _refuseStream(self, event: Data) -> None:
        """One stream too many: a clear error on that stream only; nothing is kept for it."""
        self.refusedStreams += 1
        reason = (
            f"too many streams on this relay connection (limit {self.maxStreams}; "
            "see --max-streams)"
        )
        log.warn(
            "relay stream {streamId!r} refused: {reason}", streamId=event.streamId, reason=reason
        )
        requestId = _requestId(event.payload)
        if requestId is not None:
            reply = {"error": {"code": INVALID_REQUEST, "message": reason}, "id": requestId}
            self._send(self.codec.encode(event.streamId, json.dumps(reply).encode()))
            self.codec.forget(event.streamId)
        self._send(encodeReset(event.streamId, reason))

    def _call(self, stream: _Stream, fn: Callable[[], None]) -> None:
        """Call into a stream's processor; its failures stay within that stream."""
        stream.delivering += 1
        try:
            fn()
        except Exception:
            log.failure("relay stream {streamId!r}: processor failed", streamId=stream.streamId)
        finally:
            stream.delivering -= 1
        if stream.delivering == 0 and stream.lostPending:
            stream.lostPending = False
            self._notifyLost(stream)

    def _closeStream(self, stream: _Stream, why: str) -> None:
        if stream.closed:
            return
        stream.closed = True
        if self._streams.get(stream.streamId) is stream:
            del self._streams[stream.streamId]
            self.codec.forget(stream.streamId)
        log.debug("relay stream {streamId!r} ended: {why}", streamId=stream.streamId, why=why)
        if stream.delivering:
            stream.lostPending = True
        else:
            self._notifyLost(stream)

    def _notifyLost(self, stream: _Stream) -> None:
        processor = stream.processor
        if processor is None:
            return
        try:
            processor.connectionLost()
        except Exception:
            log.failure(
                "relay stream {streamId!r}: processor failed in connectionLost",
                streamId=stream.streamId,
            )


def _requestId(payload: bytes) -> int | str | None:
    """The id of a JSON-RPC request payload, if it has a usable one (for the refusal reply)."""
    try:
        message = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict) or "method" not in message:
        return None
    ident = message.get("id")
    if isinstance(ident, bool) or not isinstance(ident, int | str):
        return None
    return ident
