"""Spawning a child into its own session, and reading its output a few chunks per reactor turn.

Spawning (decision)
-------------------
Every child must be our *direct* child (its parent PID is the executor) and lead its *own session*
(``setsid``), so that ``terminate``/``killAll`` can SIGKILL the whole process group, background
grandchildren included. Twisted's ``Process`` cannot do that for pipes: its ``posix_spawnp`` path
has no ``setsid``, and its fork path runs Python in the child (about 2.8 ms per spawn with a cwd
here) and reports an exec failure only as exit code 1.

We therefore keep Twisted's transports (``Process``/``PTYProcess``: pipe readers and writers, the
SIGCHLD reaping, ``processExited``/``processEnded``) and replace only the spawn step through its
``_trySpawnInsteadOfFork`` hook with :class:`subprocess.Popen` (``start_new_session=True``):

- ``_posixsubprocess`` forks (vfork for pipes) and execs in C: about 0.4 ms per spawn with a cwd;
- exec and chdir failures come back synchronously with their errno through Popen's error pipe,
  so ``process/start`` answers ``No such file or directory (os error 2)`` like the reference;
- for a PTY, a tiny ``preexec_fn`` makes the slave the controlling terminal (``TIOCSCTTY``), as
  Twisted's own PTY child setup does.

Twisted still reaps the child; the ``Popen`` object is kept until then and handed the exit status,
so its ``__del__`` never calls ``waitpid`` behind Twisted's back.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import subprocess
import sys
import termios
from collections.abc import Callable
from typing import Any

from twisted.internet.main import CONNECTION_DONE, CONNECTION_LOST
from twisted.internet.process import Process, ProcessReader, PTYProcess
from twisted.logger import Logger

log = Logger()


def _pendingBytes(fd: int) -> int:
    """Bytes waiting to be read on a pipe or pty master (FIONREAD)."""
    buf = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    return int.from_bytes(buf, sys.byteorder)


def _acquireControllingTerminal() -> None:
    """Runs in the PTY child after setsid and the dup2s: fd 0 is the slave."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _ignoredSignals() -> list[int]:
    """Signals the executor ignores (all but SIGPIPE/SIGXFSZ, which Popen restores itself).

    An executor started with ``&`` from a script ignores SIGINT and SIGQUIT, and exec keeps an
    ignored disposition: without a reset, Ctrl-C on a remote pty would stop nothing.
    """
    keep = {signal.SIGPIPE, signal.SIGXFSZ}
    return [
        n for n in range(1, signal.NSIG) if n not in keep and signal.getsignal(n) == signal.SIG_IGN
    ]


def _defaultSignals(ignored: list[int]) -> Callable[[], None]:
    def reset() -> None:
        for n in ignored:
            signal.signal(n, signal.SIG_DFL)

    return reset


def _ptyChild(ignored: list[int]) -> Callable[[], None]:
    def child() -> None:
        for n in ignored:
            signal.signal(n, signal.SIG_DFL)
        _acquireControllingTerminal()

    return child


def _popenSpawn(
    path: str | None,
    executable: str,
    args: list[str],
    environment: dict[str, str],
    kwargs: dict[str, Any],
) -> subprocess.Popen[bytes]:
    """The spawn step shared by both transports (see module docstring)."""
    ignored = _ignoredSignals()
    if "fdmap" in kwargs:
        fdmap = kwargs["fdmap"]
        stdio = (fdmap[0], fdmap[1], fdmap[2])
        preexec = _defaultSignals(ignored) if ignored else None
    else:
        slave = kwargs["slavefd"]
        stdio = (slave, slave, slave)
        preexec = _ptyChild(ignored)
    return subprocess.Popen(
        args,
        executable=executable,
        stdin=stdio[0],
        stdout=stdio[1],
        stderr=stdio[2],
        cwd=path,
        env=environment,
        close_fds=True,
        start_new_session=True,
        preexec_fn=preexec,
    )


def _releasePopen(popen: subprocess.Popen[bytes] | None, status: int) -> None:
    """Twisted reaped the child: tell Popen, so its ``__del__`` never waitpid()s a reused pid."""
    if popen is not None:
        popen.returncode = status


READS_PER_TURN = 8


_READ_SIZE = 8192


