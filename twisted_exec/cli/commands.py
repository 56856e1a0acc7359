"""The ``codex-exec`` commands, each an ``async`` function returning the exit status.

Output is written to our stdout synchronously, on purpose: the CLI serves one user, and a
terminal or pipe that reads slowly should slow the stream down (TCP then pushes back on the
rendezvous and the executor, which pauses the process: see docs/flow-control.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.threads import deferToThreadPool

from twisted_exec.cli.errors import CliError
from twisted_exec.harness.connection import HarnessConnection, connectHarness
from twisted_exec.harness.errors import CallError, HarnessError, StreamError
from twisted_exec.harness.listing import listExecutors
from twisted_exec.harness.session import ExecSession, RemoteProcess

INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


async def runCommand(reactor: Any, args: argparse.Namespace, token: str | None) -> int:
    if args.command == "ls-executors":
        return await lsExecutors(reactor, args, token)
    executorId = args.executor_id or await onlyExecutor(reactor, args, token)
    connection = await connectHarness(
        reactor, args.rendezvous, executorId, token, timeout=args.timeout
    )
    try:
        session = await connection.openSession(clientName="codex-exec")
        handler: dict[str, Callable[..., Any]] = {
            "run": run,
            "cat": cat,
            "cp": cp,
            "ls": ls,
        }
        code: int = await handler[args.command](reactor, session, args)
        return code
    finally:
        await closeQuietly(connection)


async def closeQuietly(connection: HarnessConnection) -> None:
    with suppress(Exception):
        await connection.close()


async def onlyExecutor(reactor: Any, args: argparse.Namespace, token: str | None) -> str:
    executors = await listExecutors(reactor, args.rendezvous, token, timeout=args.timeout)
    connected = [e["executor_id"] for e in executors if e.get("connected")]
    if len(connected) == 1:
        return str(connected[0])
    if not connected:
        raise CliError(f"no executor is connected to the rendezvous at {args.rendezvous}")
    raise CliError(
        f"{len(connected)} executors are connected ({', '.join(sorted(connected))}): "
        "choose one with --executor-id"
    )


async def lsExecutors(reactor: Any, args: argparse.Namespace, token: str | None) -> int:
    executors = await listExecutors(reactor, args.rendezvous, token, timeout=args.timeout)
    out = sys.stdout
    out.write(f"{'EXECUTOR':<32} {'STATE':<13} {'STREAMS':>7} {'CONNECTIONS':>11}\n")
    for e in executors:
        state = "connected" if e.get("connected") else "disconnected"
        out.write(
            f"{e.get('executor_id', '?'):<32} {state:<13} {e.get('streams', 0):>7} "
            f"{e.get('connections', 0):>11}\n"
        )
    out.flush()
    return 0


# -- run --------------------------------------------------------------------------------------


def exitStatus(code: int) -> int:
    """The executor reports -1 for a process killed by a signal; a shell status is 0..255."""
    return code if 0 <= code <= 255 else 255


async def defaultCwd(session: ExecSession) -> str:
    """The local working directory when the executor has it (one machine), else ``/``."""
    here = os.getcwd()
    try:
        meta = await session.getMetadata(here)
    except CallError:
        return "/"
    return here if meta.get("isDirectory") else "/"


def _writer(stream: str) -> Any:
    return sys.stderr.buffer if stream == "stderr" else sys.stdout.buffer


def writeOutput(stream: str, data: bytes) -> None:
    out = _writer(stream)
    out.write(data)
    out.flush()


async def run(reactor: Any, session: ExecSession, args: argparse.Namespace) -> int:
    cwd = args.cwd or await defaultCwd(session)
    env = dict(item.split("=", 1) for item in args.env)
    stdinIsTty = os.isatty(0)
    interactive = args.interactive or (args.tty and stdinIsTty)
    if args.tty:
        env.setdefault("TERM", os.environ.get("TERM", "xterm"))
    process: RemoteProcess = await session.spawn(
        args.argv,
        cwd,
        env=env,
        tty=args.tty,
        pipeStdin=interactive,
        onOutput=writeOutput,
        keepOutput=False,
    )
    interrupted: list[bool] = []

    def onShutdown() -> Deferred[Any]:
        interrupted.append(True)
        return terminateBounded(reactor, process)

    stopTrigger = reactor.addSystemEventTrigger("before", "shutdown", onShutdown)
    restore = rawTerminal() if args.tty and stdinIsTty else None
    try:
        if interactive:
            Deferred.fromCoroutine(forwardStdin(reactor, process))
        code = await process.finished
    except StreamError as e:
        if interrupted:  # we are shutting down: the connection went with us
            return INTERRUPTED
        raise CliError(f"lost the command's stream: {e.reason}") from None
    finally:
        if restore is not None:
            restore()
        if not interrupted:
            reactor.removeSystemEventTrigger(stopTrigger)
    return INTERRUPTED if interrupted else exitStatus(code)


def terminateBounded(reactor: Any, process: RemoteProcess) -> Deferred[Any]:
    """On Ctrl-C (the reactor stopping), kill the remote process first, within 2 s."""
    if process.done:
        return Deferred.fromCoroutine(_nothing())
    d = process.terminate()
    d.addErrback(lambda _: None)
    return d.addTimeout(2, reactor).addErrback(lambda _: None)


async def _nothing() -> None:
    return None


async def forwardStdin(reactor: Any, process: RemoteProcess) -> None:
    """Copy our stdin to the process.

    Read on a daemon thread: a blocking read needs no O_NONBLOCK on a tty shared with our
    stdout, and a read still blocked when the command has ended must not hold up our exit (the
    reactor's thread pool joins its threads at shutdown). The exec-server protocol has no way
    to close a process's stdin: at our EOF the remote side simply gets no more input (on a
    pty, typing Ctrl-D is the EOF).
    """
    chunks: DeferredQueue[bytes] = DeferredQueue()

    def reader() -> None:
        while True:
            try:
                data = os.read(0, 65536)
            except OSError:
                data = b""
            reactor.callFromThread(chunks.put, data)
            if not data:
                return

    threading.Thread(target=reader, name="codex-exec-stdin", daemon=True).start()
    while not process.done:
        data = await chunks.get()
        if not data or process.done:
            return
        try:
            await process.write(data)
        except HarnessError:
            return


def rawTerminal() -> Callable[[], None]:
    """Put the local terminal in raw mode (keystrokes go to the remote pty as typed)."""
    import termios
    import tty

    saved = termios.tcgetattr(0)
    tty.setraw(0)

    def restore() -> None:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)

    return restore


# -- files ------------------------------------------------------------------------------------


async def cat(reactor: Any, session: ExecSession, args: argparse.Namespace) -> int:
    for path in args.paths:
        data = await pathCall(path, session.readFile(absolute(path)))
        writeOutput("stdout", data)
    return 0


def absolute(path: str) -> str:
    if not path.startswith("/"):
        raise CliError(f"remote paths must be absolute, got {path!r}", 2)
    return path


async def pathCall(path: str, d: Deferred[Any]) -> Any:
    try:
        return await d
    except CallError as e:
        raise CliError(f"{path}: {e.message}", 1) from None


async def cp(reactor: Any, session: ExecSession, args: argparse.Namespace) -> int:
    source, destination = args.source, args.destination
    sourceRemote, destinationRemote = source.startswith(":"), destination.startswith(":")
    if sourceRemote == destinationRemote:
        raise CliError(
            "cp copies between this machine and the executor: mark exactly one side "
            "remote with ':' (e.g. codex-exec cp ./a.txt :/tmp/a.txt)",
            2,
        )
    if sourceRemote:
        remote = absolute(source[1:])
        data = await pathCall(remote, session.readFile(remote))
        if destination == "-":
            writeOutput("stdout", data)
        else:
            target = destination
            if os.path.isdir(target):
                target = os.path.join(target, os.path.basename(remote))
            await writeLocal(reactor, target, data)
        return 0
    remote = absolute(destination[1:])
    data = await readLocal(reactor, source)
    if remote.endswith("/") or await isRemoteDirectory(session, remote):
        remote = remote.rstrip("/") + "/" + os.path.basename(source)
    await pathCall(remote, session.writeFile(remote, data))
    return 0


async def isRemoteDirectory(session: ExecSession, path: str) -> bool:
    try:
        meta = await session.getMetadata(path)
    except CallError:
        return False
    return bool(meta.get("isDirectory"))


async def readLocal(reactor: Any, path: str) -> bytes:
    def read() -> bytes:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as f:
            return f.read()

    try:
        data: bytes = await deferToThreadPool(reactor, reactor.getThreadPool(), read)
    except OSError as e:
        raise CliError(f"{path}: {e.strerror}", 1) from None
    return data


async def writeLocal(reactor: Any, path: str, data: bytes) -> None:
    def write() -> None:
        with open(path, "wb") as f:
            f.write(data)

    try:
        await deferToThreadPool(reactor, reactor.getThreadPool(), write)
    except OSError as e:
        raise CliError(f"{path}: {e.strerror}", 1) from None


async def ls(reactor: Any, session: ExecSession, args: argparse.Namespace) -> int:
    path = absolute(args.path)
    entries = await pathCall(path, session.readDirectory(path))
    names = sorted(e["fileName"] + ("/" if e.get("isDirectory") else "") for e in entries)
    writeOutput("stdout", "".join(f"{name}\n" for name in names).encode())
    return 0
