"""``codex-exec cat``, ``cp`` and ``ls``: remote files, block by block where the executor can.

Remote paths are absolute (``cp`` marks its remote side with ``:``); a failed call is one line
naming the path. Copies stream through ``fs/open`` blocks (:mod:`.transfer`) and fall back to one
``fs/readFile`` / ``fs/writeFile`` on executors without it.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from twisted_exec.cli import transfer
from twisted_exec.cli.errors import CliError
from twisted_exec.cli.local_io import LocalSink, LocalSource, writeOutput
from twisted_exec.cli.safetext import escapeControl
from twisted_exec.harness.errors import CallError
from twisted_exec.harness.session import ExecSession


async def metadataOrNone(session: ExecSession, path: str) -> dict[str, Any] | None:
    try:
        return await session.getMetadata(path)
    except CallError:
        return None


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


async def ls(reactor: Any, session: ExecSession, args: argparse.Namespace) -> int:
    path = absolute(args.path)
    entries = await pathCall(path, session.readDirectory(path))
    names = sorted(
        escapeControl(str(e["fileName"])) + ("/" if e.get("isDirectory") else "") for e in entries
    )
    writeOutput("stdout", "".join(f"{name}\n" for name in names).encode())
    return 0
