"""End to end: the real Codex CLI 0.131.0 sends its tool calls to an exec-server.

The CLI runs ``codex exec`` against a fake Responses API on loopback (scripted model turns), with
``CODEX_EXEC_SERVER_URL`` pointing at a recording websocket proxy in front of the exec-server under
test: the reference (``codex exec-server --listen``) or ours (``twistd -n codex-executor
--listen``).  ``codex exec`` exits 0 even when the exec-server fails, so every check is on
effects: files the command and the patch wrote, the command's parent process, and what the CLI
reported back to the model.

Skipped when the CLI binary is absent (``scripts/fetch_codex.sh`` fetches it).  Set
``CODEX_E2E_TRANSCRIPT_DIR`` to keep the normalised websocket transcripts of each run.
"""

from __future__ import annotations

import base64
import contextlib
import difflib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet import defer, error
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol, ServerFactory
from twisted.python.failure import Failure
from twisted.trial import unittest

from tests.support.reference import binary131
from twisted_exec.testing.fake_responses import (
    API_KEY_ENV,
    FakeResponsesAPI,
    JsonObject,
    Turn,
    assistantMessage,
    codexConfigToml,
    customToolCall,
    functionCall,
)
from twisted_exec.testing.ws_recorder import CLIENT_TO_SERVER, RecordedEvent, WebSocketRecorder

ROOT = Path(__file__).resolve().parent.parent

# Starts twistd with our plugin from the source tree: ``twistd_plugins/`` is only mapped onto
# ``twisted/plugins/`` by a regular install, so add it to the plugin path unless installed.
_OURS_LAUNCHER = """\
import sys, twisted.plugins
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
plugins = sys.argv.pop(1)
if not any(getattr(p, "tapname", "") == "codex-executor" for p in getPlugins(IServiceMaker)):
    twisted.plugins.__path__.append(plugins)
from twisted.scripts.twistd import run
sys.argv[0] = "twistd"
run()
"""

START_TIMEOUT = 20.0
CLI_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0

MODEL = "gpt-5.2-codex"  # offers both exec_command and apply_patch
AGENTS_TEXT = "e2e: project instructions read through the exec-server\n"
MARKER = "e2e-marker.txt"
# POSIX sh (the CLI runs it with the user's login shell): records the shell's parent and prints
# its own pid, parent, process group and session from /proc.
EXEC_CMD = (
    f'echo "$PPID" > {MARKER}; set -- $(cat /proc/$$/stat); echo "pid=$1 ppid=$4 pgid=$5 sid=$6"'
)
PATCH = (
    "*** Begin Patch\n"
    "*** Add File: e2e-added.txt\n"
    "+added by apply_patch\n"
    "*** Update File: e2e-edit.txt\n"
    "@@\n"
    "-before\n"
    "+after\n"
    "*** End Patch\n"
)
TTY_CMD = 'read -r line; echo "got:$line"'
FINAL_TEXT = "e2e done"


def _isUnder(path: Path, ancestor: Path) -> bool:
    return path == ancestor or ancestor in path.parents


def freshBaseDir(case: unittest.TestCase) -> Path:
    """A fresh directory for one run, removed afterwards (unless $CODEX_E2E_KEEP is set).

    It is made in the current directory (trial's ``_trial_temp``, or the checkout under pytest)
    unless that is under /tmp or $TMPDIR, where the CLI refuses to set up CODEX_HOME; then
    under ``~/.cache``.  Runs share the parent, so their transcripts differ only in the name."""
    parent = Path.cwd().resolve()
    temps = [Path("/tmp").resolve(), Path(tempfile.gettempdir()).resolve()]
    if any(_isUnder(parent, t) for t in temps):
        parent = Path.home() / ".cache" / "twisted-exec-e2e"
        parent.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="codex-e2e-", dir=parent))
    if not os.environ.get("CODEX_E2E_KEEP"):
        case.addCleanup(shutil.rmtree, base, True)
    return base


