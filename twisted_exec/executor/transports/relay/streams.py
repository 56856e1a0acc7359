"""What both relay demuxes do alike with their live streams: flow control and processor calls.

The clear 0.131 demux (``demux.py``) and the Noise 0.171 one (``noise_demux.py``) route frames
differently but hold their streams the same way: a table of live streams, each with a
:class:`~.lifecycle.StreamCore` and its lifecycle machine, paused and resumed together by the
websocket's backpressure (a hold of every stream at once, so the table's, not each stream's;
resumed in rotating order, so a flooding stream cannot always be
first in line), with every call into a processor confined to that stream (a failure is logged,
and an end inside the call defers ``connectionLost()`` until it returns).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from twisted.logger import Logger

from twisted_exec.executor.transports.relay.lifecycle import StreamCore

log = Logger()

StreamT = TypeVar("StreamT", bound=StreamCore)


class StreamTable(Generic[StreamT]):
    """Live streams by id, and the websocket-wide pause over them; subclassed by each demux."""

    #: How log lines name a stream of this relay ("relay stream", "Noise relay stream").
    streamLabel = "relay stream"

    def __init__(self) -> None:
        self._streams: dict[str, StreamT] = {}
        self._lost = False
        self._paused = False
        self._rotation = 0  # where the next resume starts (round robin over the streams)

    @property
    def streamIds(self) -> frozenset[str]:
        """The streams that currently have a processor."""
        return frozenset(self._streams)

    @property
    def paused(self) -> bool:
        return self._paused

    def pauseProducing(self) -> None:
        """The websocket's write buffer is full: pause every stream's processor."""
        if self._paused or self._lost:
            return
        self._paused = True
        for stream in list(self._streams.values()):
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
            if stream.windowHeld:
                continue  # its own harness is still not reading
            if stream.live:
                self._call(stream, stream.processor.resumeProducing)
            if self._paused:
                # That stream filled the websocket again: the rest stay paused (they were
                # never resumed) and go first next time.
                self._rotation = start + order.index(stream) + 1
                return

    def _opened(self, stream: StreamCore, connect: Callable[[], None]) -> None:
        """A new stream's processor connects to its sink, paused if the websocket is."""
        self._call(stream, connect)
        if stream.live and self._paused:
            self._call(stream, stream.processor.pauseProducing)

    def _retire(self, stream: StreamT) -> bool:
        """Take an ending stream out of the table; ``False`` if it had already ended."""
        if not stream.live:
            return False
        stream.lifecycle.end()
        if self._streams.get(stream.streamId) is stream:
            del self._streams[stream.streamId]
        return True

    def _call(self, stream: StreamCore, fn: Callable[[], None]) -> None:
        """Call into a stream's processor; its failures stay within that stream."""
        stream.delivering += 1
        try:
            fn()
        except Exception:
            log.failure(
                "{label} {streamId!r}: processor failed",
                label=self.streamLabel,
                streamId=stream.streamId,
            )
        finally:
            stream.delivering -= 1
        if not stream.live and not stream.delivering:
            self._drained(stream)

    def _drained(self, stream: StreamCore) -> None:
        """No call into an ended stream's processor is on the stack: the one connectionLost."""
        if not stream.lifecycle.drained():
            return
        try:
            stream.processor.connectionLost()
        except Exception:
            log.failure(
                "{label} {streamId!r}: processor failed in connectionLost",
                label=self.streamLabel,
                streamId=stream.streamId,
            )
