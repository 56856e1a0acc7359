"""Opening files for ``fs/readFile`` and ``fs/writeFile`` so that no call can hang or run away.

Round 1 opened paths as the 0.131 reference does, which is unsafe on a shared thread pool:

- a FIFO blocks ``open()`` (and then ``read()``) until a writer comes, so ten ``fs/readFile``
  calls on one FIFO held all ten fs worker threads forever;
- ``/dev/zero`` has size 0 by ``stat``, so the size check passed and ``read()`` never ended;
- a file that grows while it is read was read to its end, however far past the limit.

So a read opens with ``O_NONBLOCK`` (a FIFO opens at once, and is then refused), refuses
anything that is not a regular file with 0.171's error (``-32600 path `P` is not a file``,
probed on the 0.171 binary; 0.131 hangs or reads without end), checks the size by ``fstat`` of
the descriptor it reads (no stat/open race) and reads at most ``limit + 1`` bytes: one byte
more than the limit proves the file is too large, whatever ``stat`` said.

A write refuses FIFOs, sockets and block devices up front (0.171 blocks on a FIFO without a
reader) and opens with ``O_NONBLOCK`` too, so a FIFO swapped in meanwhile fails with ``ENXIO``
instead of blocking. Character devices stay writable (0.171 writes ``/dev/null``).

A directory keeps 0.131's answer (``Is a directory (os error 21)``, -32603) so the 0.131
conformance transcripts stay identical; the 0.171 dialect may map it to "is not a file".
"""

from __future__ import annotations

import errno
import os
import stat

from twisted_exec.wire.errors import INVALID_REQUEST, RpcError

#: Bytes per read() while reading a file whole.
READ_CHUNK = 1 << 20

_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK | os.O_CLOEXEC


def notAFile(path: str) -> RpcError:
    """0.171's refusal of a non-regular file (probed: FIFO, ``/dev/null``, a directory)."""
    return RpcError(INVALID_REQUEST, f"path `{path}` is not a file")


def tooLarge(limit: int) -> RpcError:
    """The reference's ``fs/readFile`` refusal, naming the (effective) limit."""
    return RpcError(INVALID_REQUEST, f"file is too large to read: limit is {limit} bytes")


def readRegularFile(path: str, limit: int | None) -> bytes:
    """The whole content of the regular file at ``path``, at most ``limit`` bytes.

    Raises :func:`notAFile` for anything else, :func:`tooLarge` beyond the limit, ``OSError``
    as ``open``/``read`` do.
    """
    fd = os.open(path, _READ_FLAGS)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        if not stat.S_ISREG(st.st_mode):
            raise notAFile(path)
        if limit is not None and st.st_size > limit:
            raise tooLarge(limit)
        # O_NONBLOCK means nothing for a regular file; read it to its end, bounded.
        budget = None if limit is None else limit + 1
        parts: list[bytes] = []
        total = 0
        while budget is None or total < budget:
            want = READ_CHUNK if budget is None else min(READ_CHUNK, budget - total)
            part = os.read(fd, want)
            if not part:
                break
            parts.append(part)
            total += len(part)
        if limit is not None and total > limit:
            raise tooLarge(limit)
        return b"".join(parts)
    finally:
        os.close(fd)


def writeWholeFile(path: str, data: bytes) -> None:
    """Truncate-and-write in place (the reference's ``tokio::fs::write``), never blocking on a
    FIFO: FIFOs, sockets and block devices are refused with :func:`notAFile`."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        pass
    else:
        mode = st.st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISBLK(mode):
            raise notAFile(path)
    fd = os.open(path, _WRITE_FLAGS, 0o666)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISBLK(mode):
            raise notAFile(path)
        if stat.S_ISREG(mode):
            # Back to blocking writes (no effect on regular files on Linux, but say so).
            os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


__all__ = ["notAFile", "readRegularFile", "tooLarge", "writeWholeFile"]
