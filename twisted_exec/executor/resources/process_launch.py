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

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from twisted.internet.protocol import ProcessProtocol
from twisted.internet.threads import deferToThreadPool

from twisted_exec.compat.params import ExecParams
from twisted_exec.executor.resources.process_prespawn import (
    Prespawned,
    openPty,
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
        workdir = _ptyCwd(p.cwd, env, environ)
        executable = resolvePtyProgram(p.argv[0], env, workdir)
        with openPty() as usePTY:
            _PtyProcess(reactor, executable, args, env, workdir, proto, usePTY=usePTY)
    else:
        executable = resolvePipeProgram(p.argv[0], env, environ)
        with _childStdin(bool(p.pipeStdin)) as stdin:
            childFDs: dict[int, Any] = {0: stdin, 1: "r", 2: "r"}
            _PipeProcess(reactor, executable, args, env, p.cwd, proto, childFDs=childFDs)


@contextmanager
def _childStdin(pipeStdin: bool) -> Iterator[int | str]:
    """A pipe (``"w"``) or ``/dev/null``, ours to close once the child has its copy."""
    if pipeStdin:
        yield "w"
        return
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield devnull
    finally:
        os.close(devnull)


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


__all__ = ["spawnOnReactor", "spawnOnWorker"]