def childEnv(codexHome: Path, **extra: str) -> dict[str, str]:
    """A small, predictable environment; TMPDIR is dropped when it is an ancestor of
    CODEX_HOME (the CLI refuses to create helper binaries under a temporary dir)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(codexHome)),
        "LANG": "C.UTF-8",
        "CODEX_HOME": str(codexHome),
    }
    tmpdir = os.environ.get("TMPDIR")
    if tmpdir and not _isUnder(codexHome.resolve(), Path(tmpdir).resolve()):
        env["TMPDIR"] = tmpdir
    env.update(extra)
    return env


# --- processes ---------------------------------------------------------------------------------


class _Collector(ProcessProtocol):
    """Collects a child's output; ``ended`` fires with its exit code (None when signalled).

    ``onLine`` sees every complete line of stdout."""

    def __init__(self, onLine: Callable[[str], None] | None = None) -> None:
        self.stdout = b""
        self.stderr = b""
        self.ended: Deferred[int | None] = Deferred()
        self._onLine = onLine
        self._partial = {1: b"", 2: b""}

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == 1:
            self.stdout += data
        elif childFD == 2:
            self.stderr += data
        if self._onLine is not None and childFD == 1:
            *lines, self._partial[childFD] = (self._partial[childFD] + data).split(b"\n")
            for line in lines:
                self._onLine(line.decode("utf-8", "replace").strip())

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(getattr(reason.value, "exitCode", None))


def _firstOf(d: Deferred[Any], timeout: float, reactor: Any) -> Deferred[Any]:
    """A copy of ``d``'s result that times out, leaving ``d`` itself untouched."""
    copy: Deferred[Any] = Deferred()

    def passOn(result: Any) -> Any:
        if not copy.called:
            copy.callback(result)
        return result

    d.addBoth(passOn)
    return copy.addTimeout(timeout, reactor)


async def _stopProcess(reactor: Any, transport: Any, proto: _Collector) -> None:
    """SIGTERM, then SIGKILL, each with a bounded wait."""
    for sig in ("TERM", "KILL"):
        if proto.ended.called:
            return
        with contextlib.suppress(error.ProcessExitedAlready):
            transport.signalProcess(sig)
        try:
            await _firstOf(proto.ended, STOP_TIMEOUT, reactor)
            return
        except defer.TimeoutError:
            continue


# Both print the bound URL alone on a line of stdout (port 0 picks a free port).
_URL_LINE = re.compile(r"^(ws://127\.0\.0\.1:(\d+))$")


@dataclass
class ExecServer:
    """An exec-server child process in local websocket mode."""

    kind: str
    url: str
    pid: int
    transport: Any
    proto: _Collector

    async def stop(self, reactor: Any) -> None:
        await _stopProcess(reactor, self.transport, self.proto)


def serverArgv(kind: str, codex: Path) -> list[str]:
    if kind == "reference":
        return [str(codex), "exec-server", "--listen", "ws://127.0.0.1:0"]
    return [
        sys.executable,
        "-c",
        _OURS_LAUNCHER,
        str(ROOT / "twistd_plugins"),
        "-n",
        "--pidfile=",
        "codex-executor",
        "--listen",
        "ws://127.0.0.1:0",
    ]


async def startExecServer(reactor: Any, kind: str, codex: Path, base: Path) -> ExecServer:
    home = base / f"{kind}-server-home"
    home.mkdir()
    env = childEnv(home)
    if kind == "ours":
        env["PYTHONPATH"] = str(ROOT)
    found: Deferred[str] = Deferred()

    def onLine(line: str) -> None:
        match = _URL_LINE.match(line)
        if match and match.group(2) != "0" and not found.called:
            found.callback(match.group(1))

    proto = _Collector(onLine)
    transport = reactor.spawnProcess(
        proto, serverArgv(kind, codex)[0], serverArgv(kind, codex), env=env, path=str(base)
    )

    def ended(code: int | None) -> int | None:
        if not found.called:
            found.errback(
                RuntimeError(f"{kind} exec-server exited ({code}): {proto.stderr[-2000:]!r}")
            )
        return code

    proto.ended.addCallback(ended)
    try:
        url = await found.addTimeout(START_TIMEOUT, reactor)
    except defer.TimeoutError:
        await _stopProcess(reactor, transport, proto)
        raise AssertionError(
            f"{kind} exec-server printed no URL in {START_TIMEOUT} s; stdout "
            f"{proto.stdout[-2000:]!r}, stderr {proto.stderr[-2000:]!r}"
        ) from None
    except BaseException:
        await _stopProcess(reactor, transport, proto)
        raise
    return ExecServer(kind, url, transport.pid, transport, proto)


@dataclass
class CliRun:
    exitCode: int | None
    stdout: str
    stderr: str


