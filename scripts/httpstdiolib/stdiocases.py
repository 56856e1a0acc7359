"""The stdio transport of both executors: odd input lines, and what stdin EOF does to a child."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from twisted.internet import task

from scripts.httpstdiolib.cases import STDIO_CASES
from scripts.httpstdiolib.executor import spawn, waitFor
from scripts.httpstdiolib.httpcases import scrub


async def runStdioCases(reactor: Any, target: str) -> dict[str, Any]:
    """Each case in a fresh executor: its replies; then the EOF behaviour with a live process."""
    out: dict[str, Any] = {}
    for name, lines in STDIO_CASES:
        executor = spawn(reactor, target)
        began = time.monotonic()
        for line in lines:
            executor.process.write(line + b"\n")
        await task.deferLater(reactor, 0.3, lambda: None)
        executor.process.closeStdin()
        code = await executor.ended
        out[name] = {
            "lines": [scrub(_dropSession(m)) for m in executor.messages],
            "exit": code,
            "stdoutAllJson": all(_isJson(line) for line in executor.rawLines),
            "elapsed": round(time.monotonic() - began, 3),
        }
    out["eof-kills"] = await _eofKills(reactor, target)
    return out


def _dropSession(message: dict[str, Any]) -> dict[str, Any]:
    message = dict(message)
    message.pop("_t", None)
    result = message.get("result")
    if isinstance(result, dict) and "sessionId" in result:
        message["result"] = {"sessionId": "<uuid>"}
    return message


def _isJson(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


async def _eofKills(reactor: Any, target: str) -> dict[str, Any]:
    import tempfile

    directory = tempfile.mkdtemp(prefix="probe-eof-", dir=os.path.expanduser("~"))
    pidFile = os.path.join(directory, "pid")
    executor = spawn(reactor, target)
    executor.send({"id": 1, "method": "initialize", "params": {"clientName": "probe"}})
    await waitFor(executor, 0, lambda m: m.get("id") == 1, 10)
    executor.send({"method": "initialized"})
    executor.send(
        {
            "id": 2,
            "method": "process/start",
            "params": {
                "processId": "p",
                "argv": ["/bin/sh", "-c", f"echo $$ > {pidFile}; exec sleep 30"],
                "cwd": directory,
                "env": {"PATH": "/usr/bin:/bin"},
                "tty": False,
            },
        }
    )
    await waitFor(executor, 0, lambda m: m.get("id") == 2, 10)
    deadline = time.monotonic() + 5
    while not os.path.exists(pidFile) and time.monotonic() < deadline:
        await task.deferLater(reactor, 0.01, lambda: None)
    with open(pidFile) as handle:
        pid = int(handle.read().strip() or 0)
    began = time.monotonic()
    executor.process.closeStdin()
    code = await executor.ended
    exitedAfter = round(time.monotonic() - began, 3)
    gone = None
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if not _alive(pid):
            gone = round(time.monotonic() - began, 3)
            break
        await task.deferLater(reactor, 0.01, lambda: None)
    return {
        "exit": code,
        "exitedWithin": exitedAfter,
        "childGoneAfter": gone,
        "stdoutAllJson": all(_isJson(line) for line in executor.rawLines),
        "stderr": executor.stderr.decode("utf-8", "replace")[-300:],
    }


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except OSError:
        return False


def compareStdio(ref: dict[str, Any], ours: dict[str, Any]) -> list[tuple[str, str, Any, Any]]:
    rows = []
    for name in ref:
        left, right = dict(ref[name]), dict(ours.get(name, {}))
        for side in (left, right):
            side.pop("elapsed", None)
            side.pop("stderr", None)
            if name == "eof-kills":
                side["exitedWithin"] = (side.get("exitedWithin") or 9) < 1.0
                side["childGoneAfter"] = (side.get("childGoneAfter") or 9) < 1.0
        rows.append((name, "same" if left == right else "DIFF", left, right))
    return rows
