"""Received messages made comparable: uuids, per-run paths, ports, timestamps, base64 payloads.

Process notifications are summarised per process (their order and even seq assignment are racy
in the reference), and their seq order is checked separately, for ours only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from scripts.conformancelib.transport import Event

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
PEER_RE = re.compile(r"127\.0\.0\.1:\d+")


#: The reference puts a private helper-binary directory in front of PATH of children that inherit
#: its environment (for its own apply_patch helpers); we have no such helpers.  Stripped from
#: process output before comparing (listed in the report as a known difference).
ARG0_DIR_RE = re.compile(
    r"[^\s:=]*/tmp/arg0(?:-linux)?/codex-arg0[A-Za-z0-9]+:?"
    # 0.171 also prepends the directory of its bundled helpers (environmentInfo.prependPathDirs)
    r"|[^\s:=]*/vendor/x86_64-unknown-linux-musl/codex-path:?"
)
PROCESS_NOTIFICATIONS = frozenset({"process/output", "process/exited", "process/closed"})


class Normaliser:
    """Turns received messages into comparable form.

    uuids become ``<uuid1>``, ``<uuid2>`` in order of first appearance (so "the resumed session
    has the same id" survives normalisation), the per-run directory becomes ``${DIR}``, peer
    ports become ``<port>``, non-zero ``modifiedAtMs`` becomes ``<ms>``, and base64 payloads of
    process output / file data are shown decoded, as ``<b64:...>``.
    """

    B64_KEYS = frozenset({"chunk", "dataBase64"})
    MACHINE_KEYS = frozenset({"hostname", "userHomeDir", "codexHomeDir", "baseDir"})

    def __init__(self, runDir: str = "") -> None:
        self.runDir = runDir
        self.uuids: dict[str, str] = {}

    def _text(self, s: str) -> str:
        if self.runDir:
            s = s.replace(self.runDir, "${DIR}")

        def uuid(m: re.Match[str]) -> str:
            key = m.group(0).lower()
            if key not in self.uuids:
                self.uuids[key] = f"<uuid{len(self.uuids) + 1}>"
            return self.uuids[key]

        s = UUID_RE.sub(uuid, s)
        return PEER_RE.sub("127.0.0.1:<port>", s)

    def decodeB64(self, s: str) -> str:
        try:
            raw = base64.b64decode(s.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            return s
        text = ARG0_DIR_RE.sub("", self._text(raw.decode("utf-8", "backslashreplace")))
        if len(text) > 2000:
            digest = hashlib.sha256(raw).hexdigest()[:16]
            text = f"{text[:100]}...[{len(raw)} bytes, sha256 {digest}]"
        return "<b64:" + text.encode("unicode_escape").decode("ascii") + ">"

    def value(self, v: Any, key: str = "") -> Any:
        if isinstance(v, dict):
            if "shell" in v and "capabilities" in v:
                # 0.171's EnvironmentInfo describes the machine and build of each executor
                # (cwd, providerId, helper dirs; capabilities true only for what ours implements):
                # compared by tests/test_dialect_environment.py, not here
                return "<environmentInfo>"
            # 0.171's initialize also carries it; ours answers {sessionId} alone in both dialects
            # (the first message cannot tell a 0.131 client from a 0.171 one; docs/decisions.md)
            return {k: self.value(x, k) for k, x in v.items() if k != "environmentInfo"}
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, str):
            if key in self.B64_KEYS:
                return self.decodeB64(v)
            if key in self.MACHINE_KEYS:
                # environmentConfig/read names the machine, the user's home and CODEX_HOME of
                # each executor's environment (exact values: tests/test_dialect_environment.py)
                return f"<{key}>"
            return self._text(v)
        if key == "modifiedAtMs" and isinstance(v, int) and v > 0:
            return "<ms>"
        return v

    def event(self, ev: Event) -> Any:
        if ev.kind == "closed":
            return {"__event": "connection closed"}
        if ev.kind == "binary":
            return {"__event": "binary frame", "data": ev.data}
        try:
            msg = json.loads(ev.data)
        except ValueError:
            return {"__event": "non-JSON text frame", "data": self._text(ev.data)}
        return self.value(msg)


def isProcessNotification(msg: Any) -> bool:
    return isinstance(msg, dict) and "id" not in msg and msg.get("method") in PROCESS_NOTIFICATIONS


def orderViolations(conn: str, messages: Sequence[Any]) -> list[str]:
    """Process notifications of one process that arrived out of seq order (on one connection)."""
    last: dict[str, int] = {}
    problems = []
    for msg in messages:
        if not isProcessNotification(msg):
            continue
        params = msg.get("params") or {}
        pid, seq = str(params.get("processId")), params.get("seq")
        if not isinstance(seq, int):
            continue
        if pid in last and seq <= last[pid]:
            problems.append(
                f"[{conn}] {msg.get('method')} seq {seq} of {pid} arrived after seq {last[pid]}"
            )
        last[pid] = max(seq, last.get(pid, seq))
    return problems


def seqOf(message: dict[str, Any]) -> int:
    """A process notification's ``seq`` (-1 when it has none), to sort one process's messages."""
    seq = (message.get("params") or {}).get("seq")
    return seq if isinstance(seq, int) else -1


def processSummary(msgs: Sequence[dict[str, Any]]) -> list[str]:
    """One process's notifications, seq-insensitive but complete.

    The reference sometimes numbers ``process/exited`` before the last ``process/output`` (its
    seq assignment is racy), so seq numbers are not compared one by one: the outputs are listed
    in seq order with their stream and data, then exited and closed, then the set of seqs
    (which must be contiguous: 1..N, or a later range on a resumed connection).
    """

    ordered = sorted(msgs, key=seqOf)
    lines = []
    for m in ordered:
        p = m.get("params") or {}
        if m["method"] == "process/output":
            lines.append(f"output {p.get('stream')} {json.dumps(p.get('chunk'))}")
    for m in ordered:
        p = m.get("params") or {}
        rest = {k: v for k, v in p.items() if k not in ("processId", "seq")}
        if m["method"] != "process/output":
            lines.append(f"{m['method'].split('/')[1]} {json.dumps(rest, sort_keys=True)}")
    seqs = [seqOf(m) for m in ordered]
    if seqs and seqs == list(range(seqs[0], seqs[0] + len(seqs))):
        lines.append(f"seqs {seqs[0]}..{seqs[-1]}")
    else:
        lines.append(f"seqs {seqs} (not contiguous)")
    return lines


def mergeOutputs(msgs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Concatenate a process's output per stream (for output whose chunking is racy, e.g. a
    PTY echo), renumbering seqs 1..N so that the summary stays comparable."""

    ordered = sorted(msgs, key=seqOf)
    data: dict[str, bytes] = {}
    rest = []
    for m in ordered:
        p = m.get("params") or {}
        if m.get("method") == "process/output":
            stream = str(p.get("stream"))
            data[stream] = data.get(stream, b"") + base64.b64decode(str(p.get("chunk", "")))
        else:
            rest.append(m)
    merged: list[dict[str, Any]] = []
    pid = (ordered[0].get("params") or {}).get("processId") if ordered else None
    for stream, raw in data.items():
        params = {"processId": pid, "seq": len(merged) + 1, "stream": stream}
        params["chunk"] = base64.b64encode(raw).decode()
        merged.append({"method": "process/output", "params": params})
    for m in rest:
        params = dict(m.get("params") or {}, seq=len(merged) + 1)
        merged.append({"method": m.get("method"), "params": params})
    return merged
