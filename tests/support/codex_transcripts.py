"""What the Codex CLI end-to-end tests read from a recorded websocket conversation: the
normalised transcript kept for a person to read, and the order-free view two exec-servers'
answers are compared by."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twisted_exec.testing.fake_responses import JsonObject
from twisted_exec.testing.ws_recorder import CLIENT_TO_SERVER, RecordedEvent

PIDS_LINE = re.compile(r"pid=(\d+) ppid=(\d+) pgid=(\d+) sid=(\d+)")


class Normaliser:
    """Rewrites what differs between runs (paths, uuids, process ids, pids, mtimes) to
    placeholders, and decodes base64 payloads so that a transcript reads as text."""

    def __init__(self, base: Path, serverPid: int | None) -> None:
        self.base = str(base)
        self.serverPid = serverPid
        self.processIds: dict[str, str] = {}

    def text(self, value: str) -> str:
        value = value.replace(self.base, "<BASE>")
        return PIDS_LINE.sub(self._pids, value)

    def _pids(self, match: re.Match[str]) -> str:
        own = match.group(1)

        def name(number: str) -> str:
            if self.serverPid is not None and number == str(self.serverPid):
                return "<server>"
            return "<self>" if number == own else "<other>"

        pid, ppid, pgid, sid = (name(match.group(i)) for i in range(1, 5))
        return f"pid={pid} ppid={ppid} pgid={pgid} sid={sid}"

    def value(self, key: str, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.value(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(key, v) for v in value]
        if not isinstance(value, str):
            if key == "modifiedAtMs" and isinstance(value, int) and value > 0:
                return "<ms>"
            return value
        if key == "processId":
            return self.processIds.setdefault(value, f"<process {len(self.processIds) + 1}>")
        if key in ("sessionId", "CODEX_THREAD_ID", "resumeSessionId"):
            return f"<{key}>"
        if key in ("chunk", "dataBase64", "deltaBase64", "bodyBase64"):
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except ValueError:
                return value
            return "b64:" + self.text(decoded)
        return self.text(value)

    def message(self, message: Any) -> Any:
        return self.value("", message)


def transcript(events: Sequence[RecordedEvent], normaliser: Normaliser) -> list[JsonObject]:
    """Every message and lifecycle event, in order, normalised (the saved transcript)."""
    out: list[JsonObject] = []
    for e in events:
        entry: JsonObject = {"conn": e.connection, "dir": e.direction}
        if e.kind == "text":
            entry["msg"] = normaliser.message(json.loads(e.payload))
        elif e.kind == "binary":
            entry["binary"] = base64.b64encode(e.payload).decode()
        else:
            entry["event"] = e.kind
        out.append(entry)
    return out


def semanticView(events: Sequence[RecordedEvent], normaliser: Normaliser) -> list[str]:
    """What must match between two exec-servers driven by the same CLI script, as a sorted
    list of JSON lines.

    The CLI sends requests from concurrent tasks (two walks up the tree for ``.git`` interleave
    differently from run to run, also against the reference), it polls ``process/read`` with
    ``waitMs: 0`` as often as timing makes it, and it terminates a finished process whenever its
    task gets round to it; so neither order, ids nor reads are compared.  What is: every other
    request with its reply (as a multiset), the messages the client sent without an id, and each
    process's output (per stream), exit code and closing.
    """
    requests: list[tuple[Any, JsonObject]] = []
    replies: dict[Any, JsonObject] = {}
    processes: dict[str, JsonObject] = {}
    view: list[JsonObject] = []
    for e in events:
        if e.kind != "text":
            continue
        msg = json.loads(e.payload)
        if e.direction == CLIENT_TO_SERVER:
            if "id" in msg and "method" in msg:
                requests.append((msg["id"], msg))
            else:
                view.append({"client": normaliser.message(msg)})
            continue
        if "id" in msg:
            replies[msg["id"]] = msg
            continue
        method, params = msg.get("method", ""), msg.get("params", {})
        if method.startswith("process/"):
            proc = processes.setdefault(params.get("processId", "?"), {"events": []})
            proc["events"].append((params.get("seq", 0), method, params))
    for requestId, msg in requests:
        if msg["method"] == "process/read":
            continue
        reply = replies.get(requestId, {"missing": True})
        view.append(
            {
                "method": msg["method"],
                "params": normaliser.value("params", msg.get("params")),
                "reply": normaliser.message({k: v for k, v in reply.items() if k != "id"}),
            }
        )
    for processId, proc in processes.items():
        summary: JsonObject = {"processId": normaliser.value("processId", processId)}
        for _seq, method, params in sorted(proc["events"], key=lambda t: t[0]):
            if method == "process/output":
                text = base64.b64decode(params["chunk"]).decode("utf-8", "replace")
                stream = params["stream"]
                summary[stream] = summary.get(stream, "") + text
            elif method == "process/exited":
                summary["exitCode"] = params["exitCode"]
            elif method == "process/closed":
                summary["closed"] = True
        for stream in ("stdout", "stderr", "pty"):
            if stream in summary:
                summary[stream] = normaliser.text(summary[stream])
        view.append({"process": summary})
    return sorted(json.dumps(v, sort_keys=True) for v in view)
