"""The ``codex-exec`` commands, each an ``async`` function returning the exit status.

Output is written to our stdout synchronously, on purpose: the CLI serves one user, and a
terminal or pipe that reads slowly should slow the stream down (TCP then pushes back on the
rendezvous and the executor, which pauses the process: see docs/flow-control.md).

Waiting: ``--timeout`` bounds the whole start, and within it we *wait* for an executor that is
known but not connected (restarting, or in its reconnect backoff) instead of failing at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThreadPool

from twisted_exec.cli import outcome, terminal, transfer
from twisted_exec.cli.errors import CliError, note
from twisted_exec.cli.safetext import escapeControl
from twisted_exec.cli.stdin import forwardStdin
from twisted_exec.harness.connection import HarnessConnection, connectHarness
from twisted_exec.harness.environment import connectEnvironment
from twisted_exec.harness.errors import CallError, ExecutorNotConnectedError, StreamError
from twisted_exec.harness.listing import listExecutors
from twisted_exec.harness.remote_process import RemoteProcess
from twisted_exec.harness.session import ExecSession

INTERRUPTED = outcome.INTERRUPTED
POLL_FIRST = 0.1
POLL_MAX = 1.0


class Deadline:
    """``--timeout`` seconds from the start, on the reactor's clock."""

    def __init__(self, reactor: Any, seconds: float) -> None:
        self.reactor = reactor
        self.seconds = seconds
        self.at = reactor.seconds() + seconds

    def left(self) -> float:
        return max(0.0, self.at - self.reactor.seconds())

    async def pause(self, delay: float) -> bool:
        """Sleep ``delay`` (capped by the deadline); False when no time is left to retry."""
        left = self.left()
        if left <= 0:
            return False
        await deferLater(self.reactor, min(delay, left), lambda: None)
        return True


async def runCommand(reactor: Any, args: argparse.Namespace, token: str | None) -> int:
    deadline = Deadline(reactor, args.timeout)
    if args.command == "ls-executors":
        return await lsExecutors(reactor, args, token)
    connection: HarnessConnection
    if getattr(args, "noise", False):
        if not args.executor_id:
            raise CliError("--noise needs the environment id: codex-exec --noise -e ID ...")
        connection = await connectEnvironment(
            reactor, args.rendezvous, args.executor_id, token, timeout=args.timeout
        )
    else:
        executorId = args.executor_id or await onlyExecutor(reactor, args, token, deadline)
        connection = await connectWaiting(reactor, args, executorId, token, deadline)
    try:
        session = await connection.openSession(
            clientName="codex-exec", waitForExecutor=deadline.left()
        )
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


async def onlyExecutor(
    reactor: Any, args: argparse.Namespace, token: str | None, deadline: Deadline
) -> str:
    """The one connected executor, waiting up to the deadline for one to connect."""
    delay = POLL_FIRST
    while True:
        executors = await listExecutors(reactor, args.rendezvous, token, timeout=args.timeout)
        connected = [e["executor_id"] for e in executors if e.get("connected")]
        if len(connected) == 1:
            return str(connected[0])
        if len(connected) > 1:
            raise CliError(
                f"{len(connected)} executors are connected ({', '.join(sorted(connected))}): "
                "choose one with --executor-id"
            )
        if not await deadline.pause(delay):
            raise CliError(
                f"no executor connected to the rendezvous at {args.rendezvous} within "
                f"{args.timeout:g} s (start one, or wait longer with --timeout)"
            )
        delay = min(delay * 2, POLL_MAX)


async def connectWaiting(
    reactor: Any, args: argparse.Namespace, executorId: str, token: str | None, deadline: Deadline
) -> HarnessConnection:
    """``connectHarness``, retried while the executor is known but not connected."""
    delay = POLL_FIRST
    while True:
        try:
            return await connectHarness(
                reactor, args.rendezvous, executorId, token, timeout=max(deadline.left(), 0.1)
            )
        except ExecutorNotConnectedError:
            if not await deadline.pause(delay):
                raise CliError(
                    f"executor {executorId!r} did not connect to the rendezvous at "
                    f"{args.rendezvous} within {args.timeout:g} s"
                ) from None
        delay = min(delay * 2, POLL_MAX)