def readSeveral(
    fd: int,
    deliver: Callable[[bytes], None],
    reading: Callable[[], bool],
    pipe: bool,
    read: Callable[[int, int], bytes] = os.read,
) -> object:
    """Up to :data:`READS_PER_TURN` reads of 8 KiB (Twisted's size), each delivered as it is.

    Twisted reads a descriptor once per reactor turn; a child streaming output then costs one
    whole turn (epoll, dispatch, a socket send) per 8 KiB chunk. Reading on until the
    descriptor is empty (or ``READS_PER_TURN`` times) keeps the chunks exactly as they were, one
    per read, and shares the rest of the turn between them. It stops as soon as ``reading()``
    is false: a delivery whose write filled the transport paused us (flow control), or the
    reader is being disconnected. A short read drains a pipe; a pty hands out at most 4095
    bytes per read, so it is read until EAGAIN.

    Returns what ``FileDescriptor.doRead`` returns (``None``, ``CONNECTION_DONE`` or
    ``CONNECTION_LOST``), like ``twisted.internet.fdesc.readFromFD``.
    """
    for _ in range(READS_PER_TURN):
        try:
            data = read(fd, _READ_SIZE)
        except OSError as err:
            if err.errno in (errno.EAGAIN, errno.EINTR):
                return None
            return CONNECTION_LOST
        if not data:
            return CONNECTION_DONE
        deliver(data)
        if (pipe and len(data) < _READ_SIZE) or not reading():
            return None
    return None


class _ReadingState:
    """Knows whether the reactor still reads us: Twisted's ``Process.pauseProducing`` calls
    ``stopReading()`` on the pipe readers directly, so that is the place to look."""

    _stopped = False

    def startReading(self) -> None:
        self._stopped = False
        super().startReading()  # type: ignore[misc]

    def stopReading(self) -> None:
        self._stopped = True
        super().stopReading()  # type: ignore[misc]

    def _reading(self) -> bool:
        return not self._stopped


class _Reader(_ReadingState, ProcessReader):
    """Twisted's pipe reader, reading several times per turn (:func:`readSeveral`)."""

    def doRead(self) -> object:
        return readSeveral(self.fd, self.dataReceived, self._reading, pipe=True)


class _PopenSpawned:
    """What both transports share: the child is spawned by :func:`_popenSpawn` (in a new
    session), or was spawned on a worker thread and is adopted (``_prespawned``, see
    ``process_prespawn.py``); the ``Popen`` is released once Twisted reaped the child."""

    _popen: subprocess.Popen[bytes] | None = None
    _prespawned: Any = None
    pid: Any
    status: Any

    def _trySpawnInsteadOfFork(
        self,
        path: str | None,
        uid: int | None,
        gid: int | None,
        executable: str,
        args: list[str],
        environment: dict[str, str],
        kwargs: dict[str, Any],
    ) -> bool:
        prespawned, self._prespawned = self._prespawned, None
        if prespawned is None:
            self._popen = _popenSpawn(path, executable, args, environment, kwargs)
        else:
            self._popen = prespawned.popen
            self._adoptDescriptors(prespawned)
        self.pid = self._popen.pid
        self.status = -1
        return True

    def _adoptDescriptors(self, prespawned: Any) -> None:
        """Take over the prespawned child's descriptors (a pty's are ``usePTY`` already)."""

    def processEnded(self, status: int) -> None:
        _releasePopen(self._popen, status)
        self._popen = None
        super().processEnded(status)  # type: ignore[misc]


class _PipeProcess(_PopenSpawned, Process):
    """Twisted's pipe transport, spawned by :func:`_popenSpawn` or adopting a prespawned child."""

    processReaderFactory = _Reader

    @classmethod
    def adopt(cls, reactor: Any, prespawned: Any, args: list[str], proto: Any) -> _PipeProcess:
        """The transport of an already running child (on the reactor thread)."""
        self = cls.__new__(cls)
        self._prespawned = prespawned
        self.__init__(  # type: ignore[misc]
            reactor, prespawned.executable, args, {}, prespawned.cwd, proto, childFDs={}
        )
        return self

    def _adoptDescriptors(self, prespawned: Any) -> None:
        # Readers and writers before Twisted registers the pid: output precedes the exit.
        pipes: dict[int, Any] = self.pipes
        for childFD, parentFD in prespawned.pipes.items():
            if childFD == 0:
                pipes[0] = self.processWriterFactory(
                    self._reactor, self, 0, parentFD, forceReadHack=True
                )
            else:
                pipes[childFD] = self.processReaderFactory(self._reactor, self, childFD, parentFD)


class _PtyProcess(_ReadingState, _PopenSpawned, PTYProcess):
    """Twisted's PTY transport, spawned by :func:`_popenSpawn` (setsid + TIOCSCTTY), or
    adopting a child spawned on a worker thread (``_prespawned``)."""

    @classmethod
    def adopt(cls, reactor: Any, prespawned: Any, args: list[str], proto: Any) -> _PtyProcess:
        self = cls.__new__(cls)
        self._prespawned = prespawned
        self.__init__(  # type: ignore[misc]
            reactor,
            prespawned.executable,
            args,
            {},
            prespawned.cwd,
            proto,
            usePTY=prespawned.pty,
        )
        return self

    def _deliver(self, data: bytes) -> None:
        proto: Any = self.proto
        proto.childDataReceived(1, data)

    def doRead(self) -> object:
        return readSeveral(self.fd, self._deliver, self._reading, pipe=False)
