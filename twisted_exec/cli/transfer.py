"""``codex-exec cp`` in pieces: the 0.171 block methods, pipelined, with a progress bar.

A whole file in one ``fs/readFile``/``fs/writeFile`` message is one websocket message as large
as the file (x4/3 for base64): past the relay's message limit it fails, and before that it holds
the executor's websocket for every other stream while it passes. The 0.171 dialect has handles
(probed on the binary): ``fs/open {path, handleId, mode: "read"|"replace"}`` -> ``{handleId}``,
``fs/readBlock {handleId, offset, len}`` -> ``{chunk, eof}`` (``len`` 1..1048576),
``fs/writeBlock {handleId, offset, chunk}`` -> ``{}`` (1..1048576 bytes), ``fs/close
{handleId}`` -> ``{}``. ``replace`` truncates at open and writes in place.

We move :data:`BLOCK_BYTES` per call with :data:`IN_FLIGHT` calls outstanding (the executor
answers a session's requests one at a time; the window hides the round trip). An executor
without ``fs/open`` answers ``-32601``, and the caller falls back to one message.
"""

from __future__ import annotations

import base64
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import IO, Any, NamedTuple

from twisted.internet.defer import Deferred

from twisted_exec.harness.errors import CallError

__all__ = ["BLOCK_BYTES", "IN_FLIGHT", "Progress", "download", "upload"]

BLOCK_BYTES = 1 << 20  # the reference's largest block
IN_FLIGHT = 4
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602


class Progress:
    """A one-line progress bar on a terminal (stderr); silent when stderr is not one."""

    def __init__(
        self,
        clock: Any,
        label: str,
        total: int | None,
        stream: IO[str] | None = None,
        enabled: bool | None = None,
    ) -> None:
        self._clock = clock
        self._label = label
        self.total = total
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = self._stream.isatty() if enabled is None else enabled
        self._started = clock.seconds()
        self._lastDraw = -1.0
        self.drawn = 0

    def advance(self, size: int) -> None:
        self.done += size
        now = self._clock.seconds()
        if self._enabled and now - self._lastDraw >= 0.1:
            self._lastDraw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-6)
        rate = self.done / elapsed / (1 << 20)
        done = self.done / (1 << 20)
        if self.total:
            share = min(self.done / self.total, 1.0)
            width = 24
            bar = "#" * int(share * width)
            text = (
                f"\r{self._label} [{bar:<{width}}] {share * 100:3.0f}% "
                f"{done:.1f}/{self.total / (1 << 20):.1f} MiB {rate:.1f} MiB/s"
            )
        else:
            text = f"\r{self._label} {done:.1f} MiB {rate:.1f} MiB/s"
        self._stream.write(text)
        self._stream.flush()
        self.drawn += 1

    def finish(self) -> None:
        if self._enabled:
            self._draw(self._clock.seconds())
            self._stream.write("\n")
            self._stream.flush()


async def _open(session: Any, path: str, mode: str) -> str | None:
    """A fresh handle on ``path``, or None when the executor has no ``fs/open``."""
    handle = f"cx-{uuid.uuid4().hex[:24]}"  # the reference takes at most 32 bytes
    try:
        await session.call("fs/open", {"path": path, "handleId": handle, "mode": mode})
    except CallError as e:
        if e.code == METHOD_NOT_FOUND:
            return None
        if e.code != INVALID_PARAMS or path.startswith("file:") or "URI" not in e.message:
            raise
        # The block methods are 0.171's, which take file: URIs even where the rest of the
        # session takes bare paths (an executor serving them beside the 0.131 methods).
        await session.call("fs/open", {"path": fileUri(path), "handleId": handle, "mode": mode})
    return handle


def fileUri(path: str) -> str:
    from urllib.parse import quote

    return "file://" + quote(path)


class _Open(NamedTuple):
    handle: str
    window: list[Deferred[Any]]  # the block calls in flight, oldest first


def _consume(window: list[Deferred[Any]]) -> None:
    """Calls still outstanding after a failure: their errors are the first one's echo."""
    for pending in window:
        pending.addErrback(lambda _: None)
    window.clear()


async def _close(session: Any, handle: str) -> None:
    # The stream may be gone already; the executor drops a session's handles with it.
    with suppress(Exception):
        await session.call("fs/close", {"handleId": handle})


@asynccontextmanager
async def _opened(session: Any, path: str, mode: str) -> AsyncIterator[_Open | None]:
    """The handle on ``path`` (``None`` without ``fs/open``) and its window of calls in
    flight; on the way out, the calls still outstanding are consumed and the handle closed."""
    handle = await _open(session, path, mode)
    if handle is None:
        yield None
        return
    window: list[Deferred[Any]] = []
    try:
        yield _Open(handle, window)
    finally:
        _consume(window)
        await _close(session, handle)


async def download(
    session: Any,
    path: str,
    write: Callable[[bytes], Awaitable[None]],
    progress: Progress | None = None,
) -> bool:
    """Read remote ``path`` block by block into ``write``; False if there is no ``fs/open``."""
    async with _opened(session, path, "read") as opened:
        if opened is None:
            return False
        handle, window = opened
        offset = 0
        ended = False
        limit = 1  # learn from the first answer whether there is more than one block
        while not ended or window:
            while not ended and len(window) < limit:
                window.append(
                    session.call(
                        "fs/readBlock", {"handleId": handle, "offset": offset, "len": BLOCK_BYTES}
                    )
                )
                offset += BLOCK_BYTES
            limit = IN_FLIGHT
            result = await window.pop(0)
            if ended:
                continue  # beyond the end: answered empty, nothing to keep
            data = base64.b64decode(result.get("chunk", ""))
            if data:
                await write(data)
                if progress is not None:
                    progress.advance(len(data))
            if result.get("eof") or len(data) < BLOCK_BYTES:
                ended = True
    return True


async def upload(
    session: Any,
    path: str,
    read: Callable[[int], Awaitable[bytes]],
    progress: Progress | None = None,
) -> bool:
    """Write ``read(n)``'s blocks to remote ``path``; False if there is no ``fs/open``.

    ``read`` returns ``b""`` at the end. An empty file is opened (truncated) and closed.
    """
    async with _opened(session, path, "replace") as opened:
        if opened is None:
            return False
        handle, window = opened
        offset = 0
        while True:
            data = await read(BLOCK_BYTES)
            if not data:
                break
            chunk = base64.b64encode(data).decode("ascii")
            window.append(
                session.call(
                    "fs/writeBlock", {"handleId": handle, "offset": offset, "chunk": chunk}
                )
            )
            offset += len(data)
            if progress is not None:
                progress.advance(len(data))
            if len(window) >= IN_FLIGHT:
                await window.pop(0)
        while window:
            await window.pop(0)
    return True
