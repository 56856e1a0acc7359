"""Conformance: ``http/request`` and stdio mode, the reference binary vs twisted-exec.

Both executors are spawned as a harness would, ``--listen stdio`` (ours: ``python -m
twisted_exec.executor.stdio_main``), and driven with the same cases against the same loopback
twisted.web
server (``tests/test_http_request.py``'s, whose ``/echo`` reports the raw request lines). The
transcripts are normalised (ports, ``date``, session ids, timings) and compared case by case.

    python scripts/conformance_http_stdio.py [--only ours|ref] [--json OUT] [--cases NAME,...] \
        [--big-mb 50]

The reference is ``$CODEX_BIN``, else ``vendor/codex-0.131.0/...`` (``scripts/fetch_codex.sh``);
it runs with ``CODEX_HOME=$CODEX_HOME_PROBE`` (default ``/work/codexhome``, created if missing:
the reference refuses a CODEX_HOME under /tmp).

Exit status 0 when every case matches except the ones listed in ``KNOWN`` (documented
differences), 1 otherwise. ``--only`` just prints one side's transcripts.

``scripts/conformance.py`` plays the JSON-RPC session scripts (local websocket and relay); this
script covers what those cannot: the HTTP requests the executor makes, and the stdio transport.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
import time
from typing import Any

from twisted.internet import defer, protocol, task
from twisted.internet import reactor as _reactor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from tests.test_http_request import makeSite

reactor: Any = _reactor

_VENDORED = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..",
    "vendor/codex-0.131.0/package/vendor/x86_64-unknown-linux-musl/codex/codex",
)
REFERENCE = os.environ.get("CODEX_BIN", os.path.normpath(_VENDORED))
PYTHON = sys.executable
CODEX_HOME = os.environ.get("CODEX_HOME_PROBE", "/work/codexhome")


def command(target: str) -> list[str]:
    if target == "ref":
        return [REFERENCE, "exec-server", "--listen", "stdio"]
    return [PYTHON, "-m", "twisted_exec.executor.stdio_main"]


def environment() -> dict[str, str]:
    os.makedirs(CODEX_HOME, exist_ok=True)
    env = dict(os.environ, CODEX_HOME=CODEX_HOME)
    env.pop("TMPDIR", None)
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


# -- the cases --------------------------------------------------------------------------------

GET = {"method": "GET", "url": "BASE/echo", "requestId": "r"}


def case(name: str, wait: float = 10.0, **params: Any) -> dict[str, Any]:
    merged = dict(GET)
    merged.update(params)
    return {"name": name, "params": merged, "wait": wait}


CASES: list[dict[str, Any]] = [
    case("get"),
    case(
        "post-binary-headers",
        method="POST",
        bodyBase64="AAEC/w==",
        headers=[
            {"name": "X-A", "value": "1"},
            {"name": "x-a", "value": "2"},
            {"name": "Content-Type", "value": "x/y"},
            {"name": "X-Empty", "value": ""},
        ],
    ),
    case("post-without-body", method="POST"),
    case("get-with-body", bodyBase64="aGk="),
    case("response-headers", url="BASE/rawheaders"),
    case(
        "redirect-302-post",
        method="POST",
        url="BASE/redirect?to=/echo",
        bodyBase64="aGk=",
        headers=[{"name": "Authorization", "value": "x"}],
    ),
    case(
        "redirect-307-post", method="POST", url="BASE/redirect?to=/echo&code=307", bodyBase64="aGk="
    ),
    case(
        "redirect-cross-host",
        url="BASE/redirect?to=http://localhost:PORT/echo",
        headers=[{"name": "Authorization", "value": "x"}, {"name": "Cookie", "value": "c"}],
    ),
    case("redirect-chain", url="BASE/redirect?to=/redirect"),
    case("redirect-loop", url="BASE/loop"),
    case("status-204", url="BASE/status/204"),
    case("status-404", url="BASE/status/404"),
    case("status-500", url="BASE/status/500"),
    case("gzip-untouched", url="BASE/gzip"),
    case("head", method="HEAD"),
    case("userinfo", url="http://u:p@127.0.0.1:PORT/echo#frag"),
    case(
        "given-host-ua-accept",
        url="BASE/echo?a=b c",
        headers=[
            {"name": "Host", "value": "example.com"},
            {"name": "User-Agent", "value": "ua"},
            {"name": "Accept", "value": "text/plain"},
        ],
    ),
    case("method-lowercase", method="get"),
    case("method-custom", method="CUSTOM"),
    case("header-utf8-value", headers=[{"name": "X-A", "value": "é"}]),
    case("url-upper-scheme", url="HTTP://127.0.0.1:PORT/echo"),
    case("url-backslash", url="http://127.0.0.1:PORT\\echo"),
    case("url-non-ascii-path", url="BASE/é?q=é"),
    # streamed
    case("stream-chunked", url="BASE/chunked?count=3&size=8&delay=0.15", streamResponse=True),
    case(
        "stream-first-now",
        url="BASE/chunked?count=2&size=8&delay=0.1&first=now",
        streamResponse=True,
    ),
    case("stream-small", url="BASE/status/404", streamResponse=True),
    case("stream-204", url="BASE/status/204", streamResponse=True),
    case("stream-reset", url="BASE/reset?after=0.2", streamResponse=True),
    case("stream-closeearly", url="BASE/closeearly?after=0.2", streamResponse=True),
    case("stream-timeout", url="BASE/stall", streamResponse=True, timeoutMs=300),
    case("stream-big", url="BASE/bytes?n=5242880", streamResponse=True),
    # errors
    case("buffered-reset", url="BASE/reset?after=0.2"),
    case("buffered-closeearly", url="BASE/closeearly?after=0.2"),
    case("timeout-body", url="BASE/stall", timeoutMs=300),
    case("timeout-headers", url="BASE/slow?delay=1", timeoutMs=300),
    case("timeout-headers-stream", url="BASE/slow?delay=1", timeoutMs=300, streamResponse=True),
    case("timeout-zero", timeoutMs=0),
    case("refused", url="http://127.0.0.1:1/x?q#f"),
    case("refused-stream", url="http://127.0.0.1:1/", streamResponse=True),
    case("dns-failure", url="http://nonexistent.invalid/"),
    case("https-to-plain-port", url="https://127.0.0.1:PORT/echo", timeoutMs=3000),
]

for index, url in enumerate(
    [
        "not a url",
        "",
        "/echo",
        "http://",
        "http://user@/",
        "http://127.0.0.1:99999/",
        "http://127.0.0.1:1a/",
        "http://[::1/",
        "http://256.1.1.1/",
        "http://a b/",
        "http://xn--a/",
        "ftp://x/",
        "file:///etc/passwd",
        "ws://x/",
        "mailto:x@y",
        "http://127.0.0.1:1",
        "http://127.0.0.1:80/",
        "HTTP://Local.Host:1/A/../b/./c",
        'http://127.0.0.1:1/a b<>"{}|`^',
        "http://0x7f.1:1/",
        "http://[::1]:1/",
        "http://127.1:1/",
        "http://ÉXAMPLE.invalid/",
    ]
):
    CASES.append(case(f"url-{index}:{url}", url=url, wait=5))
for index, method in enumerate(["GE T", "", "GéT"]):
    CASES.append(case(f"method-{index}:{method}", method=method))
for index, header in enumerate(
    [
        {"name": "a b", "value": "1"},
        {"name": "", "value": "1"},
        {"name": ":", "value": "1"},
        {"name": "Ä", "value": "1"},
        {"name": "X-A", "value": "a\nb"},
        {"name": "X-A", "value": "a\u0000b"},
        {"name": "X-A", "value": "\u007f"},
    ]
):
    CASES.append(case(f"header-{index}:{json.dumps(header)}", headers=[header]))
for body in ["!", "A", "AB", "AB==", "QUJ=", "AAAAA", "ab cd", "YWJj\n"]:
    CASES.append(case(f"base64:{body!r}", method="POST", bodyBase64=body))
CASES += [
    case("order:base64-first", bodyBase64="!", method="G T", url="ftp://x/"),
    case("order:method-before-url", method="G T", url="ftp://x/"),
    case("order:url-before-header", url="nope", headers=[{"name": "a b", "value": "1"}]),
    {"name": "params-null", "params": None, "wait": 5},
    {"name": "params-array-6", "params": ["GET", "BASE/echo", [], None, None, "id"], "wait": 5},
    {"name": "params-array-3", "params": ["GET", "BASE/echo", []], "wait": 5},
    {"name": "params-array-8", "params": ["GET", "BASE/echo", [], None, None, "id", False, 1]},
    {"name": "missing-requestId", "params": {"method": "GET", "url": "BASE/echo"}},
    case("headers-null", headers=None),
    case("stream-null", streamResponse=None),
    case("body-null-timeout-null", bodyBase64=None, timeoutMs=None),
    case("timeout-negative", timeoutMs=-1),
    case("headers-object", headers={"a": "b"}),
    case("header-missing-value", headers=[{"name": "X"}]),
    case("header-as-array", headers=[["X-Z", "1"]]),
]

# Differences we know and accept (see the report in the module docstring of http_request.py).
KNOWN: dict[str, str] = {
    "post-binary-headers": "Twisted writes Content-Length first (reference: last)",
    "post-without-body": "Twisted sends Content-Length: 0 on a body-less POST (reference: none)",
    "get-with-body": "Content-Length position",
    "redirect-307-post": "Content-Length position",
    "redirect-302-post": "Content-Length position (first hop)",
    "timeout-zero": "reference still sends the request, we do not (both answer the same error)",
    "base64:'AB=='": "nothing (kept to catch regressions)",
}


# -- running ----------------------------------------------------------------------------------


class Executor(protocol.ProcessProtocol):
    """A stdio executor: JSON lines out, raw stderr kept, exit code recorded."""

    def __init__(self) -> None:
        self.buffer = b""
        self.messages: list[dict[str, Any]] = []
        self.rawLines: list[bytes] = []
        self.stderr = b""
        self.ended: defer.Deferred[int | None] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.rawLines.append(line)
            try:
                message = json.loads(line)
            except ValueError:
                message = {"__notjson__": line.decode("utf-8", "replace")}
            message["_t"] = time.monotonic()
            self.messages.append(message)

    def errReceived(self, data: bytes) -> None:
        self.stderr += data

    @property
    def process(self) -> Any:
        """The process transport (set once spawned)."""
        return self.transport

    def processEnded(self, reason: Any) -> None:
        self.ended.callback(reason.value.exitCode)

    def send(self, message: Any) -> None:
        raw = message if isinstance(message, bytes) else json.dumps(message).encode()
        self.process.write(raw + b"\n")


def spawn(target: str) -> Executor:
    executor = Executor()
    argv = command(target)
    reactor.spawnProcess(executor, argv[0], argv, env=environment())
    return executor


async def waitFor(executor: Executor, start: int, predicate: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in executor.messages[start:]:
            if predicate(message):
                return message
        await task.deferLater(reactor, 0.005, lambda: None)
    return None


def substitute(value: Any, base: str, port: int) -> Any:
    text = json.dumps(value).replace("BASE", base).replace("PORT", str(port))
    return json.loads(text)


async def runHttpCases(target: str, cases: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    site, endpoints = makeSite(reactor)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    number = port.getHost().port
    base = f"http://127.0.0.1:{number}"
    executor = spawn(target)
    executor.send({"id": 0, "method": "initialize", "params": {"clientName": "probe"}})
    await waitFor(executor, 0, lambda m: m.get("id") == 0, 10)
    executor.send({"method": "initialized"})
    transcripts: dict[str, Any] = {}
    for index, spec in enumerate(cases or CASES, 1):
        params = substitute(spec["params"], base, number)
        if isinstance(params, dict) and "requestId" in params:
            params["requestId"] = f"q{index}"
        start = len(executor.messages)
        endpoints.seen.clear()
        began = time.monotonic()
        executor.send({"id": index, "method": "http/request", "params": params})
        reply = await waitFor(
            executor, start, lambda m, i=index: m.get("id") == i, spec.get("wait", 10)
        )
        if (
            reply is not None
            and "result" in reply
            and isinstance(params, dict)
            and params.get("streamResponse")
        ):
            await waitFor(
                executor,
                start,
                lambda m, i=index: (
                    m.get("method") == "http/request/bodyDelta"
                    and m["params"]["requestId"] == f"q{i}"
                    and m["params"]["done"]
                ),
                spec.get("wait", 10),
            )
        await task.deferLater(reactor, 0.05, lambda: None)
        messages = executor.messages[start:]
        transcripts[spec["name"]] = {
            "messages": [normalise(m, began) for m in messages],
            "order": [orderTag(m) for m in messages],
            "sent": [r["raw"] for r in endpoints.seen],
            "sentBodies": [r["bodyBase64"] for r in endpoints.seen],
            "elapsed": round(time.monotonic() - began, 3),
        }
        endpoints.cancelCalls()
    executor.process.closeStdin()
    transcripts["__exit__"] = {"code": await executor.ended}
    for channel in list(site.connections):  # type: ignore[attr-defined]
        channel.transport.abortConnection()
    await port.stopListening()
    return transcripts


def orderTag(message: dict[str, Any]) -> str:
    if "id" in message:
        return "reply"
    if message.get("method") == "http/request/bodyDelta":
        return "delta-done" if message["params"]["done"] else "delta"
    return str(message.get("method"))


def normalise(message: dict[str, Any], began: float) -> dict[str, Any]:
    message = json.loads(json.dumps(message))
    message.pop("_t", None)
    result = message.get("result")
    if isinstance(result, dict) and "headers" in result:
        result["headers"] = [h for h in result["headers"] if h["name"] != "date"]
        body = base64.b64decode(result.pop("bodyBase64"))
        result["bodyLength"] = len(body)
        if b'"raw"' in body:
            result["body"] = json.loads(body)
        elif len(body) <= 200:
            result["body"] = body.decode("latin-1")
    if message.get("method") == "http/request/bodyDelta":
        params = message["params"]
        params["deltaLength"] = len(base64.b64decode(params["deltaBase64"]))
        if params["deltaLength"] > 64:
            params["deltaBase64"] = "<elided>"
    return message


def scrub(value: Any) -> Any:
    text = json.dumps(value)
    text = re.sub(r"(127\.0\.0\.1|localhost):\d{4,5}", r"\1:PORT", text)
    text = re.sub(r'"content-length", "value": "\d+"', '"content-length", "value": "N"', text)
    return json.loads(text)


def streamShape(transcript: dict[str, Any]) -> dict[str, Any]:
    """Streams compare by content and order, not by how the bytes were split into deltas."""
    deltas = [
        m["params"] for m in transcript["messages"] if m.get("method") == "http/request/bodyDelta"
    ]
    replies = [m for m in transcript["messages"] if "id" in m]
    order = transcript["order"]
    return {
        "replies": replies,
        "replyFirst": bool(order) and order[0] == "reply",
        "bytes": sum(d["deltaLength"] for d in deltas),
        "seqs": [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1)),
        "final": deltas[-1] if deltas else None,
        "sent": transcript["sent"],
    }


def comparable(name: str, transcript: dict[str, Any]) -> Any:
    if name.startswith("stream-"):
        shape = streamShape(transcript)
        if shape["final"] is not None:
            shape["final"] = {k: shape["final"][k] for k in ("done", "error", "deltaLength")}
        return scrub(shape)
    return scrub({k: transcript[k] for k in ("messages", "sent", "sentBodies")})


def compare(ref: dict[str, Any], ours: dict[str, Any]) -> list[tuple[str, str, Any, Any]]:
    """(case, verdict, ref, ours) for every case: verdict is same, known or DIFF."""
    rows = []
    for name in ref:
        left = comparable(name, ref[name]) if name != "__exit__" else ref[name]
        right = comparable(name, ours[name]) if name != "__exit__" else ours.get(name)
        if left == right:
            rows.append((name, "same", left, right))
        elif name in KNOWN:
            rows.append((name, "known", left, right))
        else:
            rows.append((name, "DIFF", left, right))
    return rows


# -- stdio mode -------------------------------------------------------------------------------

STDIO_CASES: list[tuple[str, list[bytes]]] = [
    ("blank-lines", [b"", b"   ", b"\t", b"\r"]),
    ("crlf", [b'{"id":1,"method":"initialize","params":{"clientName":"x"}}\r']),
    ("not-json", [b"hello"]),
    ("truncated", [b'{"id":1,"method":"in']),
    ("json-string", [b'"str"']),
    ("id-only", [b'{"id":73}']),
    ("nul-byte", [b"\x00"]),
    ("leading-space", [b'   {"id":2,"method":"initialize","params":{"clientName":"x"}}']),
    ("pretty-printed", [b'{"id":3,', b'"method":"initialize"}']),
]


async def runStdioCases(target: str) -> dict[str, Any]:
    """Each case in a fresh executor: its replies; then the EOF behaviour with a live process."""
    out: dict[str, Any] = {}
    for name, lines in STDIO_CASES:
        executor = spawn(target)
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
    out["eof-kills"] = await _eofKills(target)
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


async def _eofKills(target: str) -> dict[str, Any]:
    import tempfile

    directory = tempfile.mkdtemp(prefix="probe-eof-", dir=os.path.expanduser("~"))
    pidFile = os.path.join(directory, "pid")
    executor = spawn(target)
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


# -- memory: a 50 MB stream through our stdio executor ------------------------------------------


async def bigStream(target: str, megabytes: int) -> dict[str, Any]:
    """Stream ``megabytes`` MB through the executor; report its peak RSS (VmHWM) and timing."""
    site, _ = makeSite(reactor)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    base = f"http://127.0.0.1:{port.getHost().port}"
    executor = spawn(target)
    executor.send({"id": 0, "method": "initialize", "params": {"clientName": "probe"}})
    await waitFor(executor, 0, lambda m: m.get("id") == 0, 10)
    executor.send({"method": "initialized"})
    pid = executor.process.pid
    baseline = _hwm(pid)
    total = megabytes * 1000 * 1000
    began = time.monotonic()
    executor.send(
        {
            "id": 1,
            "method": "http/request",
            "params": {
                "method": "GET",
                "url": f"{base}/bytes?n={total}",
                "requestId": "big",
                "streamResponse": True,
            },
        }
    )
    done = await waitFor(
        executor,
        0,
        lambda m: m.get("method") == "http/request/bodyDelta" and m["params"]["done"],
        120,
    )
    elapsed = time.monotonic() - began
    peak = _hwm(pid)
    received = sum(
        len(base64.b64decode(m["params"]["deltaBase64"]))
        for m in executor.messages
        if m.get("method") == "http/request/bodyDelta"
    )
    deltas = sum(1 for m in executor.messages if m.get("method") == "http/request/bodyDelta")
    executor.messages.clear()
    executor.process.closeStdin()
    await executor.ended
    await port.stopListening()
    return {
        "bytes": received,
        "complete": done is not None and received == total,
        "deltas": deltas,
        "seconds": round(elapsed, 2),
        "MBps": round(total / elapsed / 1e6, 1),
        "baselineKiB": baseline,
        "peakKiB": peak,
        "growthKiB": None if peak is None or baseline is None else peak - baseline,
    }


def _hwm(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# -- main -------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    cases = CASES
    if args.cases:
        wanted = set(args.cases.split(","))
        cases = [c for c in CASES if c["name"] in wanted]
    targets = [args.only] if args.only else ["ref", "ours"]
    if "ref" in targets and not os.access(REFERENCE, os.X_OK):
        print(f"reference binary not found at {REFERENCE}, skipping comparison")
        return 0
    results: dict[str, Any] = {}
    for target in targets:
        results[target] = {
            "http": await runHttpCases(target, cases),
            "stdio": await runStdioCases(target),
            "bigStream": await bigStream(target, args.big_mb),
        }
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1, default=str)
    if args.only:
        print(json.dumps(results, indent=1, default=str)[:200000])
        return 0
    failures = 0
    for title, rows in (
        ("http/request", compare(results["ref"]["http"], results["ours"]["http"])),
        ("stdio", compareStdio(results["ref"]["stdio"], results["ours"]["stdio"])),
    ):
        print(f"== {title}")
        for name, verdict, left, right in rows:
            print(f"{verdict:5} {name}")
            if verdict != "same":
                note = KNOWN.get(name)
                if note:
                    print(f"      known: {note}")
                print(f"      ref : {json.dumps(left, ensure_ascii=False)[:700]}")
                print(f"      ours: {json.dumps(right, ensure_ascii=False)[:700]}")
            failures += verdict == "DIFF"
    for target in targets:
        print(f"== {args.big_mb} MB stream, {target}: {json.dumps(results[target]['bigStream'])}")
    print(f"== {failures} unexplained difference(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--only", choices=["ref", "ours"])
    parser.add_argument("--json")
    parser.add_argument("--cases")
    parser.add_argument("--big-mb", type=int, default=50)
    options = parser.parse_args()
    status: list[int] = []

    def failed(failure: Any) -> None:
        failure.printTraceback(file=sys.stderr)
        status.append(2)

    def start() -> None:
        d = defer.ensureDeferred(main(options))
        d.addCallback(status.append)
        d.addErrback(failed)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run()
    sys.exit(status[0] if status else 2)
