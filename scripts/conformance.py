"""Run scripted JSON-RPC sessions against our executor and the reference, and compare them.

Usage::

    python scripts/conformance.py [--codex-bin PATH] [--ours-cmd CMD] [--only NAME ...] [-v]

Both servers are started in local websocket mode (``--listen ws://127.0.0.1:0``; each prints
its bound URL on stdout).  Every session in ``conformance/*.json`` is played against each, the
received messages are normalised (uuids, timestamps, peer ports, per-run paths) and the two
transcripts are compared.  Process notifications are compared as a multiset ordered by
``(connection, processId, seq)``, because the reference delivers them in a racy order while we
deliver them strictly in seq order (that order is checked separately, for ours only).

A session script is a JSON object ``{"description", "setup"?, "steps"}``; see
``conformance/README.md`` for the step language.  The transport under the runner is pluggable
(:class:`Target` / :class:`Connection`): a relay transport only has to open connections that
send and receive JSON-RPC text.

Exit status: 0 when every session is identical or differs only as listed in
:data:`KNOWN_DIFFERENCES`; 1 when any session differs unexpectedly; 0 with a message when the
reference binary is not found (nothing to compare against).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import difflib
import hashlib
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from twisted.internet import defer, error, protocol
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.python.failure import Failure

REPO = Path(__file__).resolve().parent.parent
SESSIONS_DIR = REPO / "conformance"
REFERENCE_171_CANDIDATES = (
    REPO / "vendor/codex-0.171.0/codex",
    Path("/work/main/vendor/codex-0.171.0/codex"),
)
SESSIONS_171_DIR = SESSIONS_DIR / "v171"
REFERENCE_CANDIDATES = (
    REPO / "vendor/codex-0.131.0/package/vendor/x86_64-unknown-linux-musl/codex/codex",
    Path("/work/ref/package/vendor/x86_64-unknown-linux-musl/codex/codex"),
)
CODEX_HOME_DEFAULT = Path("/work/codexhome")

#: Sessions that only make sense over a local transport, with the reason (skipped by --remote).
LOCAL_ONLY: dict[str, str] = {
    "envelope-json-errors": (
        "every step waits for a parse-error reply, and the relay drops unparseable payloads "
        "without one, in both executors; `envelope` covers that behaviour remotely"
    ),
}

#: Sessions whose difference is deliberate: reported, but they do not fail the run.
KNOWN_DIFFERENCES: dict[str, str] = {
    "kill-id-null": (
        "an id of null destroys a reference session silently (the connection closes); we reply "
        "-32600 with id -1 and the session carries on (issue 2, 'where we do better')"
    ),
    "kill-id-float": (
        "an id of 1.5 destroys a reference session silently; we reply with an error and carry on"
    ),
    "kill-unknown-notification": (
        "an unknown notification destroys a reference session silently; we reply -32601/-32600 "
        "with id -1 and carry on"
    ),
    "kill-initialized-first": (
        "`initialized` before `initialize` destroys a reference session silently; we reply with "
        "an error and carry on"
    ),
    "kill-response-object": (
        "a response object from the client destroys a reference session silently; we reply with "
        "an error and carry on"
    ),
    "kill-id-float-integral": (
        "an id of 1e3 (a float, even with an integral value) destroys a reference session "
        "silently; same class as id 1.5: we reply with an error and carry on"
    ),
    "kill-id-u64max": (
        "an id beyond i64 (2^64-1) destroys a reference session silently; same class as id 1.5: "
        "we reply with an error and carry on"
    ),
    "kill-error-object": (
        "an error-response object from the client destroys a reference session silently; same "
        "class as a response object: we reply with an error and carry on"
    ),
    "kill-duplicate-id": (
        "a request with the `id` key twice destroys a reference session silently; we reply "
        "-32600 duplicate field `id` with id -1 and carry on"
    ),
    "process-read": (
        "racy in the reference: a long-poll read (afterSeq past the last output) woken by the "
        "exit reports `closed: true, nextSeq: 4` in some runs and `closed: false, nextSeq: 3` in "
        "others (seen both ways on 2026-11-29); ours always reports the exit and the close "
        "together. Every other step of the session must still match"
    ),
    "terminate-group": (
        "process/terminate of a shell that traps SIGTERM: the reference sometimes leaves its "
        "background child alive (observed in 2 of 3 runs); we always kill the whole process "
        "group (issue 2: processes are never orphaned)"
    ),
}

#: The 0.171 dialect's deliberate differences (``--v171``, sessions of ``conformance/v171/``).
KNOWN_DIFFERENCES_171: dict[str, str] = {
    "envelope": (
        "three explained kinds: (1) the JSON-RPC envelope (broken JSON, odd ids, non-objects, "
        "duplicate keys) is answered as 0.131 answers it in both dialects, since a message that "
        "cannot be parsed names no path (0.171 words some parse errors differently: `expected "
        "a JSON-RPC object`, `missing field `error``, `duplicate JSON object key`); (2) requests "
        "before the session's first path are answered in 0.131's words (the session's dialect "
        "is not known yet: `AbsolutePathBuf ...`, `struct FsGetMetadataParams`); (3) a bare "
        "absolute path is the 0.131 form and gets 0.131's answer even in a 0.171 session"
    ),
    "process-read": KNOWN_DIFFERENCES["process-read"],
    "terminate-group": KNOWN_DIFFERENCES["terminate-group"],
    "detach-ttl": (
        "0.171 kept a detached session resumable for at least 65 s in our probes (its source "
        "sets 10 s, configurable in $CODEX_HOME/exec-server.toml); we keep the 10 s of 0.131 "
        "and of --session-ttl for both dialects: a session's dialect is not known when its "
        "connection drops"
    ),
    "capabilities": (
        "capabilities/discoverV2 and capabilityRoots/discoverV1 are not implemented: we advertise "
        "capabilityDiscoveryV2 false and answer them as 0.171 answers a method it does not have "
        "(-32601 exec-server stub does not implement ...)"
    ),
}

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
PEER_RE = re.compile(r"127\.0\.0\.1:\d+")
URL_LINE_RE = re.compile(r"^(ws://[^\s]+)\s*$")
LOGGED_URL_RE = re.compile(r"\[stdout#\w+\] (ws://[^\s]+)\s*$")
#: The reference puts a private helper-binary directory in front of PATH of children that inherit
#: its environment (for its own apply_patch helpers); we have no such helpers.  Stripped from
#: process output before comparing (listed in the report as a known difference).
ARG0_DIR_RE = re.compile(
    r"[^\s:=]*/tmp/arg0(?:-linux)?/codex-arg0[A-Za-z0-9]+:?"
    # 0.171 also prepends the directory of its bundled helpers (environmentInfo.prependPathDirs)
    r"|[^\s:=]*/vendor/x86_64-unknown-linux-musl/codex-path:?"
)
PROCESS_NOTIFICATIONS = frozenset({"process/output", "process/exited", "process/closed"})


# --------------------------------------------------------------------------------------------
# Transport interface (pluggable: local websocket today, relay later)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Something a connection received: a text frame, a binary frame, or its close."""

    kind: str  # "text" | "binary" | "closed"
    data: str = ""
    at: float = 0.0


