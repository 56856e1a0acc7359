"""Playing one session script against one target and keeping its normalised transcript."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred

from scripts.conformancelib.normalise import (
    Normaliser,
    isProcessNotification,
    mergeOutputs,
    orderViolations,
    processSummary,
)
from scripts.conformancelib.sessions import (
    STEP_KINDS,
    ScriptError,
    SessionScript,
    lookup,
    matches,
    substitute,
)
from scripts.conformancelib.transport import Connection, Event, Target


@dataclass
class Transcript:
    """What one target did in one session, already normalised."""

    lines: list[str] = field(default_factory=list)
    orderProblems: list[str] = field(default_factory=list)
    elapsed: float = 0.0


class _Conn:
    """Runner-side state for one named connection: pumps events into a list, wakes waiters."""

    def __init__(self, name: str, conn: Connection) -> None:
        self.name = name
        self.conn = conn
        self.events: list[tuple[int, Event]] = []  # (step index at arrival, event)
        self.closed = False
        self._step = 0
        self._waiters: list[Deferred[None]] = []
        self.pumping = defer.ensureDeferred(self._pump())

    def setStep(self, step: int) -> None:
        self._step = step

    async def _pump(self) -> None:
        while True:
            ev = await self.conn.receive()
            self.events.append((self._step, ev))
            waiters, self._waiters = self._waiters, []
            for w in waiters:
                w.callback(None)
            if ev.kind == "closed":
                self.closed = True
                return

    def changed(self) -> Deferred[None]:
        d: Deferred[None] = Deferred(lambda d: self._waiters.remove(d))
        self._waiters.append(d)
        return d


def _doSetup(runDir: Path, ops: list[list[Any]]) -> None:
    for op in ops:
        kind, args = op[0], op[1:]
        target = runDir / args[0]
        if kind == "mkdir":
            target.mkdir(parents=True, exist_ok=True)
        elif kind == "write":
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(args[1], encoding="utf-8")
        elif kind == "symlink":
            # ["symlink", linkName, pointsTo]; pointsTo may be absolute after substitution
            target.symlink_to(args[1])
        elif kind == "chmod":
            target.chmod(int(args[1], 8))


class SessionRunner:
    """Plays one :class:`SessionScript` against one :class:`Target`."""

    defaultTimeoutMs = 5000
    defaultQuietMs = 300

    def __init__(self, reactor: Any, target: Target, runDir: Path) -> None:
        self.reactor = reactor
        self.target = target
        self.runDir = runDir

    async def _sleep(self, seconds: float) -> None:
        d: Deferred[None] = Deferred()
        self.reactor.callLater(seconds, d.callback, None)
        await d

    async def _waitUntil(self, c: _Conn, start: int, patterns: list[Any], timeout: float) -> bool:
        deadline = self.reactor.seconds() + timeout
        while True:
            got = [self._parsed(ev) for _, ev in c.events[start:]]
            if all(any(matches(p, m) for m in got) for p in patterns):
                return True
            if c.closed:
                return False
            remaining = deadline - self.reactor.seconds()
            if remaining <= 0:
                return False
            d = c.changed()
            d.addTimeout(remaining, self.reactor)
            try:
                await d
            except defer.TimeoutError:
                return False

    async def _quiet(self, c: _Conn, quiet: float, limit: float) -> None:
        """Wait until nothing arrived for ``quiet`` seconds (at most ``limit`` in total)."""
        end = self.reactor.seconds() + limit
        while not c.closed:
            d = c.changed()
            d.addTimeout(min(quiet, max(0.0, end - self.reactor.seconds())), self.reactor)
            try:
                await d
            except defer.TimeoutError:
                return
            if self.reactor.seconds() >= end:
                return

    @staticmethod
    def _parsed(ev: Event) -> Any:
        if ev.kind != "text":
            return {"__event": ev.kind}
        try:
            return json.loads(ev.data)
        except ValueError:
            return None

    async def run(self, script: SessionScript) -> Transcript:
        t0 = time.monotonic()
        runDir = self.runDir
        runDir.mkdir(parents=True, exist_ok=True)
        variables: dict[str, str] = {"DIR": str(runDir)}
        _doSetup(runDir, [substitute(op, variables) for op in script.setup])
        conns: dict[str, _Conn] = {}
        notes: list[tuple[int, str]] = []
        timeouts: list[tuple[int, str]] = []
        try:
            for i, step in enumerate(script.steps):
                for c in conns.values():
                    c.setStep(i)
                await self._step(i, step, conns, variables, notes, timeouts)
            # let straggling process notifications arrive
            for c in conns.values():
                await self._quiet(c, 0.1, 1.0)
        finally:
            for c in conns.values():
                if not c.closed:
                    await c.conn.close()
        return self._transcript(script, conns, notes, timeouts, str(runDir), t0)

    async def _step(
        self,
        i: int,
        step: dict[str, Any],
        conns: dict[str, _Conn],
        variables: dict[str, str],
        notes: list[tuple[int, str]],
        timeouts: list[tuple[int, str]],
    ) -> None:
        name = step.get("conn", "a")
        if "open" in step:
            conns[step["open"]] = _Conn(step["open"], await self.target.connect())
            conns[step["open"]].setStep(i)
            return
        if "sleepMs" in step:
            await self._sleep(step["sleepMs"] / 1000)
            return
        if name not in conns and not conns:
            # the first step implicitly opens connection "a"
            conns[name] = _Conn(name, await self.target.connect())
            conns[name].setStep(i)
        if name not in conns:
            raise ScriptError(f"step {i}: connection {name!r} was never opened")
        c = conns[name]
        if "close" in step:
            await conns[step["close"]].conn.close()
            return
        start = len(c.events)
        timeout = step.get("timeoutMs", self.defaultTimeoutMs) / 1000
        until = step.get("until")
        sent: Any = None
        if "send" in step:
            sent = substitute(step["send"], variables)
            if c.closed:
                notes.append((i, f"[{name}] not sent: connection already closed"))
                return
            c.conn.send(json.dumps(sent))
            if until is None and isinstance(sent, dict) and "id" in sent:
                until = [{"id": sent["id"]}]
        elif "sendText" in step:
            if c.closed:
                notes.append((i, f"[{name}] not sent: connection already closed"))
                return
            c.conn.send(substitute(step["sendText"], variables))
        elif "sendBinary" in step:
            sendBinary = getattr(c.conn, "sendBinary", None)
            if sendBinary is None:
                notes.append((i, f"[{name}] transport cannot send binary frames"))
                return
            sendBinary(base64.b64decode(step["sendBinary"]))
        if until:
            patterns = substitute(until, variables)
            if not await self._waitUntil(c, start, patterns, timeout):
                what = "connection closed" if c.closed else f"timeout after {timeout:g}s"
                timeouts.append((i, f"[{name}] {what} waiting for {json.dumps(patterns)}"))
        quiet = step.get("quietMs", 0 if until else self.defaultQuietMs)
        if quiet:
            await self._quiet(c, quiet / 1000, timeout)
        for var, path in (step.get("capture") or {}).items():
            for _, ev in c.events[start:]:
                msg = self._parsed(ev)
                if (
                    isinstance(msg, dict)
                    and isinstance(sent, dict)
                    and msg.get("id") == sent.get("id")
                ):
                    val = lookup(msg, path)
                    if val is not None:
                        variables[var] = str(val)
            if var not in variables:
                variables[var] = f"<uncaptured {var}>"

    def _transcript(
        self,
        script: SessionScript,
        conns: dict[str, _Conn],
        notes: list[tuple[int, str]],
        timeouts: list[tuple[int, str]],
        runDir: str,
        t0: float,
    ) -> Transcript:
        norm = Normaliser(runDir)
        out = Transcript()
        byStep: dict[int, list[str]] = {}
        procs: dict[tuple[str, str], list[Any]] = {}
        for cname, c in conns.items():
            raw = [self._parsed(ev) for _, ev in c.events]
            out.orderProblems.extend(orderViolations(cname, raw))
            for stepIndex, ev in c.events:
                parsed = self._parsed(ev)
                if ev.kind == "text" and isProcessNotification(parsed):
                    pid = str((parsed.get("params") or {}).get("processId"))
                    procs.setdefault((cname, pid), []).append(parsed)
                else:
                    msg = norm.event(ev)
                    line = f"[{cname}] <- {json.dumps(msg, sort_keys=True)}"
                    byStep.setdefault(stepIndex, []).append(line)
        for i, text in notes + timeouts:
            byStep.setdefault(i, []).append(f"!! {norm._text(text)}")
        for i, step in enumerate(script.steps):
            out.lines.append(f"-- step {i}: {_describe(step)}")
            out.lines.extend(byStep.get(i, []))
        out.lines.append("-- process notifications (per connection and process, by seq)")
        for (cname, pid), msgs in sorted(procs.items()):
            if pid in script.mergeOutput:
                msgs = mergeOutputs(msgs)
            msgs = [norm.value(m) for m in msgs]
            out.lines.extend(f"[{cname}] {pid}: {line}" for line in processSummary(msgs))
        out.elapsed = time.monotonic() - t0
        return out


def _describe(step: dict[str, Any]) -> str:
    conn = step.get("conn", "a")
    for kind in STEP_KINDS:
        if kind in step:
            val = step[kind]
            text = val if isinstance(val, str) else json.dumps(val, sort_keys=True)
            if len(text) > 160:
                text = text[:157] + "..."
            if kind in ("open", "close", "sleepMs"):
                return f"{kind} {text}"
            return f"[{conn}] {kind} {text}"
    return "?"
