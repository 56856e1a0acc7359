"""Differential: the new 0.171 fs methods against the Codex 0.171.0 binary and us, side by side.

The same requests go to ``codex exec-server --listen ws://127.0.0.1:0`` (0.171.0) and to our
executor over their local websockets, each on its own copy of one file layout; the replies must
be equal once each side's directory is written ``{D}``. Skipped when the binary is absent
(``scripts/fetch_codex.sh``); it is here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from tests.support.fs171 import WALK_OPTIONS
from tests.support.local import serveOnLoopback
from tests.support.reference import listeningReference
from twisted_exec.testing.wsclient import JsonRpcClient, connectJsonRpc

WAIT = 20.0


def layout(root: str) -> None:
    os.makedirs(os.path.join(root, "sub/deeper"))
    os.makedirs(os.path.join(root, ".hid/x"))
    with open(os.path.join(root, "small"), "wb") as f:
        f.write(b"hello world")
    open(os.path.join(root, "sub/deeper/f"), "w").close()
    open(os.path.join(root, ".hid/x/g"), "w").close()
    os.symlink("small", os.path.join(root, "link"))
    os.symlink("sub", os.path.join(root, "dirlink"))
    os.symlink("nowhere", os.path.join(root, "dangling"))
    os.mkfifo(os.path.join(root, "fifo"))


OPTIONS = dict(WALK_OPTIONS)

# (connection, method, params); "{D}" is the side's directory as a URI, "{P}" as a path.
SCRIPT: list[tuple[int, str, Any]] = [
    (0, "fs/open", {"path": "{D}/small", "handleId": "h1"}),
    (0, "fs/open", {"path": "{D}/small", "handleId": "h1"}),
    (0, "fs/open", {"path": "{D}/small", "handleId": "x" * 33}),
    (0, "fs/open", {"path": "{D}/small", "handleId": "é" * 17}),
    (0, "fs/open", {"path": "{D}/small"}),
    (0, "fs/open", ["h9", "{D}/small"]),
    (0, "fs/open", {"path": "{P}/small", "handleId": "z"}),
    (0, "fs/open", {"path": "{D}/nope", "handleId": "h2"}),
    (0, "fs/open", {"path": "{D}/sub", "handleId": "h2"}),
    (0, "fs/open", {"path": "{D}/dirlink", "handleId": "h2"}),
    (0, "fs/open", {"path": "{D}/fifo", "handleId": "h2"}),
    (0, "fs/open", {"path": "{D}/dangling", "handleId": "h2"}),
    (0, "fs/open", {"path": "{D}/small/x", "handleId": "h2"}),
    (0, "fs/open", {"path": "{D}/small", "handleId": "m", "mode": None}),
    (0, "fs/open", {"path": "{D}/small", "handleId": "m", "mode": "Read"}),
    (0, "fs/open", {"path": "{D}/link", "handleId": "h3", "mode": "read"}),
    (0, "fs/readBlock", {"handleId": "h1", "offset": 0, "len": 5}),
    (0, "fs/readBlock", {"handleId": "h1", "offset": 5, "len": 6}),
    (0, "fs/readBlock", {"handleId": "h1", "offset": 5, "len": 7}),
    (0, "fs/readBlock", {"handleId": "h1", "offset": 11, "len": 7}),
    (0, "fs/readBlock", {"handleId": "h1", "offset": 0, "len": 0}),
    (0, "fs/readBlock", {"handleId": "h1", "offset": 0, "len": 1048577}),
    (0, "fs/readBlock", {"handleId": "nope", "offset": 0, "len": 0}),
    (0, "fs/readBlock", {"handleId": "h1", "offset": 1.5, "len": 3}),
    (0, "fs/readBlock", {"handleId": "h1", "offset": "1", "len": 3}),
    (0, "fs/readBlock", {"handleId": 5, "offset": 0, "len": 3}),
    (0, "fs/readBlock", ["h1", 0]),
    (0, "fs/readBlock", None),
    (0, "fs/readBlock", {"handleId": "h1", "offset": 2**63, "len": 3}),
    (0, "fs/readBlock", {"handleId": "h1", "offset": 0, "len": 3}),
    (1, "fs/readBlock", {"handleId": "h3", "offset": 0, "len": 3}),
    (0, "fs/writeBlock", {"handleId": "h3", "offset": 0, "chunk": "aGk="}),
    (0, "fs/readBlock", {"handleId": "h3", "offset": 0, "len": 3}),
    (0, "fs/open", {"path": "{D}/w1", "handleId": "w1", "mode": "replace"}),
    (0, "fs/writeBlock", {"handleId": "w1", "offset": 0, "chunk": "aGVsbG8="}),
    (0, "fs/writeBlock", {"handleId": "w1", "offset": 10, "chunk": "aGVsbG8="}),
    (0, "fs/writeBlock", {"handleId": "w1", "offset": 0, "chunk": ""}),
    (0, "fs/writeBlock", {"handleId": "w1", "offset": 0, "chunk": "!!"}),
    (0, "fs/writeBlock", {"handleId": "w1", "offset": 0, "chunk": "aGk"}),
    (0, "fs/writeBlock", {"handleId": "w1", "offset": 2**63 - 2, "chunk": "aGk="}),
    (0, "fs/writeBlock", {"handleId": "w1", "offset": 2**63 - 3, "chunk": "aGk="}),
    (0, "fs/writeBlock", {"handleId": "w1", "offset": 0}),
    (0, "fs/close", {"handleId": "w1"}),
    (0, "fs/open", {"path": "{D}/w1", "handleId": "r1"}),
    (0, "fs/readBlock", {"handleId": "r1", "offset": 0, "len": 100}),
    (0, "fs/open", {"path": "{D}/sub", "handleId": "w2", "mode": "replace"}),
    (0, "fs/open", {"path": "{D}/fifo", "handleId": "w2", "mode": "replace"}),
    (0, "fs/open", {"path": "{D}/nodir/x", "handleId": "w2", "mode": "replace"}),
    (0, "fs/close", {"handleId": "h3"}),
    (0, "fs/close", {"handleId": "h3"}),
    (0, "fs/close", {"handleId": "x" * 33}),
    (0, "fs/close", {}),
    (0, "fs/walk", {"path": "{D}", "options": OPTIONS}),
    (0, "fs/walk", {"path": "{D}", "options": {**OPTIONS, "followDirectorySymlinks": True}}),
    (0, "fs/walk", {"path": "{D}", "options": {**OPTIONS, "pruneHiddenDirectories": True}}),
    (0, "fs/walk", {"path": "{D}", "options": {**OPTIONS, "maxDepth": 0}}),
    (0, "fs/walk", {"path": "{D}", "options": {**OPTIONS, "maxDirectories": 2}}),
    (0, "fs/walk", {"path": "{D}", "options": {**OPTIONS, "maxEntries": 3}}),
    (0, "fs/walk", {"path": "{D}", "options": {**OPTIONS, "maxEntries": 0}}),
    (0, "fs/walk", {"path": "{D}/nope", "options": {**OPTIONS, "maxEntries": 50001}}),
    (0, "fs/walk", {"path": "{D}/nope", "options": OPTIONS}),
    (0, "fs/walk", {"path": "{D}/small", "options": OPTIONS}),
    (0, "fs/walk", {"path": "{D}/dirlink", "options": OPTIONS}),
    (0, "fs/walk", {"path": "{D}", "options": [10, 100, 1000, False]}),
    (0, "fs/walk", {"path": "{D}", "options": {**OPTIONS, "maxDepth": -1}}),
    (0, "fs/walk", {"path": "{D}"}),
    (0, "fs/canonicalize", {"path": "{D}/link"}),
    (0, "fs/canonicalize", {"path": "{D}/dirlink/deeper/f"}),
    (0, "fs/canonicalize", {"path": "{D}/dirlink/../small"}),
    (0, "fs/canonicalize", {"path": "{D}/dangling"}),
    (0, "fs/canonicalize", {"path": "{D}/small/x"}),
    (0, "fs/canonicalize", ["{D}/small"]),
    (0, "fs/getMetadata", {"path": "{D}/link"}),
    (0, "fs/getMetadata", {"path": "{D}/link", "followSymlinks": False}),
    (0, "fs/getMetadata", {"path": "{D}/dirlink/deeper", "followSymlinks": False}),
    (0, "fs/getMetadata", {"path": "{D}/sub", "followSymlinks": False}),
    (0, "fs/getMetadata", {"path": "{D}/dangling", "followSymlinks": True}),
    (0, "fs/getMetadata", {"path": "{D}/fifo", "followSymlinks": None}),
    (0, "fs/getMetadata", {"path": "{D}/small", "followSymlinks": 1}),
    (0, "fs/getMetadata", ["{D}/small", None]),
    (0, "fs/getMetadata", {"path": "{D}/small", "sandbox": 5}),
    (0, "fs/readFile", {"path": "{D}/small", "sandbox": 5}),
    (0, "fs/getMetadata", {"path": "{D}/small", "sandbox": {}}),
    (0, "fs/copy", {"sourcePath": "{D}/small", "destinationPath": "{D}/c1"}),
    (0, "fs/copy", {"sourcePath": "{D}/small", "destinationPath": "{D}/c1", "recursive": False}),
    (0, "fs/copy", {"sourcePath": "{D}/sub", "destinationPath": "{D}/c2", "recursive": False}),
    (0, "fs/copy", ["{D}/small", "{D}/c3", True]),
    (0, "fs/open", {"path": "file:///C:/x", "handleId": "x" * 33}),
    (0, "fs/open", {"path": "file:///C:/x", "handleId": "win"}),
    (0, "fs/canonicalize", {"path": "file:///C:/x"}),
    (0, "fs/walk", {"path": "file:///C:/x", "options": {**OPTIONS, "maxEntries": 0}}),
    (0, "fs/open", {"path": "{D}/small", "handleId": "sb", "sandbox": 5}),
    (0, "fs/watchMissing", {"watchId": 0, "missing": ["{D}/AGENTS.md"], "present": "{D}"}),
    (0, "fs/watchMissing", {"watchId": 2, "missing": ["{D}/small"], "present": "{D}"}),
    (0, "fs/watchMissing", {"watchId": 1, "missing": ["{D}/AGENTS.md"], "present": "{D}"}),
    (0, "fs/watchMissing", {"watchId": 3, "missing": [], "present": "{D}"}),
    (0, "fs/watchMissing", {"watchId": 4, "missing": ["{D}/x"], "present": "{D}/nope"}),
    (0, "fs/watchMissing", {"watchId": 5, "missing": ["{D}/dirlink/x"], "present": "{D}"}),
    (0, "fs/watchMissing", {"watchId": 6, "missing": ["{D}/x"], "present": "{D}/dirlink"}),
    (0, "fs/watchMissing", {"watchId": 7, "missing": ["{D}/x"] * 65, "present": "{D}"}),
    (0, "fs/watchMissing", {"watchId": -1, "missing": []}),
    (0, "fs/watchMissing", {"watchId": 8, "missing": None}),
    (0, "fs/watchMissing", {"watchId": 8, "missing": ["file:///C:/x"]}),
    (0, "fs/watchMissing", [8, ["{D}/AGENTS.md"]]),
    (0, "fs/watchMissing", {"watchId": 9, "missing": ["{D}/AGENTS.md"], "present": "{D}"}),
]


def fill(template: Any, root: str) -> Any:
    text = json.dumps(template)
    text = text.replace("{D}", "file://" + quote(root)).replace("{P}", root)
    return json.loads(text)


def unfill(reply: Any, root: str) -> Any:
    """``{D}`` for the side's directory; times as "set or not" (the two layouts differ)."""
    result = reply.get("result") if isinstance(reply, dict) else None
    if isinstance(result, dict) and "modifiedAtMs" in result:
        reply = {**reply, "result": {**result}}
        for key in ("createdAtMs", "modifiedAtMs"):
            reply["result"][key] = result[key] != 0
    text = json.dumps(reply)
    real = os.path.realpath(root)
    for form in ("file://" + quote(real), "file://" + quote(root), real, root):
        text = text.replace(form, "{D}")
    return json.loads(text)


