"""Starting a child for :class:`~.processes.ProcessTable`: its transport, on pipes or a pty.

Two ways, chosen by the table: on the reactor thread (the program lookup and fork happen there,
fine for a few processes), or with a thread pool (``spawnPool``), where the lookup, fork and the
wait for the exec run on a worker thread (:mod:`.process_prespawn`) and the reactor thread only
adopts the running child. Either way the transport is one of :mod:`.process_spawn`'s and the
protocol is the entry's, connected before the child can be reaped.

Kept apart from the table, which decides *whether* a process may start (ids, limits, the
environment) and owns it afterwards; this module only knows *how* a child is started.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.protocol import ProcessProtocol
from twisted.internet.threads import deferToThreadPool

from twisted_exec.compat.params import ExecParams
from twisted_exec.executor.resources.process_prespawn import (
    PTY_COLS,
    PTY_ROWS,
    Prespawned,
    prespawnPipes,
    prespawnPty,
)
from twisted_exec.executor.resources.process_programs import (
    _ptyCwd,
    resolvePipeProgram,
    resolvePtyProgram,
)
from twisted_exec.executor.resources.process_spawn import _PipeProcess, _PtyProcess
from twisted_exec.wire.errors import internalError


def spawnOnReactor(
    reactor: Any,
    proto: ProcessProtocol,
    p: ExecParams,
    args: list[str],
    env: dict[str, str],
    environ: Mapping[str, str],
) -> None:
    """Look the program up, fork and exec on this (the reactor) thread."""
    if p.tty:
        _spawnPty(reactor, proto, p.argv[0], args, env, p.cwd, environ)
    else:
        _spawnPipes(reactor, proto, p.argv[0], args, env, p.cwd, bool(p.pipeStdin), environ)


async def spawnOnWorker(
    reactor: Any,
    pool: Any,
    makeProtocol: Callable[[], ProcessProtocol],
    p: ExecParams,
    args: list[str],
    env: dict[str, str],
    environ: Mapping[str, str],
    *,
    abandoned: Callable[[], bool],
) -> None:
    """Start the child on a worker thread of ``pool``, then adopt it here.

    ``abandoned()`` is asked once the child runs: a session that ended meanwhile never owns it
    (the child is killed and waited for on the pool).
    """
    if p.tty:
        prespawned: Prespawned = await deferToThreadPool(
            reactor, pool, prespawnPty, p.argv[0], args, env, p.cwd, environ
        )
    else:
        prespawned = await deferToThreadPool(
            reactor,
            pool,
            prespawnPipes,
            p.argv[0],
            args,
            env,
            p.cwd,
            bool(p.pipeStdin),
            environ,
        )
    if abandoned():
        # The session ended while the child was being started: it never becomes ours.
        await deferToThreadPool(reactor, pool, prespawned.abandon)
        raise internalError("session closed while the process was starting")
    if p.tty:
        _PtyProcess.adopt(reactor, prespawned, args, makeProtocol())
    else:
        _PipeProcess.adopt(reactor, prespawned, args, makeProtocol())


def _spawnPipes(
    reactor: Any,
    proto: ProcessProtocol,
    program: str,
    args: list[str],
    env: dict[str, str],
    cwd: str,
    pipeStdin: bool,
    environ: Mapping[str, str],
) -> None:
    executable = resolvePipeProgram(program, env, environ)
    devnull = None
    if pipeStdin:
        childFDs: dict[int, Any] = {0: "w", 1: "r", 2: "r"}
    else:
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        childFDs = {0: devnull, 1: "r", 2: "r"}
    try:
        _PipeProcess(reactor, executable, args, env, cwd, proto, childFDs=childFDs)
    finally:
        if devnull is not None:
            os.close(devnull)


def _spawnPty(
    reactor: Any,
    proto: ProcessProtocol,
    program: str,
    args: list[str],
    env: dict[str, str],
    cwd: str,
    environ: Mapping[str, str],
) -> None:
    workdir = _ptyCwd(cwd, env, environ)
    executable = resolvePtyProgram(program, env, workdir)
    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", PTY_ROWS, PTY_COLS, 0, 0))
        _PtyProcess(
            reactor,
            executable,
            args,
            env,
            workdir,
            proto,
            usePTY=(master, slave, os.ttyname(slave)),
        )
    except BaseException:
        os.close(master)
        os.close(slave)
        raise


__all__ = ["spawnOnReactor", "spawnOnWorker"]
