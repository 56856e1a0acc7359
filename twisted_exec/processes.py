"""``process/*``: spawning children, their process groups, output notifications and long-poll reads.

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

Notification order (better than the reference, which races)
-----------------------------------------------------------
All events of a process go through one :class:`~twisted_exec.output_buffer.OutputBuffer`, so
notifications leave strictly in seq order. When the child is reaped we wait for its output to
close (everything it wrote is read) but at most ``exitGrace`` seconds (a background grandchild may
hold the pipe open) before ``exited``; ``closed`` follows once the output is closed.

Flow control
------------
The process transports are push producers: :meth:`ProcessTable.pauseAll` stops reading every
pipe (and pty) of the session, so a child that outruns a slow websocket blocks on its full pipe
instead of filling our memory; :meth:`ProcessTable.resumeAll` reads on. Processes started while
paused start paused. The exit grace drain (which reads pipes directly) waits for the resume, so
``exited`` still follows all the output. :meth:`ProcessTable.killAll` resumes first: a pipe that
is not read never reports EOF, and the process would never end (nor its fds close).
See ``docs/flow-control.md``.

Closed processes (decision, ``docs/decisions.md``)
--------------------------------------------------
The reference keeps every process of a session, output included, until the session ends: a
long session that runs thousands of commands grows without bound. We keep the newest
``retainClosed`` (32) closed processes whole (their retained output stays readable); older ones
shrink to a tombstone (a few dozen bytes: the id, which may still never be reused, and what a
``process/read`` of a closed process with no output left answers). At most ``maxTombstones``
tombstones are kept per session; beyond that the oldest ids are forgotten.
"""

from __future__ import annotations

import binascii
import errno
import fcntl
import json
import os
import signal
import stat
import struct
import subprocess
import sys
import termios
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.main import CONNECTION_DONE, CONNECTION_LOST
from twisted.internet.process import Process, ProcessReader, PTYProcess
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from .envpolicy import childEnvironment
from .errors import RpcError, internalError, invalidParams, invalidRequest, osErrorMessage
from .jsonrpc import EncodedParams
from .output_buffer import Chunk, Closed, Event, Exited, OutputBuffer
from .params import ExecParams, ReadParams, TerminateParams, WriteParams

log = Logger()

PTY_ROWS = 24
PTY_COLS = 80
#: At most this many 8 KiB reads when draining a pipe at exit time (see ``_graceExpired``).
_DRAIN_READS = 64
#: Closed processes per session kept whole (output readable) before older ones are tombstoned.
RETAIN_CLOSED = 32
#: Tombstones (ids of forgotten closed processes) per session before the oldest are dropped.
MAX_TOMBSTONES = 16384


class _Tombstone(NamedTuple):
    """What is left of an old closed process: enough to answer read, write and start."""

    nextSeq: int
    exitCode: int
    tty: bool
    pipeStdin: bool
    terminated: bool


def _pendingBytes(fd: int) -> int:
    """Bytes waiting to be read on a pipe or pty master (FIONREAD)."""
    buf = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    return int.from_bytes(buf, sys.byteorder)


# -- program resolution ----------------------------------------------------------------------


