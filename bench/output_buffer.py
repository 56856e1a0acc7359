"""``OutputBuffer.read`` over 300k retained chunks: time per read, before and after (issue 15).

Usage::

    python bench/output_buffer.py [--chunks 300000] [--reads 200] [--baseline DIR] [--json]

A PTY child printing one character at a time produces one chunk per read of a few bytes, so a
buffer can hold hundreds of thousands of chunks. Round 1 indexed a ``deque`` inside the read
loop (``deque[i]`` is O(n) away from the ends): one read took 0.9 s. The buffer is filled with
``--chunks`` chunks of 3 bytes (retention large enough to keep them all), then ``--reads`` reads
are timed at afterSeq spread over the buffer, each returning at most 64 KiB (a ``process/read``
with ``maxBytes``). ``--baseline DIR`` times the ``OutputBuffer`` of another source tree too
(``git archive COMMIT twisted_exec | tar -x -C DIR``). Also reports the memory the buffer holds
(tracemalloc) against what it accounts.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _loadBuffer(root: Path) -> Any:
    """The OutputBuffer class of the tree at ``root`` (old or new layout)."""
    for name in list(sys.modules):
        if name == "twisted_exec" or name.startswith("twisted_exec."):
            del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        for module in ("twisted_exec.executor.core.output_buffer", "twisted_exec.output_buffer"):
            try:
                return importlib.import_module(module).OutputBuffer
            except ImportError:
                continue
        raise SystemExit(f"no OutputBuffer under {root}")
    finally:
        sys.path.remove(str(root))


def measure(bufferClass: Any, chunks: int, reads: int) -> dict[str, Any]:
    tracemalloc.start()
    buffer = bufferClass(retainBytes=1 << 40)
    for _ in range(chunks):
        buffer.appendOutput("pty", b"ab\n")
    held, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    times = []
    returned = 0
    step = max(chunks // reads, 1)
    for index in range(reads):
        afterSeq = index * step
        start = time.perf_counter()
        result = buffer.read(afterSeq, 65536)
        times.append(time.perf_counter() - start)
        returned += len(result.chunks)
    return {
        "chunks": chunks,
        "reads": reads,
        "chunksPerRead": returned / reads,
        "medianMs": round(statistics.median(times) * 1000, 3),
        "maxMs": round(max(times) * 1000, 3),
        "heldBytes": held,
        "heldPerChunk": round(held / chunks, 1),
        "accountedBytes": getattr(buffer, "accountedBytes", buffer.retainedBytes),
        "defaultRetention": _defaultRetention(bufferClass, chunks),
    }


def _defaultRetention(bufferClass: Any, chunks: int) -> dict[str, int]:
    """The same chunks into a buffer with the default 1 MiB retention: what it really holds."""
    tracemalloc.start()
    buffer = bufferClass()
    for _ in range(chunks):
        buffer.appendOutput("pty", b"ab\n")
    held, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "payloadBytes": buffer.retainedBytes,
        "chunks": len(buffer.read(0).chunks),
        "heldBytes": held,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=300_000)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--baseline", type=Path, help="another source tree to time too")
    parser.add_argument("--json", action="store_true", help="one JSON line per tree")
    args = parser.parse_args(argv)
    trees = [("after", REPO)]
    if args.baseline is not None:
        trees.insert(0, ("before", args.baseline))
    for label, root in trees:
        result = {"tree": label, **measure(_loadBuffer(root), args.chunks, args.reads)}
        if args.json:
            print(json.dumps(result))
        else:
            print(
                f"{label}: {result['chunks']} chunks, {result['chunksPerRead']:.0f} per read: "
                f"median {result['medianMs']} ms, max {result['maxMs']} ms per read; "
                f"{result['heldPerChunk']} bytes held per chunk of 3 "
                f"(accounted {result['accountedBytes']} bytes); default 1 MiB retention: "
                f"{result['defaultRetention']}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
