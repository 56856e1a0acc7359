"""The process output hot path: several reads per reactor turn, each its own chunk, and the
hand-built ``process/output`` JSON, byte for byte what the generic encoder gives."""

from __future__ import annotations

import base64
import errno
import json
import os
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.main import CONNECTION_DONE, CONNECTION_LOST
from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.executor.core.output_buffer import Chunk
from twisted_exec.executor.resources.process_entry import _Entry
from twisted_exec.executor.resources.process_spawn import READS_PER_TURN, readSeveral
from twisted_exec.wire import jsonrpc


class _Table:
    """What an ``_Entry`` needs of its table to emit notifications."""

    retainBytes = 1 << 20

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def notify(self, method: str, params: Any) -> None:
        self.sent.append((method, params))


def generic(method: str, params: dict[str, Any]) -> bytes:
    return json.dumps(
        {"method": method, "params": dict(params)}, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


class EncodedParamsTests(SynchronousTestCase):
    def test_rawIsSpliced(self) -> None:
        params = jsonrpc.EncodedParams({"a": 1}, b'{"a":1}')
        self.assertEqual(jsonrpc.encodeNotification("m/é", params), generic("m/é", {"a": 1}))
        self.assertEqual(params, {"a": 1})

    def test_plainDictStillEncodedGenerically(self) -> None:
        self.assertEqual(jsonrpc.encodeNotification("n", {"x": "é"}), generic("n", {"x": "é"}))

    def test_theSpliceTrustsRaw(self) -> None:
        # raw wins over the dict: a producer that got it wrong would be caught by the
        # equivalence tests below, not papered over here.
        params = jsonrpc.EncodedParams({"a": 1}, b'{"a":2}')
        self.assertEqual(json.loads(jsonrpc.encodeNotification("m", params))["params"], {"a": 2})


class OutputNotificationTests(SynchronousTestCase):
    @settings(max_examples=300, deadline=None)
    @given(
        processId=st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
        seq=st.integers(min_value=1, max_value=2**53),
        stream=st.sampled_from(["stdout", "stderr", "pty"]),
        data=st.binary(max_size=9000),
    )
    def test_sameBytesAsTheGenericEncoder(
        self, processId: str, seq: int, stream: str, data: bytes
    ) -> None:
        table = _Table()
        entry = _Entry(table, processId, stream == "pty", False)  # type: ignore[arg-type]
        entry._emit(Chunk(seq, stream, data))
        [(method, params)] = table.sent
        expected = {
            "processId": processId,
            "seq": seq,
            "stream": stream,
            "chunk": base64.b64encode(data).decode(),
        }
        self.assertEqual(method, "process/output")
        self.assertEqual(params, expected)
        self.assertEqual(jsonrpc.encodeNotification(method, params), generic(method, expected))

    def test_secondStreamOfTheSameProcess(self) -> None:
        table = _Table()
        entry = _Entry(table, 'a "quoted" id\n', False, False)  # type: ignore[arg-type]
        entry._emit(Chunk(1, "stdout", b"out"))
        entry._emit(Chunk(2, "stderr", b"err"))
        for (method, params), stream, data in zip(
            table.sent, ["stdout", "stderr"], [b"out", b"err"], strict=True
        ):
            expected = {
                "processId": 'a "quoted" id\n',
                "seq": 1 if stream == "stdout" else 2,
                "stream": stream,
                "chunk": base64.b64encode(data).decode(),
            }
            self.assertEqual(jsonrpc.encodeNotification(method, params), generic(method, expected))


def scriptedRead(results: list[bytes | int]) -> Callable[[int, int], bytes]:
    """A ``read(fd, size)`` that returns the scripted bytes, or raises the scripted errno."""

    def read(fd: int, size: int) -> bytes:
        item = results.pop(0)
        if isinstance(item, int):
            raise OSError(item, os.strerror(item))
        assert len(item) <= size
        return item

    return read


class ReadSeveralTests(SynchronousTestCase):
    def pipe(self, data: bytes) -> int:
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        os.set_blocking(r, False)
        os.set_blocking(w, False)  # more than the pipe holds fails instead of hanging
        try:
            self.assertEqual(os.write(w, data), len(data))
        finally:
            os.close(w)
        return r

    def test_drainsAPipeInOneTurnChunkByChunk(self) -> None:
        data = os.urandom(5 * 8192 + 100)
        fd = self.pipe(data)
        chunks: list[bytes] = []
        self.assertIsNone(readSeveral(fd, chunks.append, lambda: True, pipe=True))
        self.assertEqual([len(c) for c in chunks], [8192] * 5 + [100])
        self.assertEqual(b"".join(chunks), data)
        self.assertIs(readSeveral(fd, chunks.append, lambda: True, pipe=True), CONNECTION_DONE)

    def test_atMostReadsPerTurn(self) -> None:
        read = scriptedRead([bytes(8192)] * (READS_PER_TURN + 3) + [errno.EAGAIN])
        chunks: list[bytes] = []
        readSeveral(0, chunks.append, lambda: True, pipe=True, read=read)
        self.assertEqual(len(chunks), READS_PER_TURN)
        readSeveral(0, chunks.append, lambda: True, pipe=True, read=read)
        self.assertEqual(len(chunks), READS_PER_TURN + 3)

    def test_stopsWhenADeliveryPausedReading(self) -> None:
        fd = self.pipe(bytes(3 * 8192))
        chunks: list[bytes] = []
        readSeveral(fd, chunks.append, lambda: not chunks, pipe=True)
        self.assertEqual(len(chunks), 1)

    def test_ptyReadsOnAfterShortReadsUntilEagain(self) -> None:
        read = scriptedRead([b"a" * 4095, b"b" * 4095, b"c" * 10, errno.EAGAIN])
        chunks: list[bytes] = []
        self.assertIsNone(readSeveral(0, chunks.append, lambda: True, pipe=False, read=read))
        self.assertEqual([len(c) for c in chunks], [4095, 4095, 10])

    def test_pipeStopsAtAShortRead(self) -> None:
        read = scriptedRead([b"a" * 4095, b"never read"])
        chunks: list[bytes] = []
        readSeveral(0, chunks.append, lambda: True, pipe=True, read=read)
        self.assertEqual(chunks, [b"a" * 4095])

    def test_errors(self) -> None:
        for err, expected in [(errno.EINTR, None), (errno.EIO, CONNECTION_LOST)]:
            read = scriptedRead([b"x", err])
            chunks: list[bytes] = []
            self.assertIs(readSeveral(0, chunks.append, lambda: True, False, read), expected)
            self.assertEqual(chunks, [b"x"])
