"""The ``codex-exec`` commands, each an ``async`` function returning the exit status: connecting
(and waiting for an executor) and ``ls-executors`` here, ``run`` in :mod:`.run_command`, ``cat``,
``cp`` and ``ls`` in :mod:`.file_commands`.

Output is written to our stdout synchronously, on purpose: the CLI serves one user, and a
terminal or pipe that reads slowly should slow the stream down (TCP then pushes back on the
rendezvous and the executor, which pauses the process: see docs/flow-control.md).

Waiting: ``--timeout`` bounds the whole start, and within it we *wait* for an executor that is
known but not connected (restarting, or in its reconnect backoff) instead of failing at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from twisted.internet.task import deferLater

from twisted_exec.cli.errors import CliError
from twisted_exec.cli.file_commands import cat, cp, ls
from twisted_exec.cli.run_command import run
from twisted_exec.cli.safetext import escapeControl
from twisted_exec.harness.connection import HarnessConnection, connectHarness
from twisted_exec.harness.environment import connectEnvironment
from twisted_exec.harness.errors import ExecutorNotConnectedError
from twisted_exec.harness.listing import listExecutors

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
