"""The 0.171 dialect over a real loopback websocket, with real processes, files and HTTP.

Each test opens a websocket to an in-process ``LocalWebSocketService`` and asserts the exact JSON
of the replies and notifications, errors included, as the Codex 0.171.0 binary answered the same
requests when probed (the messages are copied from its answers). One executor serves both
dialects: the last test runs a 0.131 session beside a 0.171 one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import socket
from importlib.metadata import version
from pathlib import Path
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from tests.support.local import serveOnLoopback
from twisted_exec.compat.fileuri import fromHostPath
from twisted_exec.executor.methods.registry import CAPABILITY_NAMES
from twisted_exec.executor.service import ExecutorService
from twisted_exec.testing.wsclient import JsonRpcClient, JsonRpcError, connectJsonRpc

TIMEOUT = 10.0
UUID = "0199a213-81c0-7800-8aa1-bbab2a035a53"


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


class _Web(Resource):
    """``/redir`` answers 302 to ``/echo``; ``/echo`` answers the request's headers as JSON."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        if request.path == b"/redir":
            request.setResponseCode(302)
            request.setHeader(b"location", b"/echo")
            return b"moo"
        headers = {
            k.decode().lower(): v[0].decode() for k, v in request.requestHeaders.getAllRawHeaders()
        }
        return json.dumps(headers, sort_keys=True).encode()


class DialectIntegrationTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.base = Path(self.mktemp()).resolve()
        self.base.mkdir(parents=True)
        self.home = self.base / "codex-home"
        self.home.mkdir()
        self.environ = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.base),
            "CODEX_HOME": str(self.home),
            "E2E_SECRET": "s3cret",
        }
        top = ExecutorService(reactor, ttl=10.0, environ=self.environ)
        self.top, self.local = serveOnLoopback(self, top)

    def uri(self, *parts: str) -> str:
        return fromHostPath(str(self.base.joinpath(*parts)))

    async def connect(self, handshake: bool = True) -> JsonRpcClient:
        assert self.local.url is not None
        client = await connectJsonRpc(reactor, self.local.url)
        self.addCleanup(lambda: client.close() if not client.closed.called else None)
        if handshake:
            await client.handshake()
        return client

    async def ask(self, client: JsonRpcClient, method: str, params: Any = None) -> Any:
        """The whole reply (result or error) to one request."""
        requestId = client.nextId
        with contextlib.suppress(JsonRpcError):
            await client.call(method, params).addTimeout(TIMEOUT, reactor)
        return next(
            m for m in reversed(client.messages) if m.get("id") == requestId and "method" not in m
        )

    async def until(self, client: JsonRpcClient, method: str, processId: str) -> Any:
        """Notifications up to ``method`` of ``processId`` (inclusive)."""
        seen = []
        while True:
            note = await client.nextNotification().addTimeout(TIMEOUT, reactor)
            seen.append(note)
            if note.get("method") == method and note["params"].get("processId") == processId:
                return seen

    def run_(self, coroutine: Any) -> Deferred[None]:
        return ensureDeferred(coroutine)

    # -- environment ----------------------------------------------------------------------------

    def test_environmentInfoAndStatus(self) -> Deferred[None]:
        async def go() -> None:
            client = await self.connect(handshake=False)
            self.assertEqual(
                await self.ask(client, "environment/info"),
                {
                    "error": {
                        "code": -32600,
                        "message": "client must call initialize before using environment info"
                        " methods",
                    },
                    "id": 1,
                },
            )
            init = await self.ask(
                client, "initialize", {"clientName": "codex-environment", "resumeSessionId": None}
            )
            self.assertEqual(list(init["result"]), ["sessionId"])
            self.assertEqual(
                (await self.ask(client, "environment/status"))["error"]["message"],
                "client must send initialized before using environment status methods",
            )
            client.send({"method": "initialized", "params": {}})
            shellPath = pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"
            provider = hashlib.sha256(
                f"twisted-exec {version('twisted-exec')}".encode()
            ).hexdigest()
            expected = {
                "shell": {"name": os.path.basename(shellPath), "path": shellPath},
                "executorVersion": "0.171.0",
                "providerId": f"sha256:{provider}",
                "cwd": fromHostPath(os.getcwd()),
                "userHomeDir": fromHostPath(str(self.base)),
                "platformOs": "linux",
                "prependPathDirs": [],
                "temporaryDirectories": [],
                "tempDir": "file:///tmp",
                "capabilities": {
                    name: name
                    in (
                        "environmentConfigRead",
                        "httpHeaderEnvVars",
                        "fsWatchMissing",  # methods/fs171
                        "fileWriteStreaming",
                    )
                    for name in CAPABILITY_NAMES
                },
            }
            info = await self.ask(client, "environment/info")
            self.assertEqual(info, {"id": 4, "result": expected})
            self.assertEqual(list(info["result"]), list(expected))  # 0.171's key order
            self.assertEqual((await self.ask(client, "environment/info", {}))["result"], expected)
            self.assertEqual(
                await self.ask(client, "environment/status"),
                {"id": 6, "result": {"status": "ready"}},
            )
            self.assertEqual(
                await self.ask(client, "environment/status", {"x": 1}),
                {"error": {"code": -32602, "message": "invalid type: map, expected unit"}, "id": 7},
            )
            self.assertEqual(
                (await self.ask(client, "environment/info", 5))["error"]["message"],
                "invalid type: number, expected unit",
            )
            self.assertEqual(
                await self.ask(client, "capabilities/discoverV2", {"cwd": self.uri()}),
                {
                    "error": {
                        "code": -32601,
                        "message": "exec-server stub does not implement"
                        " `capabilities/discoverV2` yet",
                    },
                    "id": 9,
                },
            )

        return self.run_(go())

    def test_environmentConfigRead(self) -> Deferred[None]:
        (self.home / "config.toml").write_text(
            'model = "x"\n"we ird" = { a = 1, "b c" = "q\\"uote" }\narr = [1, 2.5, true, "s"]\n'
            '[[tools]]\nname = "t1"\n[[tools]]\nname = "t2"\n[mcp_servers.x]\nenv = { K = "V" }\n'
            "d = 1979-05-27T07:32:00Z\n"
        )

        async def go() -> None:
            client = await self.connect()
            home = fromHostPath(str(self.home))
            paths = [["model"], ["we ird"], ["arr"], ["tools"], ["mcp_servers"]]
            reply = await self.ask(
                client,
                "environmentConfig/read",
                {"cwd": self.uri(), "configPaths": paths, "requirementsPaths": [["x"]]},
            )
            # the reference's re-serialisation of the same file, byte for byte
            toml = (
                'model = "x"\narr = [1, 2.5, true, "s"]\n\n["we ird"]\na = 1\n'
                '"b c" = \'q"uote\'\n\n'
                '[[tools]]\nname = "t1"\n\n[[tools]]\nname = "t2"\n\n[mcp_servers.x]\n'
                'd = 1979-05-27T07:32:00Z\n\n[mcp_servers.x.env]\nK = "V"\n'
            )
            self.assertEqual(
                reply["result"],
                {
                    "userHomeDir": fromHostPath(str(self.base)),
                    "codexHomeDir": home,
                    "hostname": socket.gethostname(),
                    "config": {
                        "layers": [
                            {
                                "baseDir": home,
                                "source": f"user ({self.home}/config.toml)",
                                "toml": toml,
                            }
                        ],
                        "cloudInsertionIndex": 0,
                    },
                    "requirements": {"layers": [], "cloudInsertionIndex": 0},
                },
            )
            nothing = await self.ask(
                client,
                "environmentConfig/read",
                {"cwd": self.uri(), "configPaths": [["nothing"]], "requirementsPaths": []},
            )
            self.assertEqual(nothing["result"]["config"]["layers"], [])
            one = await self.ask(
                client,
                "environmentConfig/read",
                {"cwd": self.uri(), "configPaths": [["model", "sub"]], "requirementsPaths": []},
            )
            self.assertEqual(one["result"]["config"]["layers"][0]["toml"], 'model = "x"\n')
            errors = [
                (
                    {"cwd": self.uri(), "configPaths": [], "requirementsPaths": []},
                    "at least one config or requirements path is required",
                ),
                (
                    {"cwd": self.uri(), "configPaths": [[]], "requirementsPaths": []},
                    "TOML paths must contain at least one key segment",
                ),
                (
                    {"cwd": "/x", "configPaths": [], "requirementsPaths": []},
                    "invalid URI: relative URL without a base",
                ),
                ({"cwd": self.uri()}, "missing field `configPaths`"),
                (
                    {"cwd": self.uri(), "configPaths": "x", "requirementsPaths": []},
                    'invalid type: string "x", expected a sequence',
                ),
                (None, "invalid type: null, expected struct EnvironmentConfigReadParams"),
            ]
            for params, message in errors:
                reply = await self.ask(client, "environmentConfig/read", params)
                self.assertEqual(reply["error"], {"code": -32602, "message": message}, params)

        return self.run_(go())

    # -- processes ------------------------------------------------------------------------------

    def test_processStartFieldsAndErrors(self) -> Deferred[None]:
        async def go() -> None:
            client = await self.connect()
            start = {
                "processId": "p4",
                "metadata": {"threadId": UUID, "toolCallId": "t"},
                "argv": ["true"],
                "cwd": self.uri(),
                "env": {},
                "tty": False,
                "sandbox": None,
                "enforceManagedNetwork": False,
                "managedNetwork": None,
                "shellSnapshot": None,
                "networkProxy": None,
            }
            self.assertEqual(
                await self.ask(client, "process/start", start),
                {"id": 2, "result": {"processId": "p4", "sandboxType": "none"}},
            )
            notes = await self.until(client, "process/closed", "p4")
            self.assertEqual(
                notes,
                [
                    {
                        "method": "process/exited",
                        "params": {
                            "processId": "p4",
                            "seq": 1,
                            "exitCode": 0,
                            "sandboxDenied": False,
                        },
                    },
                    {"method": "process/closed", "params": {"processId": "p4", "seq": 2}},
                ],
            )
            base = {"argv": ["true"], "cwd": self.uri(), "env": {}, "tty": False}
            cases: list[tuple[dict[str, Any], dict[str, Any]]] = [
                (
                    {"metadata": {"threadId": "nope"}},
                    {
                        "code": -32602,
                        "message": "invalid character: expected an optional prefix of"
                        " `urn:uuid:` followed by [0-9a-fA-F-], found `n` at 1",
                    },
                ),
                (
                    {"metadata": {"threadId": ""}},
                    {
                        "code": -32602,
                        "message": "invalid length: expected length 32 for simple format, found 0",
                    },
                ),
                (
                    {"metadata": {"threadId": "01a23ccf-9f04-77e3-a655"}},
                    {"code": -32602, "message": "invalid group count: expected 5, found 4"},
                ),
                (
                    {"metadata": {"threadId": "01a23ccf-9f04-77e3-a65-b4e942ddc1aaa"}},
                    {
                        "code": -32602,
                        "message": "invalid group length in group 3: expected 4, found 3",
                    },
                ),
                (
                    {"metadata": 5},
                    {
                        "code": -32602,
                        "message": "invalid type: number, expected struct ExecMetadata",
                    },
                ),
                ({"sandbox": {}}, {"code": -32602, "message": "missing field `permissions`"}),
                (
                    {"enforceManagedNetwork": None},
                    {"code": -32602, "message": "invalid type: null, expected a boolean"},
                ),
                ({"shellSnapshot": {}}, {"code": -32602, "message": "missing field `scopeId`"}),
                ({"networkProxy": {}}, {"code": -32602, "message": "missing field `proxy`"}),
                (
                    {"managedNetwork": 5},
                    {
                        "code": -32602,
                        "message": "invalid type: number, expected struct"
                        " ManagedNetworkSandboxContext",
                    },
                ),
                (
                    {"cwd": "relative/dir"},
                    {"code": -32602, "message": "invalid URI: relative URL without a base"},
                ),
                (
                    {"cwd": "file://host/x"},
                    {
                        "code": -32602,
                        "message": "cwd URI `file://host/x` is not valid on this exec-server host:"
                        " 'file://host/x' is invalid on 'linux'",
                    },
                ),
                (
                    {"cwd": self.uri("missing")},
                    {
                        "code": -32603,
                        "data": {"kind": "spawnNotFound"},
                        "message": "No such file or directory (os error 2)",
                    },
                ),
                (
                    {"argv": ["/nonexistent"]},
                    {
                        "code": -32603,
                        "data": {"kind": "spawnNotFound"},
                        "message": "No such file or directory (os error 2)",
                    },
                ),
                ({"argv": []}, {"code": -32602, "message": "argv must not be empty"}),
                (
                    {"argv": ["true"], "cwd": 5},
                    {"code": -32602, "message": "invalid type: number, expected a string"},
                ),
            ]
            for index, (change, error) in enumerate(cases):
                reply = await self.ask(
                    client, "process/start", {"processId": f"e{index}", **base, **change}
                )
                self.assertEqual(reply.get("error"), error, change)
            self.assertEqual(
                (await self.ask(client, "process/start", []))["error"]["message"],
                "invalid length 0, expected struct WireExecParams with 14 elements",
            )

        return self.run_(go())

    def test_signalTerminateAndExitCodes(self) -> Deferred[None]:
        async def go() -> None:
            client = await self.connect()
            common = {"cwd": self.uri(), "env": {}, "tty": False}
            await self.ask(
                client, "process/start", {"processId": "s1", "argv": ["sleep", "30"], **common}
            )
            self.assertEqual(
                await self.ask(
                    client, "process/signal", {"processId": "s1", "signal": "interrupt"}
                ),
                {"id": 3, "result": {}},
            )
            notes = await self.until(client, "process/closed", "s1")
            self.assertEqual(
                notes[0]["params"],
                {"processId": "s1", "seq": 1, "exitCode": 130, "sandboxDenied": False},
            )
            self.assertEqual(
                await self.ask(
                    client, "process/signal", {"processId": "nope", "signal": "interrupt"}
                ),
                {"id": 4, "result": {}},
            )
            self.assertEqual(
                (await self.ask(client, "process/signal", {"processId": "s1", "signal": "kill"}))[
                    "error"
                ],
                {"code": -32602, "message": "unknown variant `kill`, expected `interrupt`"},
            )
            self.assertEqual(
                (await self.ask(client, "process/signal", {"processId": "s1"}))["error"]["message"],
                "missing field `signal`",
            )
            await self.ask(
                client,
                "process/start",
                {"processId": "c1", "argv": ["cat"], **common, "pipeStdin": True},
            )
            self.assertEqual(
                await self.ask(client, "process/terminate", {"processId": "c1"}),
                {"id": 8, "result": {"running": True}},
            )
            notes = await self.until(client, "process/closed", "c1")
            self.assertEqual(notes[0]["params"]["exitCode"], 137)
            await self.ask(
                client,
                "process/start",
                {"processId": "k2", "argv": ["sh", "-c", "kill -TERM $$"], **common},
            )
            notes = await self.until(client, "process/closed", "k2")
            self.assertEqual(
                notes[0]["params"],
                {"processId": "k2", "seq": 1, "exitCode": 143, "sandboxDenied": False},
            )

        return self.run_(go())

    def test_writeIdDeduplicatedAndRead(self) -> Deferred[None]:
        async def go() -> None:
            client = await self.connect()
            await self.ask(
                client,
                "process/start",
                {
                    "processId": "c1",
                    "argv": ["cat"],
                    "cwd": self.uri(),
                    "env": {},
                    "tty": False,
                    "pipeStdin": True,
                },
            )
            for chunk, writeId in (("one\n", "w1"), ("two\n", "w1"), ("three\n", "w2")):
                reply = await self.ask(
                    client,
                    "process/write",
                    {"processId": "c1", "chunk": _b64(chunk), "writeId": writeId},
                )
                self.assertEqual(reply["result"], {"status": "accepted"})
            self.assertEqual(
                (await self.ask(client, "process/write", {"processId": "c1", "chunk": ""}))[
                    "error"
                ],
                {"code": -32602, "message": "missing field `writeId`"},
            )
            self.assertEqual(
                (
                    await self.ask(
                        client, "process/write", {"processId": "x", "chunk": "", "writeId": "w"}
                    )
                )["result"],
                {"status": "unknownProcess"},
            )
            output = b""
            while output != b"one\nthree\n":
                note = await client.nextNotification().addTimeout(TIMEOUT, reactor)
                import base64

                output += base64.b64decode(note["params"]["chunk"])
            await self.ask(client, "process/terminate", {"processId": "c1"})
            await self.until(client, "process/closed", "c1")
            read = await self.ask(client, "process/read", {"processId": "c1"})
            chunks = read["result"].pop("chunks")
            self.assertEqual(
                b"".join(__import__("base64").b64decode(c["chunk"]) for c in chunks),
                b"one\nthree\n",
            )
            last = chunks[-1]["seq"]
            self.assertEqual(
                read["result"],
                {
                    "nextSeq": last + 3,
                    "exited": True,
                    "exitCode": 137,
                    "closed": True,
                    "failure": None,
                    "sandboxDenied": False,
                },
            )
            self.assertEqual(
                (
                    await self.ask(
                        client, "process/write", {"processId": "c1", "chunk": "", "writeId": "w9"}
                    )
                )["error"],
                {"code": -32603, "message": "failed to write to process stdin"},
            )
            self.assertEqual(
                (await self.ask(client, "process/read", {"processId": "c1", "afterSeq": -1}))[
                    "error"
                ],
                {"code": -32602, "message": "invalid number"},
            )

        return self.run_(go())

    # -- files ----------------------------------------------------------------------------------

    def test_fsWithUris(self) -> Deferred[None]:
        (self.base / "a b.txt").write_text("hello")
        (self.base / "dir").mkdir()

        async def go() -> None:
            client = await self.connect()
            meta = await self.ask(
                client, "fs/getMetadata", {"path": self.uri("a b.txt"), "sandbox": None}
            )
            self.assertEqual(self.uri("a b.txt"), self.uri() + "/a%20b.txt")
            result = meta["result"]
            self.assertEqual(
                list(result),
                ["isDirectory", "isFile", "isSymlink", "size", "createdAtMs", "modifiedAtMs"],
            )
            self.assertEqual(
                (result["isFile"], result["size"], result["createdAtMs"]), (True, 5, 0)
            )
            self.assertEqual(
                (await self.ask(client, "fs/readFile", {"path": self.uri("a b.txt")}))["result"],
                {"dataBase64": _b64("hello")},
            )
            self.assertEqual(
                (await self.ask(client, "fs/readFile", {"path": self.uri("dir")}))["error"],
                {"code": -32600, "message": f"path `{self.base}/dir` is not a file"},
            )
            write = await self.ask(
                client, "fs/writeFile", {"path": self.uri("new.txt"), "dataBase64": _b64("x")}
            )
            self.assertEqual(write["result"], {})
            self.assertEqual((self.base / "new.txt").read_text(), "x")
            self.assertEqual(
                (await self.ask(client, "fs/readDirectory", {"path": self.uri("dir")}))["result"],
                {"entries": []},
            )
            copy = await self.ask(
                client,
                "fs/copy",
                {
                    "sourcePath": self.uri("new.txt"),
                    "destinationPath": self.uri("dir", "c.txt"),
                    "recursive": False,
                },
            )
            self.assertEqual(copy["result"], {})
            self.assertEqual(
                (await self.ask(client, "fs/createDirectory", {"path": self.uri("d", "e")}))[
                    "result"
                ],
                {},
            )
            self.assertEqual(
                (await self.ask(client, "fs/remove", {"path": self.uri("d")}))["result"], {}
            )
            self.assertFalse((self.base / "d").exists())
            for path, error in [
                # (a bare path is the 0.131 form: answered as 0.131 answers it, see the last test)
                ("tmp", {"code": -32602, "message": "invalid URI: relative URL without a base"}),
                (
                    "file:///tmp?q",
                    {"code": -32602, "message": "query parameters are not allowed in path URIs"},
                ),
                ("http://x/tmp", {"code": -32602, "message": "unsupported path URI scheme `http`"}),
                (
                    "file://host/tmp",
                    {"code": -32600, "message": "'file://host/tmp' is invalid on 'linux'"},
                ),
                (
                    "file:///C:/x",
                    {"code": -32600, "message": "'file:///C:/x' is invalid on 'linux'"},
                ),
                (
                    self.uri("missing"),
                    {"code": -32004, "message": "No such file or directory (os error 2)"},
                ),
                (5, {"code": -32602, "message": "invalid type: number, expected a string"}),
            ]:
                reply = await self.ask(client, "fs/getMetadata", {"path": path})
                self.assertEqual(reply["error"], error, path)
            self.assertEqual(
                (await self.ask(client, "fs/getMetadata", None))["error"]["message"],
                "invalid type: null, expected struct WireFsGetMetadataParams",
            )

        return self.run_(go())

    # -- http -----------------------------------------------------------------------------------

    def test_httpRedirectPolicyAndHeaderEnvVars(self) -> Deferred[None]:
        tcp: Any = reactor
        port = tcp.listenTCP(0, Site(_Web()), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        base = f"http://127.0.0.1:{port.getHost().port}"

        async def go() -> None:
            import base64

            client = await self.connect()

            async def getRedir(requestId: str, **policy: Any) -> Any:
                """``GET /redir`` (a 302 to ``/echo``) with ``redirectPolicy`` when given."""
                params = {"method": "GET", "url": f"{base}/redir", "requestId": requestId}
                return await self.ask(client, "http/request", {**params, **policy})

            stop = await getRedir("a", redirectPolicy="stop")
            self.assertEqual(
                (stop["result"]["status"], stop["result"]["bodyBase64"]), (302, _b64("moo"))
            )
            follow = await getRedir("b")
            self.assertEqual(follow["result"]["status"], 200)
            self.assertEqual(
                (await getRedir("c", redirectPolicy="bogus"))["error"],
                {"code": -32602, "message": "unknown variant `bogus`, expected `follow` or `stop`"},
            )
            self.assertEqual(
                (await getRedir("j", redirectPolicy=None))["error"],
                {"code": -32602, "message": "invalid type: null, expected string or map"},
            )
            echo = await self.ask(
                client,
                "http/request",
                {
                    "method": "GET",
                    "url": f"{base}/echo",
                    "requestId": "d",
                    "headers": [{"name": "x-a", "value": "Bearer ", "valueEnvVar": "E2E_SECRET"}],
                },
            )
            self.assertEqual(
                json.loads(base64.b64decode(echo["result"]["bodyBase64"]))["x-a"], "Bearer s3cret"
            )
            for var in ("NOPE_NOT_SET", ""):
                reply = await self.ask(
                    client,
                    "http/request",
                    {
                        "method": "GET",
                        "url": f"{base}/echo",
                        "requestId": "e",
                        "headers": [{"name": "x-a", "value": "", "valueEnvVar": var}],
                    },
                )
                self.assertEqual(
                    reply["error"],
                    {
                        "code": -32602,
                        "message": "http/request header x-a requires executor environment"
                        f" variable {var}",
                    },
                )

        return self.run_(go())

    # -- both dialects, one executor ------------------------------------------------------------

    def test_bothDialectsSideBySide(self) -> Deferred[None]:
        (self.base / "f.txt").write_text("abc")

        async def go() -> None:
            old, new = await self.connect(), await self.connect()
            oldMeta = await self.ask(old, "fs/getMetadata", {"path": str(self.base / "f.txt")})
            newMeta = await self.ask(new, "fs/getMetadata", {"path": self.uri("f.txt")})
            self.assertNotIn("size", oldMeta["result"])
            self.assertEqual(newMeta["result"]["size"], 3)
            # each session now answers in its own dialect where no path decides
            self.assertEqual(
                (await self.ask(old, "process/read", {"processId": "x", "afterSeq": -1}))["error"][
                    "message"
                ],
                "invalid value: integer `-1`, expected u64",
            )
            self.assertEqual(
                (await self.ask(new, "process/read", {"processId": "x", "afterSeq": -1}))["error"][
                    "message"
                ],
                "invalid number",
            )
            common = {"argv": ["sh", "-c", "kill -KILL $$"], "env": {}, "tty": False}
            self.assertEqual(
                (
                    await self.ask(
                        old, "process/start", {"processId": "k", "cwd": str(self.base), **common}
                    )
                )["result"],
                {"processId": "k"},
            )
            notes = await self.until(old, "process/closed", "k")
            self.assertEqual(notes[0]["params"], {"processId": "k", "seq": 1, "exitCode": -1})
            self.assertEqual(
                (await self.ask(old, "process/write", {"processId": "k", "chunk": ""}))["result"],
                {"status": "stdinClosed"},
            )

        return self.run_(go())


del defer
