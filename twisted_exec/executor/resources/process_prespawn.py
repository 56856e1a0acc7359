"""Spawning off the reactor thread: PATH lookup, fork and the exec wait run on a worker thread.

Round 1 resolved the program (a ``stat`` per PATH entry) and ran ``Popen`` on the reactor
thread. ``Popen`` returns only once the child has exec'd (or failed to: its errno comes back
through the error pipe); with ``vfork`` the parent waits for the child's ``execve``, which
reads the binary. On a slow or hung filesystem (NFS, FUSE) both stall every session.

Here the blocking part runs on a worker thread and returns a :class:`Prespawned` child: its
``Popen`` and the parent ends of its pipes (or its pty master). The reactor thread then wraps
it in the usual Twisted transport (``process_spawn._PipeProcess`` / ``_PtyProcess``), whose
``_trySpawnInsteadOfFork`` adopts the child instead of spawning one: the pipe readers and
writers are created there, before Twisted registers the pid for reaping, so output is never
reported after the exit. Twisted's ``Process.__init__`` creates no pipes of its own
(``childFDs={}``).

Nothing here touches the reactor: these functions only make system calls and may run on any
thread. Exec failures keep their synchronous errno (``OSError`` from the worker thread).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import subprocess
import termios
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from twisted_exec.executor.resources.process_programs import (
    _ptyCwd,
    resolvePipeProgram,
    resolvePtyProgram,
)
from twisted_exec.executor.resources.process_spawn import _popenSpawn

PTY_ROWS = 24
PTY_COLS = 80


@dataclass
class Prespawned:
    """A running child and our ends of its stdio, ready to be adopted by a transport."""

    popen: subprocess.Popen[bytes]
    executable: str
    cwd: str | None
    #: pipes: child fd -> our end (0: we write; 1, 2: we read)
    pipes: dict[int, int] = field(default_factory=dict)
    #: pty: (master, slave, slave's name); the transport closes the slave
    pty: tuple[int, int, str] | None = None

    def abandon(self) -> None:
        """Nobody will adopt it (the session ended meanwhile): kill its group, close our ends."""
        with contextlib.suppress(OSError):
            os.killpg(self.popen.pid, 9)
        for fd in self.pipes.values():
            os.close(fd)
        if self.pty is not None:
            os.close(self.pty[0])
            os.close(self.pty[1])
        self.popen.wait()


def prespawnPipes(
    program: str,
    args: list[str],
    env: dict[str, str],
    cwd: str,
    pipeStdin: bool,
    environ: Mapping[str, str],
) -> Prespawned:
    """Resolve and start a pipe child (on a worker thread)."""
    executable = resolvePipeProgram(program, env, environ)
    ours: dict[int, int] = {}
    theirs: list[int] = []
    try:
        outRead, outWrite = os.pipe()
        ours[1], theirs = outRead, [outWrite]
        errRead, errWrite = os.pipe()
        ours[2] = errRead
        theirs.append(errWrite)
        if pipeStdin:
            inRead, inWrite = os.pipe()
            ours[0] = inWrite
        else:
            inRead = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        theirs.append(inRead)
        popen = _popenSpawn(
            cwd, executable, args, env, {"fdmap": {0: inRead, 1: outWrite, 2: errWrite}}
        )
    except BaseException:
        for fd in [*ours.values(), *theirs]:
            os.close(fd)
        raise
    for fd in theirs:
        os.close(fd)
    return Prespawned(popen, executable, cwd, pipes=ours)


def prespawnPty(
    program: str, args: list[str], env: dict[str, str], cwd: str, environ: Mapping[str, str]
) -> Prespawned:
    """Resolve and start a PTY child (on a worker thread)."""
    workdir = _ptyCwd(cwd, env, environ)
    executable = resolvePtyProgram(program, env, workdir)
    with openPty() as pty:
        popen = _popenSpawn(workdir, executable, args, env, {"slavefd": pty[1]})
    return Prespawned(popen, executable, workdir, pty=pty)


@contextlib.contextmanager
def openPty() -> Iterator[tuple[int, int, str]]:
    """A new pty of the reference's size, ``(master, slave, name)``; both ends are closed if
    the block raises (otherwise the transport that was given them owns them)."""
    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", PTY_ROWS, PTY_COLS, 0, 0))
        yield master, slave, os.ttyname(slave)
    except BaseException:
        os.close(master)
        os.close(slave)
        raise


__all__ = ["Prespawned", "openPty", "prespawnPipes", "prespawnPty"]
