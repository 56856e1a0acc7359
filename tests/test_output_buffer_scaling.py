"""OutputBuffer at 300k chunks (issue 15): reads cost the chunks they return, memory is counted.

Round 1 indexed a ``deque`` inside the read loop (0.9 s for one read over 300k PTY chunks) and
counted only payload bytes (0.9 MB of payload held ~30 MB). ``bench/output_buffer.py`` has the
numbers; these tests hold the properties.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import SupportsIndex, overload

from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.executor.core.output_buffer import CHUNK_OVERHEAD, Chunk, OutputBuffer

CHUNKS = 300_000


def fill(buffer: OutputBuffer, count: int) -> None:
    for _ in range(count):
        buffer.appendOutput("pty", b"ab\n")


class CountingChunks(list[Chunk]):
    """A list that counts the elements its reader touches: one per index, one per element of a
    slice or of an iteration. ``OutputBuffer`` keeps its chunks in a plain list (O(1) indexing),
    so elements touched is the cost of a read, counted instead of timed."""

    touched = 0

    @overload
    def __getitem__(self, index: SupportsIndex) -> Chunk: ...
    @overload
    def __getitem__(self, index: slice) -> list[Chunk]: ...
    def __getitem__(self, index: SupportsIndex | slice) -> Chunk | list[Chunk]:
        if isinstance(index, slice):
            part = super().__getitem__(index)
            self.touched += len(part)
            return part
        self.touched += 1
        return super().__getitem__(index)

    def __iter__(self) -> Iterator[Chunk]:
        for chunk in super().__iter__():
            self.touched += 1
            yield chunk


def countedRead(buffer: OutputBuffer, afterSeq: int, maxBytes: int) -> tuple[int, int]:
    """(chunks returned, elements of the chunk list touched) for one read."""
    counting = CountingChunks(buffer._chunks)
    buffer._chunks = counting
    returned = len(buffer.read(afterSeq, maxBytes).chunks)
    return returned, counting.touched


class ScalingTests(SynchronousTestCase):
    def test_memoryCountedPerChunk(self) -> None:
        buffer = OutputBuffer()  # the default 1 MiB retention
        fill(buffer, CHUNKS)
        self.assertLessEqual(buffer.accountedBytes, 2 * (1 << 20))
        self.assertEqual(buffer.accountedBytes, buffer.retainedChunks * (3 + CHUNK_OVERHEAD))
        self.assertLess(buffer.retainedChunks, 20_000)  # round 1: all 300,000
        # The newest output is what is kept, seqs still count every chunk.
        result = buffer.read(0)
        self.assertEqual(result.chunks[-1].seq, CHUNKS)
        self.assertEqual(result.nextSeq, CHUNKS + 1)

    def test_pipeChunksRetainedAsTheReference(self) -> None:
        buffer = OutputBuffer()
        for _ in range(640):  # 5 MiB in 8 KiB chunks: the newest 1 MiB, 128 chunks
            buffer.appendOutput("stdout", b"x" * 8192)
        self.assertEqual(buffer.retainedChunks, 128)

    def test_readCostDoesNotGrowWithTheBuffer(self) -> None:
        """The same 1,000-chunk read from the middle of 100k chunks and of 3k chunks touches the
        chunks it returns plus a binary search: O(log n + k), counted, not timed (round 1 walked
        the deque from its end: ~15x the cost for the large buffer; the timing is
        ``bench/output_buffer.py``)."""
        big = OutputBuffer(retainBytes=1 << 40)
        fill(big, 100_000)
        small = OutputBuffer(retainBytes=1 << 40)
        fill(small, 3_000)
        self.assertIs(type(OutputBuffer()._chunks), list)  # what makes an element touched O(1)
        returned, large = countedRead(big, 50_000, 3_000)
        self.assertEqual(returned, 1_000)
        self.assertEqual(countedRead(small, 1_000, 3_000)[0], 1_000)
        little = countedRead(small, 1_000, 3_000)[1]
        # Each returned chunk is looked at by the byte count and copied by the slice (2k), the
        # first rejected one and the newest once, and a binary search over n: 2 log2 n + 4 more.
        self.assertLessEqual(large, 2 * returned + 2 * math.log2(100_000) + 4, large)
        self.assertLessEqual(large - little, 2 * math.log2(100_000 / 3_000) + 2, (large, little))
