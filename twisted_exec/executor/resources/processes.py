"""``process/*``: spawning children, their process groups, output notifications and long-poll reads.

Closed processes (decision, ``docs/decisions.md``)
--------------------------------------------------
The reference keeps every process of a session, output included, until the session ends: a
long session that runs thousands of commands grows without bound. We keep the newest
``retainClosed`` (32) closed processes whole (their retained output stays readable); older ones
shrink to a tombstone (a few dozen bytes: the id, which may still never be reused, and what a
``process/read`` of a closed process with no output left answers). At most ``maxTombstones``
tombstones are kept per session; beyond that the oldest ids are forgotten.

Starting a child: :mod:`.process_launch` (transports: :mod:`.process_spawn`; program lookup:
:mod:`.process_programs`); one process, its notification order and flow control:
:mod:`.process_entry`, its lifecycle's state machine: :mod:`.process_lifecycle`.
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import termios
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from twisted_exec.compat.envpolicy import childEnvironment
from twisted_exec.compat.oserror import osErrorMessage
from twisted_exec.compat.params import (
    CloseStdinParams,
    ExecParams,
    ReadParams,
    ResizeParams,
    TerminateParams,
    WriteParams,
)
from twisted_exec.executor.core.dialect import Dialect
from twisted_exec.executor.core.interfaces import IProcessTable
from twisted_exec.executor.core.limits import Limits
from twisted_exec.executor.resources.containment import Containment, restoreChildSignals
from twisted_exec.executor.resources.process_entry import (
    _Entry,
    _Protocol,
    _Tombstone,
)
from twisted_exec.executor.resources.process_io import waitForEvents, writeBacklog
from twisted_exec.executor.resources.process_launch import spawnOnReactor, spawnOnWorker
from twisted_exec.net.secretenv import SecretScrubber
from twisted_exec.wire.errors import internalError, invalidParams, invalidRequest

log = Logger()

#: Closed processes per session kept whole (output readable) before older ones are tombstoned.
RETAIN_CLOSED = 32
#: Tombstones (ids of forgotten closed processes) per session before the oldest are dropped.
MAX_TOMBSTONES = 16384
#: writeIds remembered per process for 0.171's de-duplication (the oldest are forgotten).
MAX_WRITE_IDS = 4096


@implementer(IProcessTable)
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
        limits: Limits | None = None,
        containment: Containment | None = None,
        spawnPool: Any = None,
        scrubber: SecretScrubber | None = None,
    ) -> None:
        self.reactor = reactor
        #: A thread pool for PATH lookups, fork and exec waits (``process_prespawn.py``);
        #: ``None`` spawns on the calling (reactor) thread.
        self.spawnPool = spawnPool
        self._killed = False
        self.limits = limits if limits is not None else Limits()
        #: The executor's orphan tracking: descendants die with the session (containment.py).
        self.containment = containment
        #: Credentials no child may see, whatever its envPolicy (``net/secretenv``).
        self.scrubber = scrubber if scrubber is not None else SecretScrubber()
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
        #: Called after each successful spawn (metrics), when set.
        self.onStarted: Callable[[], None] | None = None

    async def start(self, p: ExecParams, dialect: Dialect = Dialect.V131) -> dict[str, Any]:
        if not p.argv:
            raise invalidParams("argv must not be empty")
        if p.processId in self._entries or p.processId in self._tombstones:
            raise invalidRequest(f"process {p.processId} already exists")
        if self.maxProcesses is not None and self.runningCount >= self.maxProcesses:
            raise invalidRequest(
                f"too many processes: this session already runs {self.runningCount} "
                f"(limit {self.maxProcesses}; see --max-processes)"
            )
        inherited = self.scrubber.scrub(self.environ)
        env = self.scrubber.scrubValues(childEnvironment(p.env, p.envPolicy, inherited))
        args = list(p.argv)
        if p.arg0 is not None:
            args[0] = p.arg0
        if (
            any("\0" in a for a in p.argv)
            or any("\0" in a for a in args)
            or any("\0" in k or "\0" in v for k, v in env.items())
        ):
            raise internalError("nul byte found in provided data")
        if threading.current_thread() is threading.main_thread():
            restoreChildSignals()  # an inherited SIG_IGN must not reach the child
        entry = _Entry(self, p.processId, p.tty, bool(p.pipeStdin))
        entry.v171 = dialect >= Dialect.V171
        self._entries[p.processId] = entry
        self._running += 1
        try:
            if self.spawnPool is not None:
                await self._spawnOffThread(entry, p, args, env)
            else:
                spawnOnReactor(self.reactor, _Protocol(entry), p, args, env, self.environ)
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
        if self.containment is not None and entry.pgid is not None:
            self.containment.spawned(self, entry.pgid)
        if self.paused:
            entry.pause()
        if self.onStarted is not None:
            self.onStarted()
        return {"processId": p.processId}

    @property
    def runningCount(self) -> int:
        """Processes whose output is not closed yet (what ``--max-processes`` counts)."""
        return self._running

    def _closedOne(self) -> None:
        self._running -= 1

    def _reapedOne(self) -> None:
        """A child was reaped: the orphans it left were just re-parented to us; claim them."""
        if self.containment is not None and self.containment.enabled:
            self.containment.exited(self)

    def _retire(self, entry: _Entry) -> None:
        """A process closed: drop its transport; tombstone the oldest beyond ``retainClosed``."""
        entry.transport = None
        self._closedOrder.append(entry.processId)
        while len(self._closedOrder) > self.retainClosed:
            old = self._entries.pop(self._closedOrder.popleft(), None)
            if old is None:
                continue
            self._tombstones[old.processId] = old.tombstone()
            while len(self._tombstones) > self.maxTombstones:
                del self._tombstones[next(iter(self._tombstones))]

    @property
    def tombstoneCount(self) -> int:
        return len(self._tombstones)

    def _forgetFailed(self, processId: str) -> None:
        self._entries.pop(processId).neverStarted()
        self._running -= 1

    async def _spawnOffThread(
        self, entry: _Entry, p: ExecParams, args: list[str], env: dict[str, str]
    ) -> None:
        """Resolve, fork and wait for the exec on a worker thread; adopt it on this one."""
        containment = self.containment
        if containment is not None:
            containment.beginSpawn()
        try:
            await spawnOnWorker(
                self.reactor,
                self.spawnPool,
                lambda: _Protocol(entry),
                p,
                args,
                env,
                self.environ,
                abandoned=lambda: self._killed,
            )
        finally:
            if containment is not None:
                containment.endSpawn()

    # -- read / write / terminate --------------------------------------------------------------

    def _get(self, processId: str) -> _Entry:
        entry = self._entries.get(processId)
        if entry is None:
            raise invalidRequest(f"unknown process id {processId}")
        return entry

    async def read(self, p: ReadParams, dialect: Dialect = Dialect.V131) -> dict[str, Any]:
        """The retained output after ``afterSeq``; 0.171's answer adds ``sandboxDenied`` and
        moves ``nextSeq`` past ``exited``/``closed`` when no chunk was left out (probed)."""
        tombstone = self._tombstones.get(p.processId)
        if tombstone is not None:
            # closed long ago: its output is gone, as if it had all been read
            gone: dict[str, Any] = {
                "chunks": [],
                "nextSeq": tombstone.nextSeq,
                "exited": True,
                "exitCode": tombstone.exitCode,
                "closed": True,
                "failure": None,
            }
            if dialect >= Dialect.V171:
                gone["sandboxDenied"] = False
            return gone
        entry = self._get(p.processId)
        afterSeq = p.afterSeq or 0
        if p.waitMs:
            await waitForEvents(self.reactor, entry.buffer, afterSeq, p.waitMs)
        maxBytes = p.maxBytes
        if self.maxReadBytes is not None and (maxBytes is None or maxBytes > self.maxReadBytes):
            maxBytes = self.maxReadBytes
        result = entry.buffer.read(afterSeq, maxBytes)
        answer = result.toJson()
        if dialect >= Dialect.V171:
            if not result.chunks or result.chunks[-1].seq == entry.buffer.lastChunkSeq:
                answer["nextSeq"] = entry.buffer.lastSeq + 1
            answer["sandboxDenied"] = False
        return answer

    def write(self, p: WriteParams, writeId: str | None = None) -> dict[str, Any]:
        """``process/write``; with a ``writeId`` (0.171) a repeated id is ``accepted`` and
        writes nothing, so a client may safely retry a write after a reconnect."""
        data = p.chunk
        entry: _Entry | _Tombstone | None = self._entries.get(p.processId)
        if entry is None:
            entry = self._tombstones.get(p.processId)
        if entry is None:
            return {"status": "unknownProcess"}
        # As the reference (probed): only a process killed by process/terminate refuses writes;
        # after a natural exit, or once the child closed its stdin, writes are still accepted
        # (and dropped), since the reference hands them to a writer task that ignores EPIPE.
        if not entry.tty and (not entry.pipeStdin or getattr(entry, "stdinEnded", False)):
            return {"status": "stdinClosed"}
        if writeId is not None and isinstance(entry, _Entry):
            if writeId in entry.writeIds:
                return {"status": "accepted"}
            entry.writeIds[writeId] = None
            if len(entry.writeIds) > MAX_WRITE_IDS:
                del entry.writeIds[next(iter(entry.writeIds))]
        if entry.terminated:
            raise internalError("failed to write to process stdin")
        if data and isinstance(entry, _Entry) and entry.transport is not None:
            if entry.tty:
                if entry.transport.connected:
                    self._checkStdinBudget(entry.transport, len(data))
                    entry.transport.write(data)
            elif not entry.isReaped and 0 in entry.transport.pipes:
                self._checkStdinBudget(entry.transport.pipes[0], len(data))
                entry.transport.writeToChild(0, data)
        return {"status": "accepted"}

    def _checkStdinBudget(self, writer: Any, incoming: int) -> None:
        """A child that does not read its stdin must not make us buffer without bound."""
        problem = self.limits.stdinProblem(writeBacklog(writer), incoming)
        if problem is not None:
            raise invalidRequest(problem)

    # -- extensions (an executor without them answers -32601; docs/decisions.md) --------------

    def closeStdin(self, p: CloseStdinParams) -> dict[str, Any]:
        """End a piped stdin, as a shell's ``<&-``: the child reads EOF once it drained it."""
        if p.processId in self._tombstones:
            return {}
        entry = self._get(p.processId)
        if entry.tty:
            raise invalidRequest(
                f"process {p.processId} runs on a pty: write its EOF character (Ctrl-D) instead"
            )
        entry.stdinEnded = True
        if entry.pipeStdin and entry.transport is not None and not entry.isReaped:
            entry.transport.closeStdin()  # after what was written: Twisted flushes first
        return {}

    def resize(self, p: ResizeParams) -> dict[str, Any]:
        """Set a pty's size; the kernel signals SIGWINCH to its foreground process group."""
        entry = self._get(p.processId)
        if not entry.tty:
            raise invalidRequest(f"process {p.processId} has no pty to resize")
        if p.rows == 0 or p.cols == 0:
            raise invalidParams("rows and cols must be more than 0")
        fd = getattr(entry.transport, "fd", None)
        if entry.isReaped or not isinstance(fd, int):
            return {}
        try:
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", p.rows, p.cols, 0, 0))
        except OSError as err:
            raise internalError(osErrorMessage(err)) from None
        return {}

    def interrupt(self, processId: str) -> None:
        """``process/signal interrupt``: SIGINT to the process group; unknown ids are ignored."""
        entry = self._entries.get(processId)
        if entry is not None:
            entry.interrupt()

    def terminate(self, p: TerminateParams) -> dict[str, Any]:
        entry = self._entries.get(p.processId)
        if entry is None:
            return {"running": False}
        return {"running": entry.terminate()}

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
        """SIGKILL the group of every process whose output is not closed yet (session teardown),
        and, with containment, every descendant of the session's processes (``setsid`` ones
        included) and the orphans it left behind."""
        self.resumeAll()
        self._killed = True
        if self.containment is not None and self.containment.enabled:
            live = [e.pgid for e in self._entries.values() if not e.isReaped and e.pgid is not None]
            self.containment.killOwned(self, live)
        for entry in list(self._entries.values()):
            entry.kill()

    def whenAllEnded(self) -> list[Deferred[None]]:
        """One Deferred per process that has not ended yet (``processEnded``), each firing when
        it has: what :meth:`.Executor.shutdown` waits for after :meth:`killAll`."""
        return [entry.whenEnded() for entry in self._entries.values() if not entry.hasEnded]


__all__ = ["ProcessTable", "waitForEvents", "writeBacklog"]
