"""``codex-exec run -i``: our stdin to the remote command, and its end.

Neither Codex dialect can end a process's stdin: 0.131's ``process/write`` has no close, and
0.171 adds only ``writeId`` (probed: an empty chunk, or ``closeStdin``/``eof`` fields, are
accepted and change nothing; ``process/closeStdin`` is ``-32601``). Our executor has the
extension ``process/closeStdin {processId}`` -> ``{}`` (both dialects), so at our EOF we send
it; an executor without it answers ``-32601`` and we say once, on stderr, that the command will
keep waiting for input (Ctrl-C stops it). On a pty the EOF is typed (Ctrl-D), not sent.

Stdin is read on a daemon thread: a blocking read needs no O_NONBLOCK on a tty shared with our
stdout, and a read still blocked when the command has ended must not hold up our exit (the
reactor's thread pool joins its threads at shutdown). At most ``IN_FLIGHT`` chunks are read
ahead of the writes the executor has answered, so a fast producer is paced by the executor.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import DeferredQueue

from twisted_exec.harness.errors import CallError, HarnessError

__all__ = ["CLOSE_STDIN_METHOD", "NO_EOF_NOTE", "closeRemoteStdin", "forwardStdin"]

CLOSE_STDIN_METHOD = "process/closeStdin"
METHOD_NOT_FOUND = -32601
CHUNK_BYTES = 64 * 1024
IN_FLIGHT = 4
NO_EOF_NOTE = (
    "stdin ended, but this executor cannot end the command's stdin (the Codex exec-server "
    "protocol has no EOF; twisted-exec executors do): the command may wait for more input "
    "until it exits or you press Ctrl-C"
)


async def closeRemoteStdin(process: Any) -> bool:
    """Ask the executor to close ``process``'s stdin; False when it cannot (no extension)."""
    try:
        await process.session.call(CLOSE_STDIN_METHOD, {"processId": process.processId})
    except CallError as e:
        if e.code == METHOD_NOT_FOUND:
            return False
        raise
    return True


async def forwardStdin(
    reactor: Any,
    process: Any,
    *,
    tty: bool,
    note: Callable[[str], None],
    fd: int = 0,
) -> None:
    """Copy ``fd`` to ``process`` until EOF, then end the remote stdin where possible."""
    chunks: DeferredQueue[bytes] = DeferredQueue()
    credit = threading.Semaphore(IN_FLIGHT)

    def reader() -> None:
        while True:
            credit.acquire()
            try:
                data = os.read(fd, CHUNK_BYTES)
            except OSError:
                data = b""
            reactor.callFromThread(chunks.put, data)
            if not data:
                return

    threading.Thread(target=reader, name="codex-exec-stdin", daemon=True).start()
    while not process.done:
        data = await chunks.get()
        if process.done:
            return
        if not data:
            break
        try:
            await process.write(data)
        except HarnessError:
            return
        credit.release()
    if tty or process.done:
        return
    try:
        closed = await closeRemoteStdin(process)
    except HarnessError:
        return
    if not closed and not process.done:
        note(NO_EOF_NOTE)
