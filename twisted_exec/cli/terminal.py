"""The local terminal under ``codex-exec run --tty``: raw mode, its size, and its resizes.

Neither Codex 0.131 nor 0.171 has a terminal size in ``process/start`` or a resize method
(probed: unknown fields are ignored, ``process/resize`` is ``-32601``); the remote pty starts at
24x80. So the initial size travels *inside* the command: :func:`sizedArgv` wraps it as
``/bin/sh -c 'stty rows "$1" cols "$2" 2>/dev/null; shift 2; exec "$@"' codex-exec R C COMMAND
ARGS...``, which works on any POSIX executor and keeps the command's argv and exit status
(``exec``; a missing command is sh's ``not found``, status 127). Later resizes go to
executors that have our ``process/resize`` extension; others keep the first size.
"""

from __future__ import annotations

import os
import signal
import struct
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["SIZE_WRAPPER", "rawTerminal", "sizedArgv", "terminalSize", "watchResize"]

SIZE_WRAPPER = 'stty rows "$1" cols "$2" 2>/dev/null; shift 2; exec "$@"'


def terminalSize(fd: int = 1) -> tuple[int, int] | None:
    """``(rows, cols)`` of the terminal on ``fd`` (or stdin), ``None`` if neither is one."""
    import fcntl
    import termios

    for candidate in (fd, 0):
        try:
            raw = fcntl.ioctl(candidate, termios.TIOCGWINSZ, b"\0" * 8)
        except OSError:
            continue
        rows, cols = struct.unpack("HHHH", raw)[:2]
        if rows and cols:
            return rows, cols
    return None


def sizedArgv(argv: Sequence[str], size: tuple[int, int] | None) -> list[str]:
    """``argv`` started on a pty of ``size`` (``(rows, cols)``; unchanged for None)."""
    if size is None:
        return list(argv)
    rows, cols = size
    return ["/bin/sh", "-c", SIZE_WRAPPER, "codex-exec", str(rows), str(cols), *argv]


def watchResize(reactor: Any, onResize: Callable[[tuple[int, int]], None]) -> Callable[[], None]:
    """Call ``onResize(size)`` on the reactor after each SIGWINCH; returns an undo function."""

    def handler(signum: int, frame: object) -> None:
        size = terminalSize()
        if size is not None:
            reactor.callFromThread(onResize, size)

    previous = signal.signal(signal.SIGWINCH, handler)

    def undo() -> None:
        signal.signal(signal.SIGWINCH, previous)

    return undo


def rawTerminal() -> Callable[[], None]:
    """Put the local terminal in raw mode (keystrokes go to the remote pty as typed)."""
    import termios
    import tty

    saved = termios.tcgetattr(0)
    tty.setraw(0)

    def restore() -> None:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)

    return restore


def isTerminal(fd: int) -> bool:
    return os.isatty(fd)
