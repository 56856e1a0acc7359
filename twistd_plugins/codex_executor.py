"""twistd plugin: ``twistd -n codex-executor --listen ws://127.0.0.1:0``."""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService, IServiceMaker
from twisted.plugin import IPlugin
from zope.interface import implementer


@implementer(IServiceMaker, IPlugin)
class _ExecutorServiceMaker:
    tapname = "codex-executor"
    description = "A Codex exec-server executor (local websocket, stdio, or remote via a registry)."

    @property
    def options(self) -> Any:
        from twisted_exec.executor.options import ExecutorOptions

        return ExecutorOptions

    def makeService(self, options: Any) -> IService:
        from twisted_exec.executor.options import makeService

        return makeService(options)


codexExecutor = _ExecutorServiceMaker()  # noqa: N816 (twistd finds it by this name)