def _isExecutableFile(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and os.access(path, os.X_OK)


def resolvePipeProgram(
    program: str, childEnv: Mapping[str, str], environ: Mapping[str, str]
) -> str:
    """Rust ``Command``'s lookup: the child's PATH when it sets one, else the executor's.

    A name with a slash is used as is (relative to the child's cwd). Raises ``OSError`` as
    ``execvp`` would: ENOENT when nothing is found, EACCES when only non-executables were.
    """
    if not program:
        raise RpcError(-32603, "missing program for pipe spawn")
    if "/" in program:
        return program
    searchPath = childEnv["PATH"] if "PATH" in childEnv else environ.get("PATH", os.defpath)
    sawAccess = False
    for directory in searchPath.split(os.pathsep):
        candidate = os.path.join(directory or ".", program)
        if _isExecutableFile(candidate):
            return candidate
        if not sawAccess and os.path.exists(candidate):
            sawAccess = True
    code = errno.EACCES if sawAccess else errno.ENOENT
    raise OSError(code, os.strerror(code))


def resolvePtyProgram(program: str, childEnv: Mapping[str, str], cwd: str | None) -> str:
    """portable-pty's lookup and messages: only the child's own PATH is searched."""
    if not program:
        raise internalError("missing program for PTY spawn")
    if "/" in program:
        path = os.path.join(cwd, program) if cwd and not program.startswith("/") else program
        if not os.path.exists(path):
            raise internalError(
                f"Unable to spawn {program} because it doesn't exist on the filesystem "
                "(ENOENT: No such file or directory)"
            )
        if os.path.isdir(path):
            raise internalError(f"Unable to spawn {program} because it is a directory")
        if not os.access(path, os.X_OK):
            raise internalError(
                f"Unable to spawn {program} because it is not executable "
                "(EACCES: Permission denied)"
            )
        return path
    if "PATH" not in childEnv:
        raise internalError(f"Unable to spawn {program} because:\nUnable to resolve the PATH")
    searchPath = childEnv["PATH"]
    for directory in searchPath.split(os.pathsep):
        candidate = os.path.join(directory or ".", program)
        if _isExecutableFile(candidate):
            return candidate
    raise internalError(
        f'Unable to spawn {program} because:\nNo viable candidates found in PATH "{searchPath}"'
    )


def _ptyCwd(cwd: str, childEnv: Mapping[str, str], environ: Mapping[str, str]) -> str | None:
    """portable-pty falls back to HOME when the cwd is not a directory (probed)."""
    if os.path.isdir(cwd):
        return cwd
    for home in (childEnv.get("HOME"), environ.get("HOME")):
        if home and os.path.isdir(home):
            return home
    return None


# -- Twisted transports spawned through Popen -----------------------------------------------------


def _acquireControllingTerminal() -> None:
    """Runs in the PTY child after setsid and the dup2s: fd 0 is the slave."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _popenSpawn(
    path: str | None,
    executable: str,
    args: list[str],
    environment: dict[str, str],
    kwargs: dict[str, Any],
) -> subprocess.Popen[bytes]:
    """The spawn step shared by both transports (see module docstring)."""
    if "fdmap" in kwargs:
        fdmap = kwargs["fdmap"]
        stdio = (fdmap[0], fdmap[1], fdmap[2])
        preexec = None
    else:
        slave = kwargs["slavefd"]
        stdio = (slave, slave, slave)
        preexec = _acquireControllingTerminal
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


# -- reading output: several reads per reactor turn ------------------------------------------------

#: At most this many reads of 8 KiB from one pipe or pty per reactor turn.
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


class _PipeProcess(Process):
    """Twisted's pipe transport, spawned by :func:`_popenSpawn` in a new session."""

    processReaderFactory = _Reader
    _popen: subprocess.Popen[bytes] | None = None

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
        self._popen = _popenSpawn(path, executable, args, environment, kwargs)
        self.pid = self._popen.pid
        self.status = -1
        return True

    def processEnded(self, status: int) -> None:
        _releasePopen(self._popen, status)
        self._popen = None
        super().processEnded(status)


class _PtyProcess(_ReadingState, PTYProcess):
    """Twisted's PTY transport, spawned by :func:`_popenSpawn` (setsid + TIOCSCTTY)."""

    _popen: subprocess.Popen[bytes] | None = None

    def _deliver(self, data: bytes) -> None:
        proto: Any = self.proto
        proto.childDataReceived(1, data)

    def doRead(self) -> object:
        return readSeveral(self.fd, self._deliver, self._reading, pipe=False)

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
        self._popen = _popenSpawn(path, executable, args, environment, kwargs)
        self.pid = self._popen.pid  # type: ignore[assignment]
        self.status = -1
        return True

    def processEnded(self, status: int) -> None:
        _releasePopen(self._popen, status)
        self._popen = None
        super().processEnded(status)


# -- one process ------------------------------------------------------------------------------


class _Protocol(ProcessProtocol):
    def __init__(self, entry: _Entry) -> None:
        self.entry = entry

    def connectionMade(self) -> None:
        # Runs inside the transport's constructor, before a child that is already gone can be
        # reaped (Twisted tries waitpid at once), so the entry always knows its transport.
        transport = self.transport
        self.entry.transport = transport
        self.entry.pgid = transport.pid if transport is not None else None

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        self.entry.dataReceived(childFD, data)

    def childConnectionLost(self, childFD: int) -> None:
        self.entry.pipeClosed(childFD)

    def processExited(self, reason: Failure) -> None:
        self.entry.reaped(reason)

    def processEnded(self, reason: Failure) -> None:
        self.entry.ended()


class _Entry:
    """State of one started process: its buffer, transport and exit/close sequencing."""

    def __init__(
        self,
        table: ProcessTable,
        processId: str,
        tty: bool,
        pipeStdin: bool,
    ) -> None:
        self.table = table
        self.processId = processId
        self.tty = tty
        self.pipeStdin = pipeStdin
        self.buffer = OutputBuffer(table.retainBytes, self._emit)
        self.transport: Any = None
        self.pgid: int | None = None
        self.isReaped = False
        self.terminated = False
        self.exitCode = 0
        self._openOutputs = {1, 2}
        self._grace: IDelayedCall | None = None
        self._graceDue = False  # the grace ran out while paused: drain once resumed
        # stream -> the JSON around seq and chunk in process/output params (see _outputParams)
        self._outputFraming: dict[str, tuple[bytes, bytes]] = {}

    # the buffer's observer: one notification per event, in seq order
    def _emit(self, event: Event) -> None:
        notify = self.table.notify
        if isinstance(event, Chunk):
            notify("process/output", self._outputParams(event))
        elif isinstance(event, Exited):
            notify(
                "process/exited",
                {"processId": self.processId, "seq": event.seq, "exitCode": event.exitCode},
            )
        elif isinstance(event, Closed):
            notify("process/closed", {"processId": self.processId, "seq": event.seq})

    def _outputParams(self, event: Chunk) -> EncodedParams:
        """``process/output`` params with their JSON built directly (the hot path of streaming).

        Byte for byte what ``json.dumps(params, separators=(",", ":"), ensure_ascii=False)``
        gives: the processId and stream are encoded by ``json`` (once per stream), the seq is an
        int and base64 never needs escaping.
        """
        framing = self._outputFraming.get(event.stream)
        if framing is None:
            pid = json.dumps(self.processId, ensure_ascii=False).encode("utf-8")
            stream = json.dumps(event.stream, ensure_ascii=False).encode("utf-8")
            framing = (b'{"processId":' + pid + b',"seq":', b',"stream":' + stream + b',"chunk":"')
            self._outputFraming[event.stream] = framing
        chunk = binascii.b2a_base64(event.data, newline=False)
        raw = b"".join((framing[0], b"%d" % event.seq, framing[1], chunk, b'"}'))
        value = {
            "processId": self.processId,
            "seq": event.seq,
            "stream": event.stream,
            "chunk": chunk.decode("ascii"),
        }
        return EncodedParams(value, raw)

    def dataReceived(self, childFD: int, data: bytes) -> None:
        stream = "pty" if self.tty else ("stdout" if childFD == 1 else "stderr")
        self.buffer.appendOutput(stream, data)

    def pipeClosed(self, childFD: int) -> None:
        self._openOutputs.discard(childFD)
        if not self._openOutputs:
            self._outputClosed()

    def ended(self) -> None:
        # Reaped and every pipe (or the pty) closed.
        self._openOutputs.clear()
        self._outputClosed()

    def reaped(self, reason: Failure) -> None:
        self.isReaped = True
        value = reason.value
        code = getattr(value, "exitCode", None)
        if code is None:
            # Killed by a signal: -1 for pipes; portable-pty reports 1 for a pty (probed).
            code = 1 if self.tty else -1
        self.exitCode = code
        if not self.tty and self.pipeStdin:
            self.transport.closeStdin()
        if not self._openOutputs:
            self._finish()
        else:
            self._grace = self.table.reactor.callLater(self.table.exitGrace, self._graceExpired)

    def _outputClosed(self) -> None:
        if self.isReaped:
            self._finish()

    def _graceExpired(self) -> None:
        """The output is still open ``exitGrace`` after the exit (a grandchild holds it, or the
        reactor was busy): read what is already buffered in the pipes, then send ``exited``.

        Reading the bytes pending *now* keeps the promise that everything the child wrote
        before it exited precedes ``exited``, even when the reactor did not get to the pipes
        in time (e.g. a long run of spawns). Bounded, as a grandchild may keep writing.
        """
        self._grace = None
        if self.table.paused:
            # Reading now would bypass the pause; the pipes are read again on resume.
            self._graceDue = True
            return
        for reader in self._readers():
            for _ in range(_DRAIN_READS):
                try:
                    pending = _pendingBytes(reader.fileno())
                except OSError:
                    break
                if pending <= 0 or reader.doRead() is not None:
                    break
        self._sendExited()

    def _readers(self) -> list[Any]:
        transport = self.transport
        if transport is None or not getattr(transport, "connected", True):
            return []
        if self.tty:
            return [transport]
        return [transport.pipes[fd] for fd in (1, 2) if fd in transport.pipes]

    def _sendExited(self) -> None:
        if not self.buffer.exited:
            self.buffer.markExited(self.exitCode)

    def pause(self) -> None:
        if self.transport is not None and not self.buffer.closed:
            self.transport.pauseProducing()

    def resume(self) -> None:
        if self.transport is not None and not self.buffer.closed:
            self.transport.resumeProducing()
        if self._graceDue:
            self._graceDue = False
            self._grace = self.table.reactor.callLater(self.table.exitGrace, self._graceExpired)

    def _finish(self) -> None:
        self._graceDue = False
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        if self.buffer.closed:
            return
        self.table._closedOne()
        self.buffer.markFinished(self.exitCode)
        self.table._retire(self)

    def killGroup(self) -> None:
        if self.pgid is None:
            return
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        except OSError as err:
            log.warn("killpg({pgid}) failed: {err}", pgid=self.pgid, err=err)


# -- the table ---------------------------------------------------------------------------------


class ProcessTable:
    """The processes of one JSON-RPC session."""

    def __init__(
        self,
        reactor: Any,
        notify: Callable[[str, dict[str, Any]], None],
        *,
        retainBytes: int = 1 << 20,
        environ: Mapping[str, str] | None = None,
        exitGrace: float = 0.1,
        maxProcesses: int | None = None,
        maxReadBytes: int | None = None,
        retainClosed: int = RETAIN_CLOSED,
        maxTombstones: int = MAX_TOMBSTONES,
    ) -> None:
        self.reactor = reactor
        self.notify = notify
        self.retainBytes = retainBytes
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.exitGrace = exitGrace
        self.maxProcesses = maxProcesses
        self.maxReadBytes = maxReadBytes
        self.paused = False
        self.retainClosed = retainClosed
        self.maxTombstones = maxTombstones
        self._entries: dict[str, _Entry] = {}
        self._running = 0  # entries whose output is not closed yet
        self._closedOrder: deque[str] = deque()  # closed entries, oldest first
        self._tombstones: dict[str, _Tombstone] = {}  # insertion order: oldest first

    async def start(self, p: ExecParams) -> dict[str, Any]:
        if not p.argv:
            raise invalidParams("argv must not be empty")
        if p.processId in self._entries or p.processId in self._tombstones:
            raise invalidRequest(f"process {p.processId} already exists")
        if self.maxProcesses is not None and self.runningCount >= self.maxProcesses:
            raise invalidRequest(
                f"too many processes: this session already runs {self.runningCount} "
                f"(limit {self.maxProcesses}; see --max-processes)"
            )
        env = childEnvironment(p.env, p.envPolicy, self.environ)
        args = list(p.argv)
        if p.arg0 is not None:
            args[0] = p.arg0
        if (
            any("\0" in a for a in p.argv)
            or any("\0" in a for a in args)
            or any("\0" in k or "\0" in v for k, v in env.items())
        ):
            raise internalError("nul byte found in provided data")
        entry = _Entry(self, p.processId, p.tty, bool(p.pipeStdin))
        self._entries[p.processId] = entry
        self._running += 1
        try:
            if p.tty:
                self._spawnPty(entry, p.argv[0], args, env, p.cwd)
            else:
                self._spawnPipes(entry, p.argv[0], args, env, p.cwd, bool(p.pipeStdin))
        except OSError as err:
            self._forgetFailed(p.processId)
            raise internalError(osErrorMessage(err)) from None
        except subprocess.SubprocessError as err:
            self._forgetFailed(p.processId)
            raise internalError(str(err)) from None
        except ValueError as err:  # e.g. "illegal environment variable name"
            self._forgetFailed(p.processId)
            raise internalError(str(err)) from None
        except BaseException:
            self._forgetFailed(p.processId)
            raise
        if self.paused:
            entry.pause()
        return {"processId": p.processId}

    @property
    def runningCount(self) -> int:
        """Processes whose output is not closed yet (what ``--max-processes`` counts)."""
        return self._running

    def _closedOne(self) -> None:
        self._running -= 1

    def _retire(self, entry: _Entry) -> None:
        """A process closed: drop its transport; tombstone the oldest beyond ``retainClosed``."""
        entry.transport = None
        self._closedOrder.append(entry.processId)
        while len(self._closedOrder) > self.retainClosed:
            old = self._entries.pop(self._closedOrder.popleft(), None)
            if old is None:
                continue
            self._tombstones[old.processId] = _Tombstone(
                old.buffer.lastSeq + 1, old.exitCode, old.tty, old.pipeStdin, old.terminated
            )
            while len(self._tombstones) > self.maxTombstones:
                del self._tombstones[next(iter(self._tombstones))]

    @property
    def tombstoneCount(self) -> int:
        return len(self._tombstones)

    def _forgetFailed(self, processId: str) -> None:
        del self._entries[processId]
        self._running -= 1

    def _spawnPipes(
        self,
        entry: _Entry,
        program: str,
        args: list[str],
        env: dict[str, str],
        cwd: str,
        pipeStdin: bool,
    ) -> None:
        executable = resolvePipeProgram(program, env, self.environ)
        devnull = None
        if pipeStdin:
            childFDs: dict[int, Any] = {0: "w", 1: "r", 2: "r"}
        else:
            devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            childFDs = {0: devnull, 1: "r", 2: "r"}
        try:
            _PipeProcess(
                self.reactor, executable, args, env, cwd, _Protocol(entry), childFDs=childFDs
            )
        finally:
            if devnull is not None:
                os.close(devnull)

    def _spawnPty(
        self, entry: _Entry, program: str, args: list[str], env: dict[str, str], cwd: str
    ) -> None:
        workdir = _ptyCwd(cwd, env, self.environ)
        executable = resolvePtyProgram(program, env, workdir)
        master, slave = os.openpty()
        try:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", PTY_ROWS, PTY_COLS, 0, 0))
            _PtyProcess(
                self.reactor,
                executable,
                args,
                env,
                workdir,
                _Protocol(entry),
                usePTY=(master, slave, os.ttyname(slave)),
            )
        except BaseException:
            os.close(master)
            os.close(slave)
            raise

    # -- read / write / terminate --------------------------------------------------------------

    def _get(self, processId: str) -> _Entry:
        entry = self._entries.get(processId)
        if entry is None:
            raise invalidRequest(f"unknown process id {processId}")
        return entry

    async def read(self, p: ReadParams) -> dict[str, Any]:
        tombstone = self._tombstones.get(p.processId)
        if tombstone is not None:
            # closed long ago: its output is gone, as if it had all been read
            return {
                "chunks": [],
                "nextSeq": tombstone.nextSeq,
                "exited": True,
                "exitCode": tombstone.exitCode,
                "closed": True,
                "failure": None,
            }
        entry = self._get(p.processId)
        afterSeq = p.afterSeq or 0
        if p.waitMs:
            await waitForEvents(self.reactor, entry.buffer, afterSeq, p.waitMs)
        maxBytes = p.maxBytes
        if self.maxReadBytes is not None and (maxBytes is None or maxBytes > self.maxReadBytes):
            maxBytes = self.maxReadBytes
        return entry.buffer.read(afterSeq, maxBytes).toJson()

    def write(self, p: WriteParams) -> dict[str, Any]:
        data = p.chunk
        entry: _Entry | _Tombstone | None = self._entries.get(p.processId)
        if entry is None:
            entry = self._tombstones.get(p.processId)
        if entry is None:
            return {"status": "unknownProcess"}
        # As the reference (probed): only a process killed by process/terminate refuses writes;
        # after a natural exit, or once the child closed its stdin, writes are still accepted
        # (and dropped), since the reference hands them to a writer task that ignores EPIPE.
        if not entry.tty and not entry.pipeStdin:
            return {"status": "stdinClosed"}
        if entry.terminated:
            raise internalError("failed to write to process stdin")
        if data and isinstance(entry, _Entry) and entry.transport is not None:
            if entry.tty:
                if entry.transport.connected:
                    entry.transport.write(data)
            elif not entry.isReaped and 0 in entry.transport.pipes:
                entry.transport.writeToChild(0, data)
        return {"status": "accepted"}

    def terminate(self, p: TerminateParams) -> dict[str, Any]:
        entry = self._entries.get(p.processId)
        if entry is None or entry.isReaped:
            return {"running": False}
        entry.terminated = True
        entry.killGroup()
        return {"running": True}

    # -- flow control --------------------------------------------------------------------------

    def pauseAll(self) -> None:
        """Stop reading every process's output (the session's transport is full)."""
        if self.paused:
            return
        self.paused = True
        for entry in list(self._entries.values()):
            entry.pause()

    def resumeAll(self) -> None:
        if not self.paused:
            return
        self.paused = False
        for entry in list(self._entries.values()):
            entry.resume()

    def killAll(self) -> None:
        """SIGKILL the group of every process whose output is not closed yet (session teardown)."""
        self.resumeAll()
        for entry in self._entries.values():
            if not entry.buffer.closed:
                entry.terminated = True
                entry.killGroup()


def waitForEvents(
    clock: IReactorTime, buffer: OutputBuffer, afterSeq: int, waitMs: int
) -> Deferred[None]:
    """Fire at the first event with seq > ``afterSeq`` or after ``waitMs``, whichever is first.

    Fires at once when such events exist already or the process is closed (nothing more can come).
    """
    done: Deferred[None] = Deferred()
    if buffer.hasEventsAfter(afterSeq) or buffer.closed:
        done.callback(None)
        return done

    def wake() -> None:
        if timer.active():
            timer.cancel()
        if not done.called:
            done.callback(None)

    def timeout() -> None:
        cancel()
        if not done.called:
            done.callback(None)

    timer = clock.callLater(waitMs / 1000.0, timeout)
    cancel = buffer.addWaiter(afterSeq, wake)
    return done


__all__ = [
    "ProcessTable",
    "resolvePipeProgram",
    "resolvePtyProgram",
    "waitForEvents",
]