class Connection(Protocol):
    """One client connection to an executor (a websocket, or later a relay stream)."""

    def send(self, text: str) -> None:
        """Send one text message (one JSON-RPC message, or deliberately broken text)."""

    def receive(self) -> Deferred[Event]:
        """The next event; a ``closed`` event is the last one."""

    def close(self) -> Deferred[None]:
        """Close the connection and wait (bounded) until it is gone."""


class Target(Protocol):
    """A server under test: started once, then asked for connections."""

    name: str

    def start(self) -> Deferred[None]: ...

    def connect(self) -> Deferred[Connection]: ...

    def stop(self) -> Deferred[None]: ...


# --------------------------------------------------------------------------------------------
# Local websocket transport
# --------------------------------------------------------------------------------------------


class _ServerProcess(protocol.ProcessProtocol):
    """Runs a server and fires ``urlFound`` with the first stdout line that is a ws:// URL."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.urlFound: Deferred[str] = Deferred()
        self.ended: Deferred[None] = Deferred()
        self._buf = b""
        self.output: list[str] = []
        self.urlOnStderr = False

    def outReceived(self, data: bytes) -> None:
        self._buf += data
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            text = line.decode("utf-8", "replace")
            self.output.append(text)
            m = URL_LINE_RE.match(text.strip())
            if m and not self.urlFound.called:
                self.urlFound.callback(m.group(1))

    def errReceived(self, data: bytes) -> None:
        lines = data.decode("utf-8", "replace").splitlines()
        self.output.extend(lines)
        for text in lines:
            # Fallback: a server whose print() went into twistd's log (stdout redirected to the
            # logger) still shows the URL there; it is used, and reported as a difference.
            m = LOGGED_URL_RE.search(text)
            if m and not self.urlFound.called:
                self.urlOnStderr = True
                self.urlFound.callback(m.group(1))

    def processEnded(self, reason: Failure) -> None:
        if not self.urlFound.called:
            tail = "\n".join(self.output[-20:])
            self.urlFound.errback(
                RuntimeError(f"{self.name} exited before printing a URL:\n{tail}")
            )
        self.ended.callback(None)


class LocalWsTarget:
    """A server started as a subprocess in local websocket mode."""

    def __init__(
        self,
        reactor: Any,
        name: str,
        argv: Sequence[str],
        env: dict[str, str],
        cwd: str,
        startTimeout: float = 30.0,
    ) -> None:
        self.reactor = reactor
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd
        self.startTimeout = startTimeout
        self.url = ""
        self._proto = _ServerProcess(name)
        self._transport: Any = None

    async def _start(self) -> None:
        self._transport = self.reactor.spawnProcess(
            self._proto, self.argv[0], self.argv, env=self.env, path=self.cwd
        )
        d = self._proto.urlFound
        d.addTimeout(self.startTimeout, self.reactor)
        self.url = await d

    def start(self) -> Deferred[None]:
        return defer.ensureDeferred(self._start())

    def connect(self) -> Deferred[Connection]:
        return defer.ensureDeferred(_connectWs(self.reactor, self.url))

    async def _stop(self) -> None:
        if self._transport is None or self._proto.ended.called:
            return
        for sig, wait in (("TERM", 5.0), ("KILL", 5.0)):
            try:
                self._transport.signalProcess(sig)
            except error.ProcessExitedAlready:
                return
            ended: Deferred[None] = Deferred()
            _fireWhenDone(self._proto.ended, ended)
            ended.addTimeout(wait, self.reactor)
            try:
                await ended
                return
            except defer.TimeoutError:
                continue

    def stop(self) -> Deferred[None]:
        return defer.ensureDeferred(self._stop())


def _fireWhenDone(source: Deferred[None], target: Deferred[None]) -> None:
    """Fire ``target`` (once) when ``source`` fires, leaving ``source``'s result alone."""

    def fire(result: object) -> object:
        if not target.called:
            target.callback(None)
        return result

    source.addBoth(fire)


