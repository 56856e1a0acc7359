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

Per stream, when the rendezvous acknowledges delivery (``ack_frame``, see ``window.py``), a
:class:`~.window.StreamWindow` pauses that stream's processor alone once ``windowBytes`` are
unacknowledged (its harness is not reading), and resets the stream (not the websocket) when it
stays stalled for ``stallSeconds``. A stream's processor runs only while neither the websocket
nor its own window holds it back: the stream's lifecycle (``lifecycle.py``) tracks both holds,
and the websocket-wide pause and the processor calls are shared with the Noise demux
(``streams.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from twisted_exec.executor.core.interfaces import IJsonRpcProcessor, IMessageSink, IProcessorFactory
from twisted_exec.executor.transports.defaults import MAX_STREAMS as MAX_STREAMS
from twisted_exec.executor.transports.relay.lifecycle import StreamCore
from twisted_exec.executor.transports.relay.streams import StreamTable
from twisted_exec.executor.transports.relay.window import StreamWindow
from twisted_exec.wire.errors import INVALID_REQUEST
from twisted_exec.wire.frames import Data, FrameCodec, Ignored, Invalid, Reset, encodeReset

#: Reset reason of a stream whose harness stopped reading for longer than the stall deadline.
STREAM_STALLED = "stream stalled: the harness has not read its output for {seconds:g} s"

log = Logger()


class _Stream(StreamCore):
    """One clear stream: its lifecycle, and its window once the rendezvous acknowledges it."""

    __slots__ = ("window",)

    def __init__(self, streamId: str, processor: IJsonRpcProcessor) -> None:
        super().__init__(streamId, processor)
        self.window: StreamWindow | None = None  # per-stream flow control, once acked


@implementer(IMessageSink)
class _StreamSink:
    """What a stream's processor writes to: frames its messages onto the shared websocket."""

    def __init__(self, demux: RelayDemux, stream: _Stream) -> None:
        self._demux = demux
        self._stream = stream

    def sendMessage(self, payload: bytes) -> None:
        if not self._stream.live:
            # The stream ended (reset, websocket lost): the session is detached and must not
            # write onto a stream id that may already belong to someone else.
            return
        raw = self._demux.codec.encode(self._stream.streamId, payload)
        self._demux._send(raw)
        if self._stream.window is not None:
            self._stream.window.sent(len(raw))

    def loseConnection(self) -> None:
        self._demux._closeStream(self._stream, "closed by its session")


class RelayDemux(StreamTable[_Stream]):
    """Routes decoded frames to per-stream processors; ``send`` writes one binary message."""

    def __init__(
        self,
        processorFactory: IProcessorFactory,
        send: Callable[[bytes], None],
        codec: FrameCodec | None = None,
        *,
        maxStreams: int | None = MAX_STREAMS,
        clock: IReactorTime | None = None,
        windowBytes: int = 4 * 1024 * 1024,
        stallSeconds: float = 60.0,
    ) -> None:
        super().__init__()
        self._factory = processorFactory
        self._clock = clock  # None: no per-stream windows (acks are ignored)
        self.windowBytes = windowBytes
        self.stallSeconds = stallSeconds
        self.stalledStreams = 0  # streams reset by their stall deadline (for tests and status)
        self._earlyAcks: dict[str, int] = {}  # acks for streams without a data frame yet
        self._send = send
        self.codec = codec if codec is not None else FrameCodec()
        self.maxStreams = maxStreams
        self.refusedStreams = 0  # streams refused by maxStreams (for tests and status)

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
            if event.kind == "ack_frame":
                stream = self._streams.get(event.streamId)
                if stream is None:
                    self._earlyAck(event.streamId, event.ack)
                else:
                    self._acked(stream, event.ack)
            elif event.streamId in self._streams:
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

    # -- per-stream windows ------------------------------------------------------------------

    def _newWindow(self, stream: _Stream) -> None:
        """Every stream counts its frames from the start; acks switch the window on."""
        if self._clock is None:
            return
        stream.window = StreamWindow(
            self._clock,
            self.windowBytes,
            self.stallSeconds,
            onPause=lambda: self._windowPaused(stream),
            onResume=lambda: self._windowResumed(stream),
            onStall=lambda: self._stalled(stream),
        )
        early = self._earlyAcks.pop(stream.streamId, None)
        if early is not None:
            stream.window.acked(early)

    def _earlyAck(self, streamId: str, delivered: int) -> None:
        """The rendezvous acknowledges a route (ack 0) before its first data frame arrives."""
        if self._clock is None:
            return
        self._earlyAcks[streamId] = delivered
        while len(self._earlyAcks) > (self.maxStreams or MAX_STREAMS):
            del self._earlyAcks[next(iter(self._earlyAcks))]

    def _acked(self, stream: _Stream, delivered: int) -> None:
        if stream.window is not None and stream.live:
            stream.window.acked(delivered)

    def _windowPaused(self, stream: _Stream) -> None:
        if stream.lifecycle.windowPaused():
            self._call(stream, stream.processor.pauseProducing)

    def _windowResumed(self, stream: _Stream) -> None:
        if stream.lifecycle.windowResumed() and not self._paused:
            self._call(stream, stream.processor.resumeProducing)

    def _stalled(self, stream: _Stream) -> None:
        """Stuck beyond the deadline: reset this stream; the websocket and the others live on."""
        if not stream.live or self._lost:
            return
        self.stalledStreams += 1
        reason = STREAM_STALLED.format(seconds=self.stallSeconds)
        log.warn(
            "relay stream {streamId!r} reset: {reason}", streamId=stream.streamId, reason=reason
        )
        self._send(encodeReset(stream.streamId, reason))
        self._closeStream(stream, "stalled")

    def _dataReceived(self, event: Data) -> None:
        stream = self._streams.get(event.streamId)
        if stream is None:
            if self.maxStreams is not None and len(self._streams) >= self.maxStreams:
                self._refuseStream(event)
                return
            processor = self._factory.buildProcessor(None)
            stream = _Stream(event.streamId, processor)
            self._streams[event.streamId] = stream
            self._newWindow(stream)
            self.codec.forget(event.streamId)
            log.debug("relay stream {streamId!r} opened", streamId=event.streamId)
            sink = _StreamSink(self, stream)
            self._opened(stream, lambda: processor.makeConnection(sink))
            if not stream.live:
                return
        target = stream.processor
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

    def _closeStream(self, stream: _Stream, why: str) -> None:
        if not self._retire(stream):
            return
        if stream.window is not None:
            stream.window.close()
        self.codec.forget(stream.streamId)
        log.debug("relay stream {streamId!r} ended: {why}", streamId=stream.streamId, why=why)
        if not stream.delivering:
            self._drained(stream)


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
