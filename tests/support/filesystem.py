"""fs/* test set-up: the reference's error replies, and a test case that runs each call
through a :class:`~.FileSystem` on a private (recording) thread pool in a fresh directory.

Every expected dict and message was observed on the reference binary (Codex CLI 0.131.0).
"""

from __future__ import annotations

import os
import threading
from typing import Any, cast

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorThreads
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import TestCase

from twisted_exec.compat import params
from twisted_exec.executor.resources.filesystem import MAX_READ_FILE_BYTES, FileSystem
from twisted_exec.wire.errors import RpcError

NOENT = {"code": -32004, "message": "No such file or directory (os error 2)"}
ISDIR = {"code": -32603, "message": "Is a directory (os error 21)"}
NOTDIR = {"code": -32603, "message": "Not a directory (os error 20)"}
EXIST = {"code": -32603, "message": "File exists (os error 17)"}
NOTEMPTY = {"code": -32603, "message": "Directory not empty (os error 39)"}
LOOP = {"code": -32603, "message": "Symbolic link loop (os error 40)"}
BAD_BASE64 = "fs/writeFile requires valid base64 dataBase64: "
NUL = {"code": -32600, "message": "file name contained an unexpected NUL byte"}
COPY_NEEDS_RECURSIVE = {
    "code": -32600,
    "message": "fs/copy requires recursive: true when sourcePath is a directory",
}
COPY_INTO_ITSELF = {
    "code": -32600,
    "message": "fs/copy cannot copy a directory to itself or one of its descendants",
}
COPY_SPECIAL = {
    "code": -32600,
    "message": "fs/copy only supports regular files, directories, and symlinks",
}

REACTOR = cast(IReactorThreads, reactor)

PARAMS: dict[str, Any] = {
    "readFile": params.FsReadFileParams,
    "writeFile": params.FsWriteFileParams,
    "createDirectory": params.FsCreateDirectoryParams,
    "getMetadata": params.FsGetMetadataParams,
    "readDirectory": params.FsReadDirectoryParams,
    "remove": params.FsRemoveParams,
    "copy": params.FsCopyParams,
}


class RecordingThreadPool(ThreadPool):
    """A real pool that remembers which threads ran our work."""

    def __init__(self) -> None:
        super().__init__(minthreads=1, maxthreads=2, name="fs-test")
        self.workerThreads: list[threading.Thread] = []

    def callInThreadWithCallback(self, onResult: Any, func: Any, *args: Any, **kw: Any) -> None:
        def recorded(*a: Any, **k: Any) -> Any:
            self.workerThreads.append(threading.current_thread())
            return func(*a, **k)

        super().callInThreadWithCallback(onResult, recorded, *args, **kw)


class FsTestCase(TestCase):
    """Runs each call through a FileSystem on a private thread pool, in a fresh directory."""

    maxReadBytes: int | None = MAX_READ_FILE_BYTES

    def setUp(self) -> None:
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(self.root)
        self.pool = RecordingThreadPool()
        self.pool.start()
        self.addCleanup(self.pool.stop)
        self.fs = FileSystem(REACTOR, self.pool, maxReadBytes=self.maxReadBytes)

    def path(self, *names: str) -> str:
        return os.path.join(self.root, *names)

    def make(self, name: str, content: bytes = b"") -> str:
        path = self.path(name)
        with open(path, "wb") as f:
            f.write(content)
        return path

    async def call(self, method: str, **raw: Any) -> dict[str, Any]:
        """The reply the processor would send: ``{"result": ...}`` or ``{"error": ...}``."""
        decoded: Any = params.parse(PARAMS[method], raw)
        d: Deferred[dict[str, Any]] = getattr(self.fs, method)(decoded)
        d.addTimeout(30, reactor)
        try:
            return {"result": await d}
        except RpcError as e:
            return {"error": {"code": e.code, "message": e.message}}

    async def ok(self, method: str, **raw: Any) -> dict[str, Any]:
        reply = await self.call(method, **raw)
        self.assertIn("result", reply, reply)
        return reply["result"]  # type: ignore[no-any-return]

    async def err(self, method: str, **raw: Any) -> dict[str, Any]:
        reply = await self.call(method, **raw)
        self.assertIn("error", reply, reply)
        return reply["error"]  # type: ignore[no-any-return]
