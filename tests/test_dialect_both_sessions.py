"""One executor, both dialects: a 0.131 session beside a 0.171 one on the same loopback
websocket, each answered in its own dialect where no path decides."""

from __future__ import annotations

from twisted.internet.defer import Deferred

from tests.support.dialect import DialectCase


class BothDialectsTests(DialectCase):
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