async def runCodexExec(
    reactor: Any, codex: Path, env: Mapping[str, str], workdir: Path, prompt: str
) -> CliRun:
    """``codex exec`` with stdin closed, bounded by CLI_TIMEOUT."""
    argv = [
        str(codex),
        "exec",
        "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",
        "--color",
        "never",
        "-C",
        str(workdir),
        prompt,
    ]
    proto = _Collector()
    transport = reactor.spawnProcess(proto, argv[0], argv, env=dict(env), path=str(workdir))
    transport.closeStdin()
    try:
        code = await _firstOf(proto.ended, CLI_TIMEOUT, reactor)
    except defer.TimeoutError:
        await _stopProcess(reactor, transport, proto)
        raise
    return CliRun(
        code, proto.stdout.decode("utf-8", "replace"), proto.stderr.decode("utf-8", "replace")
    )


# --- one scenario ------------------------------------------------------------------------------


@dataclass
class Scenario:
    """Everything one CLI run left behind."""

    base: Path
    workdir: Path
    server: ExecServer | None
    cli: CliRun
    api: FakeResponsesAPI
    events: list[RecordedEvent] = field(default_factory=list)

    def toolOutput(self, callId: str) -> str:
        """The text the CLI sent back to the model for ``callId``."""
        for body in self.api.responseBodies:
            for item in body.get("input", []):
                if item.get("call_id") == callId and item.get("type", "").endswith("_output"):
                    output = item.get("output")
                    return output if isinstance(output, str) else json.dumps(output)
        raise AssertionError(f"no output for {callId} in {len(self.api.requests)} model requests")

    def messages(self, direction: str | None = None) -> list[JsonObject]:
        return [
            json.loads(e.payload)
            for e in self.events
            if e.kind == "text" and (direction is None or e.direction == direction)
        ]


async def runScenario(
    case: unittest.TestCase,
    reactor: Any,
    codex: Path,
    kind: str,
    turns: Iterable[Turn],
    *,
    reachable: bool = True,
    prepare: Callable[[Path], None] = lambda workdir: None,
    model: str = MODEL,
    transcriptName: str | None = None,
) -> Scenario:
    """Start the exec-server (``kind``), the proxy and the fake API; run ``codex exec`` once.

    With ``reachable=False`` the exec-server is started and stopped again before the CLI runs, so
    the CLI is pointed at a port where nobody listens any more. ``model`` is the one the CLI's
    config names (it decides which tools the CLI offers); the transcript kept under
    ``CODEX_E2E_TRANSCRIPT_DIR`` is named ``transcriptName`` (``kind`` unless given).
    """
    base = freshBaseDir(case)
    workdir, cliHome = base / "work", base / "cli-home"
    workdir.mkdir()
    cliHome.mkdir()
    prepare(workdir)

    server = await startExecServer(reactor, kind, codex, base)
    case.addCleanup(lambda: defer.ensureDeferred(server.stop(reactor)))
    api = FakeResponsesAPI(turns)
    api.listen(reactor)
    case.addCleanup(api.stopListening)
    recorder: WebSocketRecorder | None = None
    if reachable:
        recorder = WebSocketRecorder(reactor, server.url)
        recorder.listen()
        case.addCleanup(recorder.stop)
        url = recorder.url
    else:
        await server.stop(reactor)
        url = server.url

    (cliHome / "config.toml").write_text(codexConfigToml(api.baseUrl, model))
    env = childEnv(cliHome, **{API_KEY_ENV: "sk-e2e-fake", "CODEX_EXEC_SERVER_URL": url})
    cli = await runCodexExec(reactor, codex, env, workdir, "run the end-to-end script")
    if recorder is not None:
        await recorder.stop()
    await api.stopListening()
    scenario = Scenario(base, workdir, server, cli, api, list(recorder.events) if recorder else [])
    _keepTranscript(scenario, transcriptName or kind, case)
    return scenario


def _writeToSession(body: JsonObject) -> Sequence[JsonObject]:
    """write_stdin to the session the interactive command left running (its id is in the text
    the CLI sent back for ``call_tty``, and is the exec-server's processId)."""
    outputs = [i for i in body["input"] if i.get("call_id") == "call_tty" and "output" in i]
    match = re.search(r"session ID (\d+)", str(outputs[-1]["output"]) if outputs else "")
    if match is None:
        return [assistantMessage(f"no session in {outputs!r}")]
    arguments = {"session_id": int(match.group(1)), "chars": "typed\n", "yield_time_ms": 5000}
    return [functionCall("call_write", "write_stdin", arguments)]