async def _connectWs(reactor: Any, url: str, timeout: float = 10.0) -> Connection:
    # autobahn is imported lazily so that the parsing/normalising half of this module (used by
    # the unit tests) does not depend on it.
    from autobahn.twisted.websocket import (
        WebSocketClientFactory,
        WebSocketClientProtocol,
        connectWS,
    )

    class _Proto(WebSocketClientProtocol):  # type: ignore[misc]
        conn: WsConnection

        def onOpen(self) -> None:
            self.conn = WsConnection(self, reactor)
            opened = self.factory.opened
            if not opened.called:
                opened.callback(self.conn)

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            kind = "binary" if isBinary else "text"
            data = base64.b64encode(payload).decode() if isBinary else payload.decode("utf-8")
            self.conn.queue.put(Event(kind, data, reactor.seconds()))

        def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
            opened = self.factory.opened
            if not opened.called:
                opened.errback(ConnectionError(f"websocket failed to open: {code} {reason}"))
                return
            self.conn.queue.put(Event("closed", str(code), reactor.seconds()))
            if not self.conn.gone.called:
                self.conn.gone.callback(None)

    factory = WebSocketClientFactory(url)
    factory.protocol = _Proto
    factory.setProtocolOptions(maxMessagePayloadSize=0, maxFramePayloadSize=0)
    d: Deferred[Connection] = Deferred()
    factory.opened = d  # type: ignore[attr-defined]
    connectWS(factory)
    d.addTimeout(timeout, reactor)
    return await d


class WsConnection:
    """A :class:`Connection` over an autobahn client protocol."""

    def __init__(self, proto: Any, reactor: Any) -> None:
        self.proto = proto
        self.reactor = reactor
        self.queue: DeferredQueue[Event] = DeferredQueue()
        self.gone: Deferred[None] = Deferred()

    def send(self, text: str) -> None:
        self.proto.sendMessage(text.encode("utf-8", "surrogateescape"), isBinary=False)

    def sendBinary(self, data: bytes) -> None:
        self.proto.sendMessage(data, isBinary=True)

    def receive(self) -> Deferred[Event]:
        return self.queue.get()

    async def _close(self) -> None:
        if self.gone.called:
            return
        self.proto.sendClose()
        waiter: Deferred[None] = Deferred()
        _fireWhenDone(self.gone, waiter)
        waiter.addTimeout(3.0, self.reactor)
        try:
            await waiter
        except defer.TimeoutError:
            self.proto.transport.abortConnection()

    def close(self) -> Deferred[None]:
        return defer.ensureDeferred(self._close())


# --------------------------------------------------------------------------------------------
# Relay transport (--remote): each connection is one virtual stream through a rendezvous
# --------------------------------------------------------------------------------------------

RELAY_TOKEN = "conformance-token-not-secret"


class RelayCloud:
    """A registry and a rendezvous on loopback, in this process: both executors register here
    and dial the rendezvous, and the runner plays the harness on its side of the relay."""

    def __init__(self, reactor: Any) -> None:
        from twisted_exec.testing.registry import FakeRegistry
        from twisted_exec.testing.rendezvous import Rendezvous

        self.rendezvous = Rendezvous(reactor)
        self.rendezvous.listen()
        self.registry = FakeRegistry(RELAY_TOKEN, self.rendezvous.executorUrl)
        self.registry.listen(reactor)

    async def stop(self) -> None:
        self.rendezvous.closeAll()
        await self.rendezvous.stopListening()
        await self.registry.stopListening()