def formatAge(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


async def lsExecutors(reactor: Any, args: argparse.Namespace, token: str | None) -> int:
    executors = await listExecutors(reactor, args.rendezvous, token, timeout=args.timeout)
    out = sys.stdout
    rows = [("EXECUTOR", "NAME", "STATE", "STREAMS", "CONNECTIONS", "AGE")]
    for e in executors:
        connected = bool(e.get("connected"))
        age = e.get("connected_seconds") if connected else e.get("disconnected_seconds")
        rows.append(
            (
                escapeControl(str(e.get("executor_id", "?"))),  # remote text
                escapeControl(str(e.get("name") or "-")),
                "connected" if connected else "disconnected",
                str(e.get("streams", 0)),
                str(e.get("harnesses", 0)),
                formatAge(age if isinstance(age, int | float) else None),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            + "\n"
        )
    out.flush()
    return 0


# -- run --------------------------------------------------------------------------------------


def exitStatus(code: int) -> int:
    """The executor reports -1 for a process killed by a signal; a shell status is 0..255."""
    return outcome.exitStatus(code)[0]


async def metadataOrNone(session: ExecSession, path: str) -> dict[str, Any] | None:
    try:
        return await session.getMetadata(path)
    except CallError:
        return None


async def defaultCwd(session: ExecSession) -> str:
    """The local working directory when the executor has it (one machine), else ``/``."""
    here = os.getcwd()
    meta = await metadataOrNone(session, here)
    return here if meta is not None and meta.get("isDirectory") else "/"


def _writer(stream: str) -> Any:
    return sys.stderr.buffer if stream == "stderr" else sys.stdout.buffer


def writeOutput(stream: str, data: bytes) -> None:
    out = _writer(stream)
    out.write(data)
    out.flush()


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


# -- files ------------------------------------------------------------------------------------


async def cat(reactor: Any, session: ExecSession, args: argparse.Namespace) -> int:
    for path in args.paths:
        remote = absolute(path)

        async def write(data: bytes) -> None:
            writeOutput("stdout", data)

        streamed = await pathCall(path, transfer.download(session, session.wirePath(remote), write))
        if not streamed:
            writeOutput("stdout", await pathCall(path, session.readFile(remote)))
    return 0


def absolute(path: str) -> str:
    if not path.startswith("/"):
        raise CliError(f"remote paths must be absolute, got {path!r}", 2)
    return path


async def pathCall(path: str, d: Any) -> Any:
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
        meta = await metadataOrNone(session, remote)
        size = meta.get("size") if meta is not None else None
        progress = transfer.Progress(
            reactor, os.path.basename(remote) or remote, size if isinstance(size, int) else None
        )
        if destination == "-":
            sink = LocalSink(reactor, None)
        else:
            target = destination
            if os.path.isdir(target):
                target = os.path.join(target, os.path.basename(remote))
            sink = LocalSink(reactor, target)
        done = False
        try:
            streamed = await pathCall(
                remote, transfer.download(session, session.wirePath(remote), sink.write, progress)
            )
            if not streamed:
                await sink.write(await pathCall(remote, session.readFile(remote)))
            done = True
        finally:
            await sink.close(done)
        progress.finish()
        return 0
    remote = absolute(destination[1:])
    if remote.endswith("/") or await isRemoteDirectory(session, remote):
        remote = remote.rstrip("/") + "/" + os.path.basename(source)
    reader = LocalSource(reactor, None if source == "-" else source)
    await reader.open()
    progress = transfer.Progress(reactor, os.path.basename(source) or source, reader.size)
    try:
        streamed = await pathCall(
            remote, transfer.upload(session, session.wirePath(remote), reader.read, progress)
        )
        if not streamed:
            data = await reader.readAll()
            await pathCall(remote, session.writeFile(remote, data))
    finally:
        await reader.close()
    progress.finish()
    return 0


async def isRemoteDirectory(session: ExecSession, path: str) -> bool:
    meta = await metadataOrNone(session, path)
    return bool(meta is not None and meta.get("isDirectory"))


def _inThread(reactor: Any, f: Callable[..., Any], *args: Any) -> Deferred[Any]:
    return deferToThreadPool(reactor, reactor.getThreadPool(), f, *args)


class LocalSink:
    """A local file (or stdout for None) written block by block off the reactor thread."""

    def __init__(self, reactor: Any, path: str | None) -> None:
        self.reactor = reactor
        self.path = path
        self._file: Any = None

    async def write(self, data: bytes) -> None:
        if self.path is None:
            writeOutput("stdout", data)
            return
        try:
            if self._file is None:
                self._file = await _inThread(self.reactor, open, self.path, "wb")
            await _inThread(self.reactor, self._file.write, data)
        except OSError as e:
            raise CliError(f"{self.path}: {e.strerror}", 1) from None

    async def close(self, completed: bool) -> None:
        if completed and self.path is not None and self._file is None:
            await self.write(b"")  # an empty file is still created
        if self._file is not None:
            f, self._file = self._file, None
            await _inThread(self.reactor, f.close)


class LocalSource:
    """A local file (or stdin for None) read block by block off the reactor thread."""

    def __init__(self, reactor: Any, path: str | None) -> None:
        self.reactor = reactor
        self.path = path
        self.size: int | None = None
        self._file: Any = None

    def _fail(self, e: OSError) -> CliError:
        return CliError(f"{self.path or '-'}: {e.strerror}", 1)

    async def open(self) -> None:
        if self.path is None:
            self._file = sys.stdin.buffer
            return
        try:
            self._file = await _inThread(self.reactor, open, self.path, "rb")
            self.size = os.fstat(self._file.fileno()).st_size
        except OSError as e:
            raise self._fail(e) from None

    async def read(self, size: int) -> bytes:
        try:
            data: bytes = await _inThread(self.reactor, self._file.read, size)
        except OSError as e:
            raise self._fail(e) from None
        return data

    async def readAll(self) -> bytes:
        chunks = []
        while chunk := await self.read(1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)

    async def close(self) -> None:
        if self.path is not None and self._file is not None:
            f, self._file = self._file, None
            await _inThread(self.reactor, f.close)


async def ls(reactor: Any, session: ExecSession, args: argparse.Namespace) -> int:
    path = absolute(args.path)
    entries = await pathCall(path, session.readDirectory(path))
    names = sorted(
        escapeControl(str(e["fileName"])) + ("/" if e.get("isDirectory") else "") for e in entries
    )
    writeOutput("stdout", "".join(f"{name}\n" for name in names).encode())
    return 0