def mainTurns() -> list[Turn]:
    return [
        [functionCall("call_exec", "exec_command", {"cmd": EXEC_CMD})],
        [customToolCall("call_patch", "apply_patch", PATCH)],
        # An interactive command on a pty, still waiting for input when the call returns.
        [
            functionCall(
                "call_tty", "exec_command", {"cmd": TTY_CMD, "tty": True, "yield_time_ms": 250}
            )
        ],
        _writeToSession,
        [assistantMessage(FINAL_TEXT)],
    ]


def prepareWorkdir(workdir: Path) -> None:
    (workdir / "AGENTS.md").write_text(AGENTS_TEXT)
    (workdir / "e2e-edit.txt").write_text("before\n")


# --- transcripts -------------------------------------------------------------------------------

_PIDS_LINE = re.compile(r"pid=(\d+) ppid=(\d+) pgid=(\d+) sid=(\d+)")


class Normaliser:
    """Rewrites what differs between runs (paths, uuids, process ids, pids, mtimes) to
    placeholders, and decodes base64 payloads so that a transcript reads as text."""

    def __init__(self, base: Path, serverPid: int | None) -> None:
        self.base = str(base)
        self.serverPid = serverPid
        self.processIds: dict[str, str] = {}

    def text(self, value: str) -> str:
        value = value.replace(self.base, "<BASE>")
        return _PIDS_LINE.sub(self._pids, value)

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


def _keepTranscript(scenario: Scenario, kind: str, case: unittest.TestCase) -> None:
    where = os.environ.get("CODEX_E2E_TRANSCRIPT_DIR")
    if not where or not scenario.events:
        return
    pid = scenario.server.pid if scenario.server else None
    lines = transcript(scenario.events, Normaliser(scenario.base, pid))
    name = f"codex-cli-transcript-{kind}-{case._testMethodName}.jsonl"
    Path(where).mkdir(parents=True, exist_ok=True)
    with open(Path(where) / name, "w") as f:
        for line in lines:
            f.write(json.dumps(line, sort_keys=False) + "\n")


def assertCompleted(case: unittest.TestCase, s: Scenario) -> None:
    """The CLI ran the whole conversation: exit 0, the final text, every turn asked for."""
    assert s.server is not None
    case.assertEqual(s.cli.exitCode, 0, s.cli.stderr)
    case.assertIn(FINAL_TEXT, s.cli.stdout)
    case.assertEqual(s.api.unexpected, [])
    case.assertEqual(len(s.api.requests), len(mainTurns()), s.cli.stderr)


def assertCommandRanInTheServer(case: unittest.TestCase, s: Scenario) -> list[Any]:
    """exec_command's child wrote the marker and is a direct child of the exec-server leading
    its own session (setsid, hence its own process group), as the reference's is. Returns the
    ``process/start`` requests (the command's first)."""
    assert s.server is not None
    case.assertEqual((s.workdir / MARKER).read_text().strip(), str(s.server.pid))
    out = s.toolOutput("call_exec")
    case.assertIn("Process exited with code 0", out)
    match = _PIDS_LINE.search(out)
    case.assertIsNotNone(match, out)
    assert match is not None
    pid, ppid, pgid, sid = (int(match.group(i)) for i in range(1, 5))
    case.assertEqual((ppid, pgid, sid), (s.server.pid, pid, pid), out)
    starts = [m for m in s.messages(CLIENT_TO_SERVER) if m.get("method") == "process/start"]
    case.assertEqual(len(starts), 2)
    case.assertEqual(starts[0]["params"]["argv"][-1], EXEC_CMD)
    return starts


def assertPatchWroteThroughFs(
    case: unittest.TestCase, s: Scenario, hostPath: Callable[[str], str]
) -> None:
    """apply_patch's two files have their new text, written with ``fs/writeFile`` (whose
    ``path`` ``hostPath`` turns into a host path: 0.171 sends ``file:`` URIs)."""
    case.assertEqual((s.workdir / "e2e-added.txt").read_text(), "added by apply_patch\n")
    case.assertEqual((s.workdir / "e2e-edit.txt").read_text(), "after\n")
    writes = {
        hostPath(m["params"]["path"]): base64.b64decode(m["params"]["dataBase64"]).decode()
        for m in s.messages(CLIENT_TO_SERVER)
        if m.get("method") == "fs/writeFile"
    }
    case.assertEqual(
        writes,
        {
            str(s.workdir / "e2e-added.txt"): "added by apply_patch\n",
            str(s.workdir / "e2e-edit.txt"): "after\n",
        },
    )