class RelayTarget(LocalWsTarget):
    """An executor started in remote mode (``--remote URL --executor-id ID``) against the
    in-process :class:`RelayCloud`. The runner is a harness on the rendezvous's real
    ``/harness/{id}`` websocket: :meth:`connect` opens a new stream on it (UUIDv4 stream id and
    an opening ``resume`` frame, as a harness does), and closing a connection sends a ``reset``."""

    def __init__(
        self,
        reactor: Any,
        name: str,
        argv: Sequence[str],
        env: dict[str, str],
        cwd: str,
        cloud: RelayCloud,
        executorId: str,
    ) -> None:
        remoteArgs = ["--remote", cloud.registry.baseUrl, "--executor-id", executorId]
        env = {**env, "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN": RELAY_TOKEN}
        super().__init__(reactor, name, [*argv, *remoteArgs], env, cwd)
        self.cloud = cloud
        self.executorId = executorId
        self.harness: Any = None
        self._streams: dict[str, RelayConnection] = {}
        self._proto.urlFound.addErrback(lambda _: None)  # no URL is printed in remote mode

    async def _start(self) -> None:
        rendezvous = self.cloud.rendezvous
        connected = rendezvous.waitForConnection(len(rendezvous.connections) + 1)
        self._transport = self.reactor.spawnProcess(
            self._proto, self.argv[0], self.argv, env=self.env, path=self.cwd
        )
        exited: Deferred[None] = Deferred()
        _fireWhenDone(self._proto.ended, exited)
        either: list[Deferred[Any]] = [connected, exited]
        first = defer.DeferredList(either, fireOnOneCallback=True, consumeErrors=True)
        first.addTimeout(self.startTimeout, self.reactor)
        await first
        if not connected.called or self._proto.ended.called:
            tail = "\n".join(self._proto.output[-20:])
            raise RuntimeError(f"{self.name} did not connect to the rendezvous:\n{tail}")
        connection: Any = connected.result
        if connection.executorId != self.executorId:
            raise RuntimeError(f"unexpected executor {connection.executorId!r} connected")
        self.harness = await _connectWs(self.reactor, rendezvous.harnessUrl(self.executorId))
        defer.ensureDeferred(self._pump())
        self.url = f"relay {rendezvous.baseUrl} executor {self.executorId}"

    def connect(self) -> Deferred[Connection]:
        from twisted_exec.wire.frames import encodeResume

        streamId = str(uuid.uuid4())
        conn = RelayConnection(self, streamId)
        self._streams[streamId] = conn
        self.sendFrame(encodeResume(streamId, 0))
        return defer.succeed(conn)

    def sendFrame(self, raw: bytes) -> None:
        self.harness.sendBinary(raw)

    async def _pump(self) -> None:
        """Route the frames the rendezvous sends this harness to their streams."""
        from twisted_exec.wire import relay_pb2

        while True:
            ev = await self.harness.receive()
            if ev.kind == "closed":
                for each in self._streams.values():
                    each.ended("harness websocket closed", ev.at)
                return
            if ev.kind != "binary":
                continue
            frame = relay_pb2.RelayMessageFrame()
            frame.ParseFromString(base64.b64decode(ev.data))
            conn = self._streams.get(frame.stream_id)
            if conn is None:
                continue
            body = frame.WhichOneof("body")
            if body == "data":
                text = frame.data.payload.decode("utf-8", "replace")
                conn.queue.put(Event("text", text, ev.at))
            elif body == "reset":
                conn.ended(f"reset: {frame.reset.reason}", ev.at)

    async def _stop(self) -> None:
        if self.harness is not None:
            await self.harness.close()
        await super()._stop()


class RelayConnection:
    """A :class:`Connection` over one relay stream."""

    def __init__(self, target: RelayTarget, streamId: str) -> None:
        self.target = target
        self.streamId = streamId
        self.queue: DeferredQueue[Event] = DeferredQueue()
        self._nextSeq = 0
        self._ended = False

    def send(self, text: str) -> None:
        from twisted_exec.wire.frames import encodeData

        payload = text.encode("utf-8", "surrogateescape")
        self.target.sendFrame(encodeData(self.streamId, self._nextSeq, payload))
        self._nextSeq = (self._nextSeq + 1) % 2**32

    def receive(self) -> Deferred[Event]:
        return self.queue.get()

    def ended(self, why: str, at: float) -> None:
        if not self._ended:
            self._ended = True
            self.queue.put(Event("closed", why, at))

    def close(self) -> Deferred[None]:
        from twisted_exec.wire.frames import encodeReset

        if not self._ended:
            self.target.sendFrame(encodeReset(self.streamId, "conformance closed"))
            self.ended("reset by harness", self.target.reactor.seconds())
        return defer.succeed(None)


# --------------------------------------------------------------------------------------------
# Stdio transport (--stdio): each connection is one executor child speaking on stdin/stdout
# --------------------------------------------------------------------------------------------