class ReferenceDifferentialTests(TestCase):
    timeout = 120

    async def startReference(self) -> str:
        return await listeningReference(self, timeout=WAIT)

    def startOurs(self) -> str:
        _, local = serveOnLoopback(self, announce=lambda _: None)
        assert local.url is not None
        return local.url

    async def connect(self, url: str) -> JsonRpcClient:
        client = await connectJsonRpc(reactor, url)
        self.addCleanup(lambda: client.abort() if not client.closed.called else None)
        d = Deferred.fromCoroutine(client.handshake())
        d.addTimeout(WAIT, reactor)
        await d
        return client

    async def reply(self, client: JsonRpcClient, method: str, params: Any) -> Any:
        before = len(client.messages)
        d = client.call(method, params)
        d.addErrback(lambda _: None)
        d.addTimeout(WAIT, reactor)
        await d
        for message in client.messages[before:]:
            if isinstance(message, dict) and "method" not in message:
                return {k: v for k, v in message.items() if k not in ("id", "jsonrpc")}
        raise AssertionError("no reply")

    async def test_sameRepliesAndNotification(self) -> None:
        theirsUrl = await self.startReference()
        oursUrl = self.startOurs()
        sides: dict[str, tuple[str, list[JsonRpcClient]]] = {}
        for name, url in (("theirs", theirsUrl), ("ours", oursUrl)):
            root = os.path.abspath(self.mktemp())
            layout(root)
            sides[name] = (root, [await self.connect(url), await self.connect(url)])
        differences = []
        kinds: dict[str, int] = {"result": 0, "error": 0}
        for connection, method, template in SCRIPT:
            replies = {}
            for name, (root, clients) in sides.items():
                got = await self.reply(clients[connection], method, fill(template, root))
                replies[name] = unfill(got, root)
            if replies["theirs"] != replies["ours"]:
                differences.append((method, template, replies))
            kinds["result" if "result" in replies["theirs"] else "error"] += 1
        self.assertEqual(differences, [])
        self.assertEqual(kinds, {"result": 41, "error": 64})  # the script really ran on both
        for root, _ in sides.values():
            self.assertEqual(Path(root, "w1").read_bytes(), b"hello\0\0\0\0\0hello")
        # watch 9 is active on both: creating AGENTS.md notifies each connection once
        notes = {}
        for name, (root, clients) in sides.items():
            note = clients[0].nextNotification()
            note.addTimeout(WAIT, reactor)
            Path(root, "AGENTS.md").write_text("# instructions")
            notes[name] = await note
        self.assertEqual(notes["theirs"], notes["ours"])
        self.assertEqual(notes["ours"], {"method": "fs/missingChanged", "params": {"watchId": 9}})