def assertWriteStdinReachedTheTty(case: unittest.TestCase, s: Scenario, echoed: str) -> None:
    """The tty command started, and write_stdin's text came back in its output as ``echoed``."""
    case.assertIn("Process running with session ID", s.toolOutput("call_tty"))
    written = s.toolOutput("call_write")
    case.assertIn("Process exited with code 0", written)
    case.assertIn(echoed, written)


# --- the tests ---------------------------------------------------------------------------------


class CodexScenarioMixin:
    """Scenarios run against the exec-server named by ``kind`` (``reference`` or ``ours``),
    driven by the Codex CLI that ``locate`` finds (skipping the test when it finds none)."""

    kind: str
    locate: Callable[[], str]

    def setUp(self) -> None:
        self.codex = Path(type(self).locate())
        from twisted.internet import reactor

        self.reactor: Any = reactor


class _CodexCliE2EMixin(CodexScenarioMixin):
    """The scenarios, run against the exec-server named by ``kind``."""

    locate = staticmethod(binary131)

    async def _main(self) -> Scenario:
        case: unittest.TestCase = self  # type: ignore[assignment]
        return await runScenario(
            case, self.reactor, self.codex, self.kind, mainTurns(), prepare=prepareWorkdir
        )

    def test_execCommandAndApplyPatch(self) -> Deferred[None]:
        """exec_command runs through the exec-server (its child writes the marker and is a child
        of the exec-server, leading its own session); apply_patch edits files through fs/*;
        AGENTS.md is read through fs/readFile."""
        return defer.ensureDeferred(self._checkMain())

    async def _checkMain(self) -> None:
        case: unittest.TestCase = self  # type: ignore[assignment]
        s = await self._main()
        assertCompleted(case, s)

        # (a) the command ran as a child of the exec-server, in its own process group.
        assertCommandRanInTheServer(case, s)

        # (b) apply_patch read and wrote the files through fs/*.
        case.assertRegex(
            s.toolOutput("call_patch"),
            r"^Exit code: 0\nWall time: [0-9.]+ seconds\nOutput:\n"
            r"Success\. Updated the following files:\nA e2e-added\.txt\nM e2e-edit\.txt\n$",
        )
        assertPatchWroteThroughFs(case, s, lambda path: path)

        # (a') an interactive command: tty on the exec-server, write_stdin is process/write.
        assertWriteStdinReachedTheTty(case, s, "typed\r\ngot:typed\r\n")
        requests = s.messages(CLIENT_TO_SERVER)
        ttyStart = next(
            m for m in requests if m.get("method") == "process/start" and m["params"]["tty"]
        )
        case.assertEqual(ttyStart["params"]["argv"][-1], TTY_CMD)
        writes_ = [m["params"] for m in requests if m.get("method") == "process/write"]
        case.assertEqual(
            writes_, [{"processId": ttyStart["params"]["processId"], "chunk": "dHlwZWQK"}]
        )

        # Project context comes from the exec-server's filesystem too.
        reads = [
            m["params"]["path"]
            for m in s.messages(CLIENT_TO_SERVER)
            if m.get("method") == "fs/readFile"
        ]
        case.assertIn(str(s.workdir / "AGENTS.md"), reads)
        case.assertIn(AGENTS_TEXT.strip(), json.dumps(s.api.responseBodies[0]["input"]))

    def test_unreachable(self) -> Deferred[None]:
        """With the exec-server gone, the command fails and the model is told why."""
        return defer.ensureDeferred(self._checkUnreachable())

    async def _checkUnreachable(self) -> None:
        case: unittest.TestCase = self  # type: ignore[assignment]
        turns: list[Turn] = [
            [functionCall("call_exec", "exec_command", {"cmd": EXEC_CMD})],
            [assistantMessage(FINAL_TEXT)],
        ]
        s = await runScenario(case, self.reactor, self.codex, self.kind, turns, reachable=False)
        assert s.server is not None
        # It still exits 0: judge by effects.
        case.assertEqual(s.cli.exitCode, 0, s.cli.stderr)
        case.assertFalse((s.workdir / MARKER).exists())
        failure = (
            f"failed to connect to exec-server websocket `{s.server.url}`: "
            "IO error: Connection refused (os error 111)"
        )
        out = s.toolOutput("call_exec")
        case.assertTrue(out.startswith("exec_command failed for `"), out)
        case.assertIn(f"Failed to create unified exec process: {failure}", out)
        case.assertIn(f"error trying to find AGENTS.md docs: {failure}", s.cli.stderr)