class StdioTarget:
    """A server in ``--listen stdio`` mode: every :meth:`connect` spawns a fresh child (a stdio
    executor serves exactly one session, and stdin EOF ends it), so only sessions with a single
    connection can run here."""

    def __init__(self, reactor: Any, name: str, argv: Sequence[str], env: dict[str, str], cwd: str):
        self.reactor = reactor
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd
        self.url = "stdio"
        self._children: list[StdioConnection] = []

    def start(self) -> Deferred[None]:
        return defer.succeed(None)

    def connect(self) -> Deferred[Connection]:
        conn = StdioConnection(self.reactor)
        self.reactor.spawnProcess(conn, self.argv[0], self.argv, env=self.env, path=self.cwd)
        self._children.append(conn)
        return defer.succeed(conn)

    async def _stop(self) -> None:
        for conn in self._children:
            await conn.close()

    def stop(self) -> Deferred[None]:
        return defer.ensureDeferred(self._stop())


class StdioConnection(protocol.ProcessProtocol):
    """A :class:`Connection` over a child's stdin and stdout: one JSON message per line."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.queue: DeferredQueue[Event] = DeferredQueue()
        self.ended: Deferred[None] = Deferred()
        self._buf = b""

    def outReceived(self, data: bytes) -> None:
        self._buf += data
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            text = line.decode("utf-8", "replace")
            self.queue.put(Event("text", text, self.reactor.seconds()))

    def processEnded(self, reason: Failure) -> None:
        self.queue.put(Event("closed", "stdout closed", self.reactor.seconds()))
        if not self.ended.called:
            self.ended.callback(None)

    def send(self, text: str) -> None:
        if self.transport is not None and not self.ended.called:
            self.transport.write(text.encode("utf-8", "surrogateescape") + b"\n")

    def receive(self) -> Deferred[Event]:
        return self.queue.get()

    async def _close(self) -> None:
        if self.ended.called or self.transport is None:
            return
        self.transport.closeStdin()
        for sig in ("TERM", "KILL"):
            waiter: Deferred[None] = Deferred()
            _fireWhenDone(self.ended, waiter)
            waiter.addTimeout(3.0, self.reactor)
            try:
                await waiter
                return
            except defer.TimeoutError:
                with contextlib.suppress(error.ProcessExitedAlready):
                    self.transport.signalProcess(sig)

    def close(self) -> Deferred[None]:
        return defer.ensureDeferred(self._close())


def connectionCount(script: Any) -> int:
    """How many connections a session opens (the first one implicitly)."""
    named = {step["open"] for step in script.steps if "open" in step}
    return max(1, len(named | {"a"}) if not named else len(named))


# --------------------------------------------------------------------------------------------
# Session scripts: loading and substitution (no IO beyond reading the files)
# --------------------------------------------------------------------------------------------


class ScriptError(ValueError):
    """A session script is malformed."""


STEP_KINDS = ("send", "sendText", "sendBinary", "open", "close", "sleepMs", "collect")
STEP_OPTIONS = ("conn", "until", "quietMs", "timeoutMs", "capture", "note")
SETUP_OPS = {"mkdir": 1, "write": 2, "symlink": 2, "chmod": 2}


@dataclass
class SessionScript:
    name: str
    description: str
    steps: list[dict[str, Any]]
    setup: list[list[Any]] = field(default_factory=list)
    mergeOutput: frozenset[str] = frozenset()


def parseScript(name: str, text: str) -> SessionScript:
    """Parse and validate one session script (JSON text)."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ScriptError(f"{name}: not JSON: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
        raise ScriptError(f"{name}: expected an object with a 'steps' list")
    setup = doc.get("setup", [])
    merge = doc.get("mergeOutput", [])
    if not (isinstance(merge, list) and all(isinstance(p, str) for p in merge)):
        raise ScriptError(f"{name}: 'mergeOutput' must be a list of processIds")
    if not isinstance(setup, list):
        raise ScriptError(f"{name}: 'setup' must be a list")
    for op in setup:
        if not (isinstance(op, list) and op and op[0] in SETUP_OPS):
            raise ScriptError(f"{name}: bad setup op {op!r}")
        if len(op) != SETUP_OPS[op[0]] + 1:
            raise ScriptError(f"{name}: setup op {op[0]} takes {SETUP_OPS[op[0]]} arguments")
    for i, step in enumerate(doc["steps"]):
        if not isinstance(step, dict):
            raise ScriptError(f"{name}: step {i} is not an object")
        kinds = [k for k in STEP_KINDS if k in step]
        if len(kinds) != 1:
            raise ScriptError(f"{name}: step {i} needs exactly one of {STEP_KINDS}: {step!r}")
        unknown = set(step) - set(STEP_KINDS) - set(STEP_OPTIONS)
        if unknown:
            raise ScriptError(f"{name}: step {i} has unknown keys {sorted(unknown)}")
        until = step.get("until")
        if until is not None and not (
            isinstance(until, list) and all(isinstance(m, dict) for m in until)
        ):
            raise ScriptError(f"{name}: step {i}: 'until' must be a list of objects")
        cap = step.get("capture")
        if cap is not None and not (isinstance(cap, dict) and "send" in step):
            raise ScriptError(f"{name}: step {i}: 'capture' needs a send step and an object")
    return SessionScript(
        name=name,
        description=str(doc.get("description", "")),
        steps=list(doc["steps"]),
        setup=setup,
        mergeOutput=frozenset(str(p) for p in doc.get("mergeOutput", [])),
    )


