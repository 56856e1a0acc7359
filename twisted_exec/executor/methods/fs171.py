"""The fs methods only Codex 0.171 has: handles, walk, canonicalize, watchMissing; and
``fs/getMetadata``'s ``followSymlinks``.

``fs/open``, ``fs/readBlock``, ``fs/writeBlock``, ``fs/close``, ``fs/walk``, ``fs/canonicalize``
and ``fs/watchMissing`` (with its ``fs/missingChanged`` notification) exist in the 0.171 dialect
only; their params are decoded by ``compat/fsparams171`` and their resources live in
``executor/resources/fs_*``. The 0.171 ``fs/getMetadata`` keeps the dialect's params
(``methods/fs.GetMetadata171``) and answers through ``resources/fs_metadata`` so that
``followSymlinks: false`` is honoured. The facts they follow are in docs/reference-0.171-fs.md.

Handles and the watch belong to the **connection** (the reference's rule): each processor gets
its own :class:`FileHandleTable` and :class:`MissingWatcher` on first use
(``ctx.connectionResource``), closed when the connection ends; the inotify hub and the offload
pool are the executor's (:class:`FsStreams`).

Capabilities: ``fileWriteStreaming`` (``mode: "replace"`` and ``fs/writeBlock``) and
``fsWatchMissing`` come with these methods; ``sandboxedFileStreaming`` stays false (there is no
sandbox here).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from twisted_exec.compat import fsparams171 as p
from twisted_exec.compat.fileuri import FileUri, fromHostPath
from twisted_exec.compat.record import replace
from twisted_exec.executor.core.dialect import Dialect
from twisted_exec.executor.methods.fs import GetMetadata171, hostPath
from twisted_exec.executor.methods.registry import Method, MethodRegistry
from twisted_exec.executor.resources.fs_blocking import BlockingRunner, CallInThread
from twisted_exec.executor.resources.fs_handles import FileHandleTable, checkHandleId
from twisted_exec.executor.resources.fs_inotify import InotifyHub
from twisted_exec.executor.resources.fs_metadata import canonicalize, getMetadata171
from twisted_exec.executor.resources.fs_walk import checkLimits, walk
from twisted_exec.executor.resources.fs_watch import MissingWatcher
from twisted_exec.wire.errors import RpcError

FS = "filesystem"
HANDLES_KEY = "fs171.handles"
WATCHER_KEY = "fs171.watcher"


class FsStreams:
    """What every connection's 0.171 fs state shares: the reactor, the offload pool, inotify."""

    def __init__(self, reactor: Any, pool: CallInThread, hub: InotifyHub | None = None) -> None:
        self.reactor = reactor
        self.pool = pool
        self.hub = hub if hub is not None else InotifyHub(reactor)
        self.blocking = BlockingRunner(reactor, pool)

    def handles(self, ctx: Any) -> FileHandleTable:
        """The connection's handle table (``ctx`` is its processor)."""
        return ctx.connectionResource(  # type: ignore[no-any-return]
            HANDLES_KEY, lambda: FileHandleTable(self.reactor, self.pool)
        )

    def watcher(self, ctx: Any) -> MissingWatcher:
        """The connection's watch; its notification goes to that connection only."""
        return ctx.connectionResource(  # type: ignore[no-any-return]
            WATCHER_KEY, lambda: MissingWatcher(self.reactor, self.pool, self.hub, ctx.notify)
        )

    def close(self) -> None:
        self.hub.close()

    # -- handlers ---------------------------------------------------------------------------

    def open(self, ctx: Any, params: p.FsOpenParams) -> Deferred[dict[str, Any]]:
        checkHandleId(params.handleId)  # before the path's form, as the reference
        assert isinstance(params.path, FileUri)
        local = replace(params, path=hostPath(params.path))
        return self.handles(ctx).open(local)

    def readBlock(self, ctx: Any, params: p.FsReadBlockParams) -> Deferred[dict[str, Any]]:
        return self.handles(ctx).readBlock(params)

    def writeBlock(self, ctx: Any, params: p.FsWriteBlockParams) -> Deferred[dict[str, Any]]:
        return self.handles(ctx).writeBlock(params)

    def closeHandle(self, ctx: Any, params: p.FsCloseParams) -> Deferred[dict[str, Any]]:
        return self.handles(ctx).closeHandle(params)

    def walk(self, ctx: Any, params: p.FsWalkParams) -> Deferred[dict[str, Any]]:
        checkLimits(params.options)  # before the root is looked at, as the reference
        return self.blocking.run(walk, hostPath(params.path), params.options, fromHostPath)

    def canonicalize(self, ctx: Any, params: p.FsCanonicalizeParams) -> Deferred[dict[str, Any]]:
        d = self.blocking.run(canonicalize, hostPath(params.path))
        return d.addCallback(lambda resolved: {"path": fromHostPath(resolved)})

    def getMetadata(self, ctx: Any, params: GetMetadata171) -> Deferred[dict[str, Any]]:
        path = hostPath(params.path)
        return self.blocking.runQuick(getMetadata171, path, params.followSymlinks)

    def watchMissing(self, ctx: Any, params: p.FsWatchMissingParams) -> Deferred[dict[str, Any]]:
        try:
            missing = [hostPath(uri) for uri in params.missing]
            present = None if params.present is None else hostPath(params.present)
        except RpcError:  # a foreign (Windows) URI: "not watching", as the reference answers
            missing, present = [], None
        return self.watcher(ctx).watch(params.watchId, missing, present)


#: (method, params type, handler name, capabilities it provides)
METHODS: tuple[tuple[str, type[Any], str, tuple[str, ...]], ...] = (
    ("fs/open", p.FsOpenParams, "open", ("fileWriteStreaming",)),
    ("fs/readBlock", p.FsReadBlockParams, "readBlock", ()),
    ("fs/writeBlock", p.FsWriteBlockParams, "writeBlock", ("fileWriteStreaming",)),
    ("fs/close", p.FsCloseParams, "closeHandle", ()),
    ("fs/walk", p.FsWalkParams, "walk", ()),
    ("fs/canonicalize", p.FsCanonicalizeParams, "canonicalize", ()),
    ("fs/watchMissing", p.FsWatchMissingParams, "watchMissing", ("fsWatchMissing",)),
)


def register(registry: MethodRegistry, streams: FsStreams) -> None:
    """Add the 0.171-only fs methods, and the 0.171 ``fs/getMetadata`` (``followSymlinks``)."""
    for name, paramsType, handler, provides in METHODS:
        call = getattr(streams, handler)
        registry.add(
            Method(name, Dialect.V171, paramsType.fromJson, call, FS, provides)  # type: ignore[attr-defined]
        )
    existing = registry.get("fs/getMetadata", Dialect.V171)
    decode = existing.decode if existing is not None else GetMetadata171.fromJson  # type: ignore[attr-defined]
    registry.replace(Method("fs/getMetadata", Dialect.V171, decode, streams.getMetadata, FS))


__all__ = ["METHODS", "FsStreams", "register"]