class ReferenceExecServerTests(_CodexCliE2EMixin, unittest.TestCase):
    """The scenarios against ``codex exec-server --listen`` (shows the test itself works)."""

    kind = "reference"


class OurExecutorTests(_CodexCliE2EMixin, unittest.TestCase):
    """The scenarios against ``twistd -n codex-executor --listen``."""

    kind = "ours"

    def test_sameConversationAsReference(self) -> Deferred[None]:
        """Everything the CLI sent gets the same answers from ours as from the reference
        (up to timing: see :func:`semanticView`)."""
        return defer.ensureDeferred(self._compare())

    async def _compare(self) -> None:
        # CODEX_E2E_COMPARE=reference,reference checks that the comparison tolerates the
        # reference's own run-to-run variation.
        left, right = os.environ.get("CODEX_E2E_COMPARE", "reference,ours").split(",")
        views = []
        for kind in (left, right):
            s = await runScenario(
                self, self.reactor, self.codex, kind, mainTurns(), prepare=prepareWorkdir
            )
            assert s.server is not None
            views.append(semanticView(s.events, Normaliser(s.base, s.server.pid)))
        if views[0] != views[1]:
            diff = "\n".join(
                difflib.unified_diff(views[0], views[1], left, right, lineterm="", n=1)
            )
            self.fail(f"our executor answered the CLI differently:\n{diff}")


# --- the helpers themselves (no Codex binary needed) -------------------------------------------


def _sseEvents(body: bytes) -> list[tuple[str, JsonObject]]:
    events = []
    for block in body.decode().split("\n\n"):
        if not block:
            continue
        eventLine, dataLine = block.split("\n")
        events.append((eventLine.removeprefix("event: "), json.loads(dataLine[len("data: ") :])))
    return events


class FakeResponsesAPITests(unittest.TestCase):
    """The fake model over real loopback HTTP."""

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor

    async def _post(self, api: FakeResponsesAPI, path: str, body: bytes) -> tuple[int, bytes]:
        import treq

        headers: dict[bytes | str, bytes | str] = {
            "Authorization": "Bearer sk-secret",
            "Content-Type": "application/json",
        }
        response = await treq.post(
            api.baseUrl.removesuffix("/v1") + path,
            data=body,
            headers=headers,
            reactor=self.reactor,
            persistent=False,
        ).addTimeout(10, self.reactor)
        content = await treq.content(response).addTimeout(10, self.reactor)
        return response.code, content

    def test_scriptedTurnsAsServerSentEvents(self) -> Deferred[None]:
        async def run() -> None:
            seen: list[JsonObject] = []

            def second(body: JsonObject) -> Sequence[JsonObject]:
                seen.append(body)
                return [assistantMessage("bye")]

            api = FakeResponsesAPI([[functionCall("c1", "exec_command", {"cmd": "true"})], second])
            api.listen(self.reactor)
            self.addCleanup(api.stopListening)
            code, first = await self._post(api, "/v1/responses", b'{"n": 1}')
            self.assertEqual(code, 200)
            self.assertEqual(
                _sseEvents(first),
                [
                    (
                        "response.created",
                        {"type": "response.created", "response": {"id": "resp_1"}},
                    ),
                    (
                        "response.output_item.done",
                        {
                            "type": "response.output_item.done",
                            "output_index": 0,
                            "item": {
                                "type": "function_call",
                                "id": "fc_c1",
                                "call_id": "c1",
                                "name": "exec_command",
                                "arguments": '{"cmd": "true"}',
                                "status": "completed",
                            },
                        },
                    ),
                    (
                        "response.completed",
                        {
                            "type": "response.completed",
                            "response": {
                                "id": "resp_1",
                                "usage": {
                                    "input_tokens": 0,
                                    "input_tokens_details": {"cached_tokens": 0},
                                    "output_tokens": 0,
                                    "output_tokens_details": {"reasoning_tokens": 0},
                                    "total_tokens": 0,
                                },
                            },
                        },
                    ),
                ],
            )
            _, second_ = await self._post(api, "/v1/responses", b'{"n": 2}')
            self.assertEqual(seen, [{"n": 2}])
            self.assertEqual(_sseEvents(second_)[1][1]["item"], assistantMessage("bye"))
            _, third = await self._post(api, "/v1/responses", b'{"n": 3}')
            self.assertIn("script exhausted", json.dumps(_sseEvents(third)[1][1]["item"]))
            self.assertEqual(api.responseBodies, [{"n": 1}, {"n": 2}, {"n": 3}])
            # Credentials are never recorded.
            self.assertNotIn("authorization", api.requests[0].headers)
            self.assertEqual(api.unexpected, [])

        return defer.ensureDeferred(run())

    def test_otherPathsAreRecorded404s(self) -> Deferred[None]:
        async def run() -> None:
            api = FakeResponsesAPI()
            api.listen(self.reactor)
            self.addCleanup(api.stopListening)
            code, _ = await self._post(api, "/v1/models", b"{}")
            self.assertEqual(code, 404)
            code, _ = await self._post(api, "/v1/responses", b"not json")
            self.assertEqual(code, 400)
            self.assertEqual([(r.method, r.path) for r in api.unexpected], [("POST", "/v1/models")])

        return defer.ensureDeferred(run())

    def test_configToml(self) -> None:
        toml = codexConfigToml("http://127.0.0.1:1/v1", "gpt-5.2-codex")
        self.assertIn('base_url = "http://127.0.0.1:1/v1"\n', toml)
        self.assertIn(f'env_key = "{API_KEY_ENV}"\n', toml)
        self.assertIn('model = "gpt-5.2-codex"\n', toml)
        self.assertIn("request_max_retries = 0\n", toml)