def loadScripts(directory: Path, only: Iterable[str] = ()) -> list[SessionScript]:
    wanted = set(only)
    scripts = []
    for path in sorted(directory.glob("*.json")):
        if wanted and path.stem not in wanted:
            continue
        scripts.append(parseScript(path.stem, path.read_text(encoding="utf-8")))
    return scripts


_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute(value: Any, variables: dict[str, str]) -> Any:
    """Replace ``${NAME}`` in strings, and expand ``{"__b64": text}`` /
    ``{"__b64repeat": [text, n]}`` helper objects into base64 strings."""
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            if m.group(1) not in variables:
                raise ScriptError(f"undefined variable ${{{m.group(1)}}}")
            return variables[m.group(1)]

        return _VAR_RE.sub(repl, value)
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__b64"}:
            raw = substitute(value["__b64"], variables)
            return base64.b64encode(raw.encode("utf-8")).decode()
        if set(value) == {"__b64repeat"}:
            text, count = value["__b64repeat"]
            return base64.b64encode(str(text).encode("utf-8") * int(count)).decode()
        return {k: substitute(v, variables) for k, v in value.items()}
    return value


def matches(pattern: Any, value: Any) -> bool:
    """Subset match: every key of a pattern object must match in ``value``."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and matches(v, value[k]) for k, v in pattern.items()
        )
    return bool(pattern == value and type(pattern) is type(value))


def lookup(message: Any, dotted: str) -> Any:
    cur = message
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------


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
                # compared by tests/test_dialect_integration.py, not here
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
                # each executor's environment (exact values: tests/test_dialect_integration.py)
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


def processSummary(msgs: Sequence[dict[str, Any]]) -> list[str]:
    """One process's notifications, seq-insensitive but complete.

    The reference sometimes numbers ``process/exited`` before the last ``process/output`` (its
    seq assignment is racy), so seq numbers are not compared one by one: the outputs are listed
    in seq order with their stream and data, then exited and closed, then the set of seqs
    (which must be contiguous: 1..N, or a later range on a resumed connection).
    """

    def seqOf(m: dict[str, Any]) -> int:
        seq = (m.get("params") or {}).get("seq")
        return seq if isinstance(seq, int) else -1

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

    def seqOf(m: dict[str, Any]) -> int:
        seq = (m.get("params") or {}).get("seq")
        return seq if isinstance(seq, int) else -1

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


# --------------------------------------------------------------------------------------------
# Running a session
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Comparison and report
# --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    identical: bool
    known: str | None
    diff: list[str]
    orderProblems: list[str]


def compare(
    name: str,
    ref: Transcript,
    ours: Transcript,
    refName: str,
    oursName: str,
    known: dict[str, str] | None = None,
) -> Outcome:
    diff = list(difflib.unified_diff(ref.lines, ours.lines, refName, oursName, lineterm="", n=3))
    return Outcome(
        name=name,
        identical=not diff,
        known=(KNOWN_DIFFERENCES if known is None else known).get(name),
        diff=diff,
        orderProblems=ours.orderProblems,
    )


def report(
    outcomes: Sequence[Outcome],
    write: Callable[[str], None],
    verbose: bool,
    startupProblems: Sequence[str] = (),
    known: dict[str, str] | None = None,
) -> int:
    """Print the per-session results and the summary; return the exit status."""
    unexpected = len(startupProblems)
    for problem in startupProblems:
        write(f"startup: DIFFERENT: {problem}")
    for o in outcomes:
        if o.identical and not o.orderProblems:
            status = "same" + (" (listed as a known difference, but identical)" if o.known else "")
        elif o.identical:
            status = "DIFFERENT (notification order)"
        elif o.known:
            status = "different (known, deliberate)"
        else:
            status = "DIFFERENT"
        write(f"{o.name}: {status}")
        if (o.orderProblems or not o.identical) and not o.known:
            unexpected += 1
        if not o.identical and (not o.known or verbose):
            for line in o.diff:
                write("    " + line)
        for p in o.orderProblems:
            write(f"    out of seq order: {p}")
    same = sum(1 for o in outcomes if o.identical and not o.orderProblems)
    differ = len(outcomes) - same
    knownCount = sum(1 for o in outcomes if not o.identical and o.known)
    write("")
    write("Known, deliberate differences (reported, not failing):")
    for name, reason in sorted((KNOWN_DIFFERENCES if known is None else known).items()):
        write(f"  - {name}: {reason}")
    write(
        "  - process notifications: compared per process (outputs in seq order, then exited and "
        "closed, then the seq set); the reference's delivery order and even its seq assignment "
        "are racy (exited may take a seq before the last output), ours is strictly by seq "
        "(checked separately, for ours only)"
    )
    write(
        "  - PATH of inheriting children: the reference prepends its private helper directory "
        "($CODEX_HOME/tmp/arg0/codex-arg0XXXXXX); stripped before comparing"
    )
    write("")
    write(
        f"{len(outcomes)} sessions: {same} identical, {differ} differ "
        f"({knownCount} known/deliberate, {unexpected} unexpected"
        + (f", {len(startupProblems)} startup problem(s)" if startupProblems else "")
        + ")"
    )
    return 1 if unexpected else 0


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def recordTranscript(directory: Path, name: str, transcript: Transcript) -> None:
    """The reference's transcript of one session, as a golden file."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.txt").write_text("\n".join(transcript.lines) + "\n")


