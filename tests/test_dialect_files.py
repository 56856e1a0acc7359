"""The 0.171 dialect's fs methods over a real loopback websocket, on real files: paths as
``file:`` URIs, and every way a path URI is refused, as the 0.171.0 binary answered."""

from __future__ import annotations

from twisted.internet.defer import Deferred

from tests.support.dialect import DialectCase, b64text


class DialectFileTests(DialectCase):
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
                {"dataBase64": b64text("hello")},
            )
            self.assertEqual(
                (await self.ask(client, "fs/readFile", {"path": self.uri("dir")}))["error"],
                {"code": -32600, "message": f"path `{self.base}/dir` is not a file"},
            )
            write = await self.ask(
                client, "fs/writeFile", {"path": self.uri("new.txt"), "dataBase64": b64text("x")}
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
