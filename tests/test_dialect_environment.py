"""The 0.171 dialect's environment methods over a real loopback websocket: ``environment/info``
and ``environment/status`` before and after initialize, and ``environmentConfig/read`` of a real
``config.toml``; exact JSON, errors included, as the 0.171.0 binary answered."""

from __future__ import annotations

import hashlib
import os
import pwd
import socket
from importlib.metadata import version

from twisted.internet.defer import Deferred

from tests.support.dialect import DialectCase
from twisted_exec.compat.fileuri import fromHostPath
from twisted_exec.executor.methods.registry import CAPABILITY_NAMES


class DialectEnvironmentTests(DialectCase):
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
