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
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.logger import Logger
from zope.interface import implementer

from ..interfaces import IJsonRpcProcessor, IMessageSink, IProcessorFactory
from .frames import Data, FrameCodec, Ignored, Invalid, Reset

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
    ) -> None:
        self._factory = processorFactory
        self._send = send
        self.codec = codec if codec is not None else FrameCodec()
        self._streams: dict[str, _Stream] = {}
        self._lost = False

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
                log.info(
                    "relay reset for unknown stream {streamId!r} dropped", streamId=event.streamId
                )
                return
            log.info(
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
                log.info(
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
            stream = _Stream(event.streamId)
            self._streams[event.streamId] = stream
            self.codec.forget(event.streamId)
            log.info("relay stream {streamId!r} opened", streamId=event.streamId)
            processor = self._factory.buildProcessor(None)
            stream.processor = processor
            self._call(stream, lambda: processor.makeConnection(_StreamSink(self, stream)))
            if stream.closed:
                return
        target = stream.processor
        assert target is not None
        payload = event.payload
        self._call(stream, lambda: target.messageReceived(payload))

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
