"""``codex-exec run``: a remote process with our stdin, stdout, stderr, terminal and Ctrl-C.

Output is written to our stdout synchronously, on purpose (see :mod:`.commands`). With ``--tty``
our terminal goes raw and its resizes follow the process (the ``process/resize`` extension);
stopping the reactor (Ctrl-C) terminates the remote process first, within 2 s.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

from twisted_exec.cli import outcome, terminal
from twisted_exec.cli.errors import CliError, note
from twisted_exec.cli.file_commands import metadataOrNone
from twisted_exec.cli.local_io import writeOutput
from twisted_exec.cli.stdin import forwardStdin
from twisted_exec.harness.errors import CallError, StreamError
from twisted_exec.harness.remote_process import RemoteProcess
from twisted_exec.harness.session import ExecSession

INTERRUPTED = outcome.INTERRUPTED


def exitStatus(code: int) -> int:
    """The executor reports -1 for a process killed by a signal; a shell status is 0..255."""
    return outcome.exitStatus(code)[0]


async def defaultCwd(session: ExecSession) -> str:
    """The local working directory when the executor has it (one machine), else ``/``."""
    here = os.getcwd()
    meta = await metadataOrNone(session, here)
    return here if meta is not None and meta.get("isDirectory") else "/"


async def run(reactor: Any, session: ExecSession, args: argparse.Namespace) -> int:
    if args.cwd:
        problem = outcome.cwdProblem(args.cwd, await metadataOrNone(session, args.cwd))
        if problem is not None:
            raise CliError(problem, 1)
        cwd = args.cwd
    else:
        cwd = await defaultCwd(session)
    env = dict(item.split("=", 1) for item in args.env)
    stdinIsTty = os.isatty(0)
    interactive = args.interactive or (args.tty and stdinIsTty)
    argv = list(args.argv)
    if args.tty:
        env.setdefault("TERM", os.environ.get("TERM", "xterm"))
        argv = terminal.sizedArgv(argv, terminal.terminalSize())
    try:
        process: RemoteProcess = await session.spawn(
            argv,
            cwd,
            env=env,
            tty=args.tty,
            pipeStdin=interactive,
            onOutput=writeOutput,
            keepOutput=False,
        )
    except CallError as e:
        mapped = outcome.spawnFailure(args.argv[0], e.message)
        if mapped is not None:
            raise CliError(*mapped) from None
        raise
    interrupted: list[bool] = []

    def onShutdown() -> Deferred[Any]:
        interrupted.append(True)
        return terminateBounded(reactor, process)

    stopTrigger = reactor.addSystemEventTrigger("before", "shutdown", onShutdown)
    restore = terminal.rawTerminal() if args.tty and stdinIsTty else None
    unwatch = watchResizes(reactor, process) if args.tty and stdinIsTty else None
    try:
        if interactive:
            Deferred.fromCoroutine(forwardStdin(reactor, process, tty=args.tty, note=note))
        code = await process.finished
    except StreamError as e:
        if interrupted:  # we are shutting down: the connection went with us
            return INTERRUPTED
        raise CliError(f"lost the command's stream: {e.reason}") from None
    finally:
        if unwatch is not None:
            unwatch()
        if restore is not None:
            restore()
        if not interrupted:
            reactor.removeSystemEventTrigger(stopTrigger)
    status, why = outcome.exitStatus(code, interrupted=bool(interrupted))
    if why is not None:
        note(why)
    return status


RESIZE_METHOD = "process/resize"


def watchResizes(reactor: Any, process: RemoteProcess) -> Callable[[], None]:
    """Send our terminal's new size to executors with the ``process/resize`` extension."""
    supported = [True]

    def resized(size: tuple[int, int]) -> None:
        if not supported[0] or process.done:
            return
        rows, cols = size
        d = process.session.call(
            RESIZE_METHOD, {"processId": process.processId, "rows": rows, "cols": cols}
        )

        def failed(failure: Any) -> None:
            if failure.check(CallError) and failure.value.code == -32601:
                supported[0] = False  # an executor without it keeps the first size

        d.addErrback(failed)

    return terminal.watchResize(reactor, resized)


def terminateBounded(reactor: Any, process: RemoteProcess) -> Deferred[Any]:
    """On Ctrl-C (the reactor stopping), kill the remote process first, within 2 s."""
    if process.done:
        return Deferred.fromCoroutine(_nothing())
    d = process.terminate()
    d.addErrback(lambda _: None)
    return d.addTimeout(2, reactor).addErrback(lambda _: None)


async def _nothing() -> None:
    return None
