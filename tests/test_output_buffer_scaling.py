"""OutputBuffer at 300k chunks (issue 15): reads cost the chunks they return, memory is counted.

Round 1 indexed a ``deque`` inside the read loop (0.9 s for one read over 300k PTY chunks) and
counted only payload bytes (0.9 MB of payload held ~30 MB). ``bench/output_buffer.py`` has the
numbers; these tests hold the properties.
"""

from __future__ import annotations

import time

from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.executor.core.output_buffer import CHUNK_OVERHEAD, OutputBuffer

CHUNKS = 300_000


def fill(buffer: OutputBuffer, count: int) -> None:
    for _ in range(count):
        buffer.appendOutput("pty", b"ab\n")


def bestReadTime(buffer: OutputBuffer, afterSeq: int, maxBytes: int) -> float:
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        buffer.read(afterSeq, maxBytes)
        best = min(best, time.perf_counter() - began)
    return best


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
        """The same 1,000-chunk read from the middle of 100k chunks and of 3k chunks."""
        big = OutputBuffer(retainBytes=1 << 40)
        fill(big, 100_000)
        small = OutputBuffer(retainBytes=1 << 40)
        fill(small, 3_000)
        large = bestReadTime(big, 50_000, 3_000)
        little = bestReadTime(small, 1_000, 3_000)
        self.assertEqual(len(big.read(50_000, 3_000).chunks), 1_000)
        # Round 1: ~15x slower for the large buffer (deque indexing from the middle).
        self.assertLess(large, 5 * little + 0.002, (large, little))
