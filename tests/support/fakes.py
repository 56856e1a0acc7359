"""The executor's session resources as do-nothing stubs, for processor-level tests.

The processor, fuzz, flow-control and registry tests each carried a copy of these (an
``IProcessTable`` that starts nothing, an ``IHttpRequester`` that fetches nothing, the
``ISessionResources`` holding them); ``tests/test_interfaces.py`` checks them with
``verifyObject``, so a change to an interface shows up here once. Tests needing a behaviour
(a read that never answers, a write that fails) subclass them.
"""

from __future__ import annotations

from typing import Any

from zope.interface import implementer

from twisted_exec.executor.core.interfaces import IHttpRequester, IProcessTable, ISessionResources


@implementer(IProcessTable)
class StubProcesses:
    """Every call answers at once: started, no output yet, writes accepted, nothing running."""

    def __init__(self) -> None:
        self.killed = False

    def start(self, p: Any, dialect: Any = None) -> Any:
        return {"processId": p.processId}

    def interrupt(self, processId: str) -> None:
        pass

    def read(self, p: Any, dialect: Any = None) -> Any:
        return {"chunks": [], "nextSeq": 1, "exited": False, "exitCode": None, "closed": False}

    def write(self, p: Any, writeId: Any = None) -> Any:
        return {"status": "accepted"}

    def terminate(self, p: Any) -> Any:
        return {"running": False}

    def closeStdin(self, p: Any) -> Any:
        return {}

    def resize(self, p: Any) -> Any:
        return {}

    def pauseAll(self) -> None:
        pass

    def resumeAll(self) -> None:
        pass

    def killAll(self) -> None:
        self.killed = True


@implementer(IHttpRequester)
class StubHttp:
    """Every request is a 200 with no headers and no body."""

    def request(self, p: Any) -> Any:
        return {"status": 200, "headers": [], "body": None}

    def cancelAll(self) -> None:
        pass

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass


@implementer(ISessionResources)
class StubResources:
    """A session's resources (the ``SessionRegistry`` factory: one per session). ``close``
    records that it ran and kills the processes, as the real resources do."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.processes: Any = StubProcesses()
        self.http: Any = StubHttp()
        self.closed = False

    def close(self) -> None:
        self.closed = True
        if self.processes is not None:
            self.processes.killAll()

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass


class StubFilesystem:
    """Every filesystem method answers ``{}``."""

    def __getattr__(self, name: str) -> Any:
        return lambda p, **options: {}


class PathOnlyFilesystem:
    """Only ``fs/getMetadata``, answering with the path it was asked about."""

    def getMetadata(self, p: Any, withSize: bool = False) -> dict[str, Any]:
        return {"path": p.path}