def readGolden(directory: Path, name: str) -> list[str]:
    return (directory / f"{name}.txt").read_text().splitlines()


def findReference(explicit: str | None, v171: bool = False) -> Path | None:
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    variable = "CODEX_171_BIN" if v171 else "CODEX_BIN"
    if os.environ.get(variable):
        candidates.append(Path(os.environ[variable]))
    candidates.extend(REFERENCE_171_CANDIDATES if v171 else REFERENCE_CANDIDATES)
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    return None


def pluginShim(runRoot: Path) -> Path:
    """A directory that makes ``twistd`` find our plugin when run from the source tree.

    ``twisted.plugins`` extends its ``__path__`` with every ``twisted/plugins`` directory on
    ``sys.path``; a symlink to ``twistd_plugins/codex_executor.py`` there is enough, without
    installing anything.
    """
    shim = runRoot / "plugin-shim"
    plugins = shim / "twisted" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "codex_executor.py"
    if not link.exists():
        link.symlink_to(REPO / "twistd_plugins" / "codex_executor.py")
    return shim


def serverEnv(extraPythonPath: str = "") -> dict[str, str]:
    """One environment for both servers, so that `inherit: all` children see the same thing.

    It carries the variables both need (CODEX_HOME for the reference, PYTHONPATH for ours) plus
    a few CONF_* variables the envPolicy sessions look at; TMPDIR is left out (the reference
    refuses to create its helper binaries under a temporary directory).
    """
    codexHome = os.environ.get("CODEX_HOME", str(CODEX_HOME_DEFAULT))
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "CODEX_HOME": codexHome,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), extraPythonPath) if p),
        "CONF_PLAIN": "plain",
        "CONF_API_KEY": "k",
        "CONF_SECRET_X": "s",
        "CONF_MY_TOKEN": "t",
        "CONF_OTHER": "other",
    }


TWISTD_MAIN = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


def oursArgv(python: str, remote: bool = False) -> list[str]:
    # `python -m twisted.scripts.twistd` does nothing (that module has no __main__ block)
    argv = [python, "-c", TWISTD_MAIN, "-n", "--pidfile=", "codex-executor"]
    return argv if remote else [*argv, "--listen", "ws://127.0.0.1:0"]


def referenceArgv(binary: Path, remote: bool = False) -> list[str]:
    if remote:
        return [str(binary), "exec-server"]  # RelayTarget adds --remote URL --executor-id ID
    return [str(binary), "exec-server", "--listen", "ws://127.0.0.1:0"]


def stdioArgv(argv: list[str]) -> list[str]:
    """The same server in ``--listen stdio`` mode."""
    if "--listen" in argv:
        index = argv.index("--listen")
        return [*argv[:index], "--listen", "stdio", *argv[index + 2 :]]
    return [*argv, "--listen", "stdio"]


