"""The method registry: how a request picks its dialect, and capabilities from what is registered.

Pure: no sockets, no processes. The processor half drives an ``ExecProcessor`` with a fake
filesystem and a ``task.Clock``, so what is checked is only the dispatch and the sticky dialect.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import RecordingSink
from tests.support.fakes import StubResources
from twisted_exec.executor.core.dialect import Dialect
from twisted_exec.executor.core.processor import ExecProcessor
from twisted_exec.executor.core.session import SessionRegistry
from twisted_exec.executor.methods import (
    CAPABILITY_NAMES,
    Method,
    MethodRegistry,
    buildRegistry,
    pathDialect,
)


class PathDialectTests(SynchronousTestCase):
    def test_formOfThePathDecides(self) -> None:
        self.assertIs(pathDialect({"path": "/tmp"}), Dialect.V131)
        self.assertIs(pathDialect({"path": "file:///tmp"}), Dialect.V171)
        self.assertIs(pathDialect({"cwd": "file:/tmp"}), Dialect.V171)
        # a URL of another scheme is still the 0.171 form (0.171 answers it with its error)
        self.assertIs(pathDialect({"path": "http://x/"}), Dialect.V171)
        self.assertIs(
            pathDialect({"sourcePath": "/a", "destinationPath": "file:///b"}), Dialect.V131
        )

    def test_undecided(self) -> None:
        self.assertIsNone(pathDialect({"path": "relative"}))
        self.assertIsNone(pathDialect({"path": ""}))
        self.assertIsNone(pathDialect({"path": 5}))
        self.assertIsNone(pathDialect({"processId": "p"}))
        self.assertIsNone(pathDialect(None))
        self.assertIsNone(pathDialect(["/tmp"]))

    def test_fieldsOnlyTheNewDialectHas(self) -> None:
        self.assertIs(pathDialect({"processId": "p", "chunk": "", "writeId": "1"}), Dialect.V171)
        self.assertIs(pathDialect({"url": "http://x/", "redirectPolicy": "stop"}), Dialect.V171)
        headers = [{"name": "a", "value": "b", "valueEnvVar": "C"}]
        self.assertIs(pathDialect({"url": "http://x/", "headers": headers}), Dialect.V171)
        self.assertIsNone(pathDialect({"url": "http://x/", "headers": [{"name": "a"}]}))


def _method(name: str, dialect: Dialect, *provides: str) -> Method:
    return Method(name, dialect, lambda raw: raw, lambda ctx, p: {}, None, provides)


class RegistryTests(SynchronousTestCase):
    def test_resolve(self) -> None:
        registry = MethodRegistry()
        old, new = _method("x/y", Dialect.V131), _method("x/y", Dialect.V171)
        only = _method("only/new", Dialect.V171)
        for m in (old, new, only):
            registry.add(m)
        self.assertIs(registry.resolve("x/y", {"path": "/a"}, Dialect.V171), old)
        self.assertIs(registry.resolve("x/y", {"path": "file:///a"}, Dialect.V131), new)
        self.assertIs(registry.resolve("x/y", {}, Dialect.V131), old)
        self.assertIs(registry.resolve("x/y", {}, Dialect.V171), new)
        self.assertIs(registry.resolve("only/new", {"path": "/a"}, Dialect.V131), only)
        self.assertIsNone(registry.resolve("no/such", {}, Dialect.V171))

    def test_oneEntryPerDialect(self) -> None:
        registry = MethodRegistry()
        registry.add(_method("x/y", Dialect.V131))
        self.assertRaises(ValueError, registry.add, _method("x/y", Dialect.V131))

    def test_capabilitiesFollowRegistrations(self) -> None:
        registry = MethodRegistry()
        self.assertEqual(registry.capabilities(), dict.fromkeys(CAPABILITY_NAMES, False))
        registry.add(_method("fs/watchMissing", Dialect.V171, "fsWatchMissing"))
        registry.provide("fileWriteStreaming")
        caps = registry.capabilities()
        self.assertEqual(list(caps), list(CAPABILITY_NAMES))
        self.assertEqual(
            {k for k, v in caps.items() if v}, {"fsWatchMissing", "fileWriteStreaming"}
        )
        self.assertRaises(ValueError, registry.provide, "noSuchCapability")

    def test_theExecutorsTable(self) -> None:
        registry = buildRegistry()
        self.assertEqual(
            registry.names(Dialect.V131),
            [
                "fs/copy",
                "fs/createDirectory",
                "fs/getMetadata",
                "fs/readDirectory",
                "fs/readFile",
                "fs/remove",
                "fs/writeFile",
                "http/request",
                "initialize",
                "process/closeStdin",  # our extensions (docs/decisions.md)
                "process/read",
                "process/resize",
                "process/start",
                "process/terminate",
                "process/write",
            ],
        )
        v171 = set(registry.names(Dialect.V171))
        self.assertTrue(
            {
                "environment/info",
                "environment/status",
                "environmentConfig/read",
                "process/signal",
                "fs/getMetadata",
                "process/start",
            }
            <= v171
        )
        # honest: no sandbox, no network proxy, no credential masking, no discovery
        caps = registry.capabilities()
        self.assertTrue(caps["environmentConfigRead"])
        self.assertTrue(caps["httpHeaderEnvVars"])
        for name in (
            "networkProxyLaunch",
            "credentialMasking",
            "capabilityDiscoveryV2",
            "capabilityDiscoverySandbox",
            "sandboxedFileStreaming",
            "shellSnapshotV2",
        ):
            self.assertFalse(caps[name], name)


class _Resources(StubResources):
    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self.processes = None
        self.http = None


class _FileSystem:
    def getMetadata(self, p: Any, withSize: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = {"isDirectory": True, "isFile": False, "isSymlink": False}
        if withSize:
            result["size"] = 7
        result.update(createdAtMs=0, modifiedAtMs=1)
        return result


class StickyDialectTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.sessions = SessionRegistry(Clock(), _Resources, ttl=10.0)
        self.processor = ExecProcessor(self.sessions, _FileSystem(), "ctx", methods=buildRegistry())
        self.sink = RecordingSink()
        self.processor.makeConnection(self.sink)

    def ask(self, method: str, params: Any, id: int) -> Any:
        self.processor.messageReceived(
            json.dumps({"id": id, "method": method, "params": params}).encode()
        )
        return self.sink.messages[-1]

    def test_aSessionThatUsedUrisGets171Answers(self) -> None:
        init = self.ask("initialize", {"clientName": "t"}, 1)
        self.assertEqual(list(init["result"]), ["sessionId"])
        self.processor.messageReceived(b'{"method":"initialized"}')
        # no path decides, the session is still 0.131: 0.131's serde wording
        self.assertEqual(
            self.ask("process/read", {"processId": 5}, 2)["error"]["message"],
            "invalid type: integer `5`, expected a string",
        )
        self.assertEqual(
            self.ask("fs/getMetadata", {"path": "/x"}, 3)["result"],
            {
                "isDirectory": True,
                "isFile": False,
                "isSymlink": False,
                "createdAtMs": 0,
                "modifiedAtMs": 1,
            },
        )
        self.assertIs(self.processor.dialect, Dialect.V131)
        meta = self.ask("fs/getMetadata", {"path": "file:///x"}, 4)["result"]
        self.assertEqual(
            list(meta),
            ["isDirectory", "isFile", "isSymlink", "size", "createdAtMs", "modifiedAtMs"],
        )
        self.assertIs(self.processor.dialect, Dialect.V171)
        assert self.processor.session is not None
        self.assertIs(self.processor.session.dialect, Dialect.V171)
        # sticky: 0.171's wording now, where no path decides
        self.assertEqual(
            self.ask("process/read", {"processId": 5}, 5)["error"]["message"],
            "invalid type: number, expected a string",
        )
        # a bare path still gets the 0.131 answer (the form of the request decides first)
        self.assertNotIn("size", self.ask("fs/getMetadata", {"path": "/x"}, 6)["result"])

    def test_newOnlyMethodMakesTheSessionNew(self) -> None:
        self.ask("initialize", {"clientName": "t"}, 1)
        self.processor.messageReceived(b'{"method":"initialized"}')
        self.assertEqual(
            self.ask("environment/status", None, 2), {"id": 2, "result": {"status": "ready"}}
        )
        self.assertIs(self.processor.dialect, Dialect.V171)

    def test_relativePathAnsweredInTheSessionsDialect(self) -> None:
        self.assertEqual(
            self.ask("fs/getMetadata", {"path": "rel"}, 1)["error"]["message"],
            "AbsolutePathBuf deserialized without a base path",
        )
        self.ask("fs/getMetadata", {"path": "file:///x"}, 2)
        self.assertEqual(
            self.ask("fs/getMetadata", {"path": "rel"}, 3)["error"],
            {"code": -32602, "message": "invalid URI: relative URL without a base"},
        )