class WebSocketRecorderTests(unittest.TestCase):
    """The recording proxy between a websocket client and an echo server, over loopback."""

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor

    def _echoServer(self) -> str:
        from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol

        class Echo(WebSocketServerProtocol):  # type: ignore[misc]
            def onMessage(self, payload: bytes, isBinary: bool) -> None:
                request = json.loads(payload)
                self.sendMessage(json.dumps({"method": "note", "params": {}}).encode())
                self.sendMessage(json.dumps({"id": request["id"], "result": request}).encode())

        factory = WebSocketServerFactory(reactor=self.reactor)
        factory.setProtocolOptions(openHandshakeTimeout=0, closeHandshakeTimeout=0)
        factory.protocol = Echo
        port: Any = self.reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return f"ws://127.0.0.1:{port.getHost().port}"

    def test_forwardsAndRecordsBothDirections(self) -> Deferred[None]:
        from twisted_exec.testing.wsclient import connectJsonRpc

        async def run() -> None:
            recorder = WebSocketRecorder(self.reactor, self._echoServer())
            recorder.listen()
            self.addCleanup(recorder.stop)
            client = await connectJsonRpc(self.reactor, recorder.url)
            result = await client.call("x/y", {"a": 1}).addTimeout(10, self.reactor)
            self.assertEqual(result, {"id": 1, "method": "x/y", "params": {"a": 1}})
            await recorder.stop().addTimeout(10, self.reactor)
            await client.closed.addTimeout(10, self.reactor)
            self.assertEqual(
                [(e.connection, e.direction, e.kind, e.payload) for e in recorder.events][:4],
                [
                    (1, "c2s", "open", b""),
                    (1, "c2s", "text", b'{"id": 1, "method": "x/y", "params": {"a": 1}}'),
                    (1, "s2c", "text", b'{"method": "note", "params": {}}'),
                    (
                        1,
                        "s2c",
                        "text",
                        b'{"id": 1, "result": {"id": 1, "method": "x/y", "params": {"a": 1}}}',
                    ),
                ],
            )
            self.assertEqual({e.kind for e in recorder.events[4:]}, {"close"})

        return defer.ensureDeferred(run())

    def test_unreachableUpstreamClosesTheClient(self) -> Deferred[None]:
        from twisted_exec.testing.wsclient import connectJsonRpc

        async def run() -> None:
            port: Any = self.reactor.listenTCP(0, ServerFactory(), interface="127.0.0.1")
            url = f"ws://127.0.0.1:{port.getHost().port}"
            await port.stopListening()
            recorder = WebSocketRecorder(self.reactor, url)
            recorder.listen()
            self.addCleanup(recorder.stop)
            client = await connectJsonRpc(self.reactor, recorder.url)
            await client.closed.addTimeout(10, self.reactor)
            self.assertEqual(
                next(
                    (e.direction, e.kind, e.payload) for e in recorder.events if e.kind == "close"
                ),
                ("s2c", "close", b"connect-failed"),
            )

        return defer.ensureDeferred(run())