def parseArgs(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--codex-bin", help="the reference codex binary (default: $CODEX_BIN, vendor/)")
    p.add_argument(
        "--ours-cmd",
        help="command that starts our server in local mode (default: twistd -n --pidfile= "
        "codex-executor --listen ws://127.0.0.1:0, run from this source tree)",
    )
    p.add_argument("--python", default=sys.executable, help="python that runs our server")
    p.add_argument(
        "--ref-vs-ref",
        action="store_true",
        help="compare the reference with itself (to develop scripts, or to see flaky sessions)",
    )
    p.add_argument(
        "--remote",
        action="store_true",
        help="run every session through a relay instead: both executors in remote mode "
        "(--remote URL --executor-id ID) behind one in-process registry and rendezvous, one "
        "virtual stream per connection",
    )
    p.add_argument(
        "--record",
        metavar="DIR",
        help="write the reference's normalised transcript of each session to DIR/NAME.txt "
        "(conformance/golden/ holds them for tests/test_conformance_golden.py)",
    )
    p.add_argument("--only", nargs="*", default=[], help="session names to run")
    p.add_argument(
        "--stdio",
        action="store_true",
        help="run the single-connection sessions over stdio instead (--listen stdio; each "
        "connection is a fresh executor child)",
    )
    p.add_argument(
        "--v171",
        action="store_true",
        help="the 0.171 dialect: sessions of conformance/v171/ against Codex 0.171.0 "
        "($CODEX_171_BIN, vendor/codex-0.171.0/codex)",
    )
    p.add_argument("--sessions", default=None, help="directory of session scripts")
    p.add_argument("--keep", action="store_true", help="keep the per-run directory")
    p.add_argument("--dump", action="store_true", help="print every transcript")
    p.add_argument("-v", "--verbose", action="store_true", help="show diffs of known differences")
    return p.parse_args(argv)


async def amain(reactor: Any, args: argparse.Namespace) -> int:
    ref = findReference(args.codex_bin, args.v171)
    if ref is None:
        print("reference binary not found, skipping comparison")
        return 0
    sessions = args.sessions or str(SESSIONS_171_DIR if args.v171 else SESSIONS_DIR)
    scripts = loadScripts(Path(sessions), args.only)
    known = KNOWN_DIFFERENCES_171 if args.v171 else KNOWN_DIFFERENCES
    if args.remote:
        for script in [s for s in scripts if s.name in LOCAL_ONLY]:
            print(f"{script.name}: skipped in remote mode ({LOCAL_ONLY[script.name]})")
            scripts.remove(script)
    if args.stdio:
        for script in [s for s in scripts if connectionCount(s) > 1 or s.name in LOCAL_ONLY]:
            print(f"{script.name}: skipped over stdio (one stdio executor serves one connection)")
            scripts.remove(script)
    runRoot = Path(tempfile.mkdtemp(prefix="conformance-"))
    env = serverEnv(str(pluginShim(runRoot)))
    cloud = RelayCloud(reactor) if args.remote else None

    def target(name: str, argv: list[str]) -> Any:
        if args.stdio:
            return StdioTarget(reactor, name, stdioArgv(argv), env, str(runRoot))
        if cloud is None:
            return LocalWsTarget(reactor, name, argv, env, str(runRoot))
        executorId = f"conformance-{name.replace('#', '-')}"
        return RelayTarget(reactor, name, argv, env, str(runRoot), cloud, executorId)

    refTarget = target("reference", referenceArgv(ref, args.remote))
    if args.ref_vs_ref:
        other = target("reference#2", referenceArgv(ref, args.remote))
    else:
        cmd = shlex.split(args.ours_cmd) if args.ours_cmd else oursArgv(args.python, args.remote)
        other = target("ours", cmd)
    targets = (refTarget, other)
    outcomes = []
    try:
        for t in targets:
            await t.start()
            print(f"{t.name}: {t.url}  ({' '.join(t.argv)})")
        for script in scripts:
            transcripts = []
            for t in targets:
                # both targets see the same path text, so it normalises identically
                runDir = runRoot / f"t{targets.index(t)}" / script.name
                transcripts.append(await SessionRunner(reactor, t, runDir).run(script))
            if args.record:
                recordTranscript(Path(args.record), script.name, transcripts[0])
            outcome = compare(
                script.name,
                transcripts[0],
                transcripts[1],
                targets[0].name,
                targets[1].name,
                known,
            )
            timing = ", ".join(
                f"{t.name} {tr.elapsed:.1f}s" for t, tr in zip(targets, transcripts, strict=True)
            )
            print(f"  {script.name}: {timing}", file=sys.stderr)
            if args.dump:
                for t, tr in zip(targets, transcripts, strict=True):
                    print(f"==== {script.name} on {t.name} ({tr.elapsed:.2f}s)")
                    print("\n".join(tr.lines))
            outcomes.append(outcome)
    finally:
        for t in targets:
            await t.stop()
        if cloud is not None:
            await cloud.stop()
        if not args.keep:
            shutil.rmtree(runRoot, ignore_errors=True)
    print()
    startup = []
    if getattr(getattr(other, "_proto", None), "urlOnStderr", False):
        startup.append(
            f"{other.name} printed its URL only into its log on stderr, not on stdout "
            "(twistd redirects sys.stdout to the logger; write to sys.__stdout__)"
        )
    return report(outcomes, print, args.verbose, startup, known)


def main(argv: Sequence[str] | None = None) -> None:
    from twisted.internet import task

    args = parseArgs(sys.argv[1:] if argv is None else argv)

    def run(reactor: Any) -> Deferred[None]:
        async def go() -> None:
            code = await amain(reactor, args)
            if code:
                raise SystemExit(code)

        return defer.ensureDeferred(go())

    task.react(run)


if __name__ == "__main__":
    main()