class NormaliserTests(unittest.TestCase):
    """Transcript normalisation and the order-free comparison view (pure functions)."""

    def _events(self, *messages: tuple[str, JsonObject]) -> list[RecordedEvent]:
        return [
            RecordedEvent(1, d, "text", json.dumps(m).encode(), float(i))
            for i, (d, m) in enumerate(messages)
        ]

    def test_normalise(self) -> None:
        n = Normaliser(Path("/x/base"), serverPid=100)
        chunk = base64.b64encode(b"pid=7 ppid=100 pgid=7 sid=3\n").decode()
        self.assertEqual(
            n.message(
                {
                    "params": {
                        "processId": "9931",
                        "cwd": "/x/base/work",
                        "chunk": chunk,
                        "env": {"CODEX_THREAD_ID": "abc"},
                        "modifiedAtMs": 17,
                        "createdAtMs": 0,
                    },
                    "result": {"sessionId": "u-u-i-d"},
                }
            ),
            {
                "params": {
                    "processId": "<process 1>",
                    "cwd": "<BASE>/work",
                    "chunk": "b64:pid=<self> ppid=<server> pgid=<self> sid=<other>\n",
                    "env": {"CODEX_THREAD_ID": "<CODEX_THREAD_ID>"},
                    "modifiedAtMs": "<ms>",
                    "createdAtMs": 0,
                },
                "result": {"sessionId": "<sessionId>"},
            },
        )
        self.assertEqual(n.value("processId", "42"), "<process 2>")
        self.assertEqual(n.value("processId", "9931"), "<process 1>")

    def _conversation(self, readReplies: int, firstPath: str, exitCode: int) -> list[RecordedEvent]:
        out = base64.b64encode(b"hi\n").decode()
        messages: list[tuple[str, JsonObject]] = [
            ("c2s", {"method": "initialized", "params": {}}),
            ("c2s", {"id": 1, "method": "fs/getMetadata", "params": {"path": firstPath}}),
            ("c2s", {"id": 2, "method": "fs/getMetadata", "params": {"path": "/b"}}),
            ("s2c", {"id": 2, "error": {"code": -32004, "message": "nf"}}),
            ("s2c", {"id": 1, "error": {"code": -32004, "message": "nf"}}),
            ("c2s", {"id": 3, "method": "process/start", "params": {"processId": "p"}}),
            ("s2c", {"id": 3, "result": {"processId": "p"}}),
        ]
        for i in range(readReplies):
            messages.append(("c2s", {"id": 10 + i, "method": "process/read", "params": {}}))
            messages.append(("s2c", {"id": 10 + i, "result": {"chunks": [], "nextSeq": i}}))
        messages += [
            (
                "s2c",
                {
                    "method": "process/exited",
                    "params": {"processId": "p", "seq": 2, "exitCode": exitCode},
                },
            ),
            (
                "s2c",
                {
                    "method": "process/output",
                    "params": {"processId": "p", "seq": 1, "stream": "stdout", "chunk": out},
                },
            ),
        ]
        return self._events(*messages)

    def test_viewIgnoresOrderIdsAndReads(self) -> None:
        view = semanticView(self._conversation(1, "/a", 0), Normaliser(Path("/x"), None))
        self.assertEqual(
            view, semanticView(self._conversation(3, "/a", 0), Normaliser(Path("/x"), None))
        )
        self.assertIn(
            json.dumps(
                {"process": {"exitCode": 0, "processId": "<process 1>", "stdout": "hi\n"}},
                sort_keys=True,
            ),
            view,
        )
        self.assertIn(json.dumps({"client": {"method": "initialized", "params": {}}}), view)

    def test_viewSeesDifferentAnswers(self) -> None:
        view = semanticView(self._conversation(1, "/a", 0), Normaliser(Path("/x"), None))
        self.assertNotEqual(
            view, semanticView(self._conversation(1, "/c", 0), Normaliser(Path("/x"), None))
        )
        self.assertNotEqual(
            view, semanticView(self._conversation(1, "/a", 1), Normaliser(Path("/x"), None))
        )
