"""The local websocket's Origin and auth answers of Codex 0.171 and of ours, side by side.

    PYTHONPATH=. python scripts/ws_auth_side_by_side.py [--codex-bin PATH] [--json]

Starts ``codex exec-server --listen ws://127.0.0.1:0`` and ``python -m twisted_exec --listen
ws://127.0.0.1:0`` three times each (no auth, ``--ws-auth capability-token --ws-token-file F``,
``--ws-auth signed-bearer-token --ws-shared-secret-file F --ws-issuer --ws-audience``), sends both
the same raw upgrade requests and prints one row per request: the status and body each answered,
and whether they agree. Exits 1 when a row differs (other than the rows marked ``ours only``:
our Host check, which the reference does not have). The reference runs with ``CODEX_HOME`` in a
fresh folder under ``/work/scratch`` (it refuses one under /tmp).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol, task

from twisted_exec.testing.rawhttp import Response, rawExchange, upgradeRequest

REPO = Path(__file__).resolve().parent.parent
CANDIDATES = (REPO / "vendor/codex-0.171.0/codex", Path("/work/main/vendor/codex-0.171.0/codex"))
DEFAULT_BIN = next((c for c in CANDIDATES if c.exists()), CANDIDATES[0])
TOKEN = "side-by-side-capability-token"
SECRET = b"side-by-side-shared-secret-0123456789"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(claims: dict[str, Any], secret: bytes = SECRET, header: bytes | None = None) -> str:
    head = b64(header or b'{"alg":"HS256","typ":"JWT"}')
    signing = f"{head}.{b64(json.dumps(claims).encode())}"
    return f"{signing}.{b64(hmac.new(secret, signing.encode(), hashlib.sha256).digest())}"


class _Server(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.url: defer.Deferred[str] = defer.Deferred()
        self.ended: defer.Deferred[None] = defer.Deferred()
        self._out = b""
        self.err = b""

    def outReceived(self, data: bytes) -> None:
        self._out += data
        if b"\n" in self._out and not self.url.called:
            self.url.callback(self._out.split(b"\n")[0].decode().strip())

    def errReceived(self, data: bytes) -> None:
        self.err += data[:4096]

    def processEnded(self, reason: Any) -> None:
        if not self.url.called:
            self.url.errback(RuntimeError(f"exited before listening: {self.err[-500:]!r}"))
        self.ended.callback(None)


async def serve(reactor: Any, argv: list[str], env: dict[str, str]) -> tuple[Any, str, _Server]:
    server = _Server()
    transport = reactor.spawnProcess(server, argv[0], argv, env=env, path=str(REPO))
    url = await server.url.addTimeout(30, reactor)
    return transport, url, server


def cases(now: int) -> list[tuple[str, str, list[tuple[str, str]], bool]]:
    """(mode, name, headers, oursOnly)."""
    bearer = [("Authorization", f"Bearer {TOKEN}")]
    good = {"exp": now + 60, "iss": "side", "aud": "exec"}

    def signed(name: str, token: str) -> tuple[str, str, list[tuple[str, str]], bool]:
        return ("signed", name, [("Authorization", f"Bearer {token}")], False)

    return [
        ("none", "plain upgrade", [], False),
        ("none", "Origin https://evil.example", [("Origin", "https://evil.example")], False),
        ("none", "Origin http://localhost", [("Origin", "http://localhost")], False),
        ("none", "Origin vscode-webview://x", [("Origin", "vscode-webview://x")], False),
        ("none", "Origin null", [("Origin", "null")], False),
        ("none", "Host attacker.example", [("Host", "attacker.example")], True),
        ("capability", "no Authorization", [], False),
        ("capability", "good token", bearer, False),
        ("capability", "lower-case scheme", [("Authorization", f"bearer {TOKEN}")], False),
        ("capability", "wrong token", [("Authorization", "Bearer nope")], False),
        ("capability", "Basic scheme", [("Authorization", "Basic abc")], False),
        ("capability", "empty bearer", [("Authorization", "Bearer ")], False),
        ("capability", "good token + Origin", [*bearer, ("Origin", "http://x")], False),
        signed("good JWT", jwt(good)),
        signed("exp 10 s ago (skew 30)", jwt({**good, "exp": now - 10})),
        signed("expired", jwt({**good, "exp": now - 120})),
        signed("no exp", jwt({"iss": "side", "aud": "exec"})),
        signed("nbf in 120 s", jwt({**good, "nbf": now + 120})),
        signed("wrong issuer", jwt({**good, "iss": "other"})),
        signed("wrong audience", jwt({**good, "aud": "other"})),
        signed("audience in a list", jwt({**good, "aud": ["x", "exec"]})),
        signed("wrong secret", jwt(good, b"w" * 40)),
        signed("HS512", jwt(good, header=b'{"alg":"HS512"}')),
        signed("alg none", b64(b'{"alg":"none"}') + f".{b64(json.dumps(good).encode())}."),
        signed("crit header", jwt(good, header=b'{"alg":"HS256","crit":["x"]}')),
        ("signed", "no Authorization", [], False),
    ]


async def ask(url: str, headers: list[tuple[str, str]], reactor: Any) -> Response:
    host, port = url[len("ws://") :].rsplit(":", 1)
    extra = [h for h in headers if h[0] != "Host"]
    raw = upgradeRequest(host, int(port), extra)
    for name, value in headers:
        if name == "Host":
            raw = raw.replace(f"Host: {host}:{port}".encode(), f"Host: {value}".encode())
    return await rawExchange(reactor, host, int(port), raw, timeout=10)


def show(response: Response) -> str:
    return f"{response.status} {response.body.decode('utf-8', 'replace')!r}"


async def main(reactor: Any, args: argparse.Namespace) -> None:
    scratch = Path(
        tempfile.mkdtemp(
            prefix="wsauth-", dir="/work/scratch" if Path("/work/scratch").is_dir() else None
        )
    )
    tokenFile, secretFile = scratch / "token", scratch / "secret"
    tokenFile.write_text(TOKEN + "\n")
    secretFile.write_bytes(SECRET + b"\n")
    (scratch / "home").mkdir()
    env = {**os.environ, "CODEX_HOME": str(scratch / "home"), "PYTHONPATH": str(REPO)}
    modes = {
        "none": [],
        "capability": ["--ws-auth", "capability-token", "--ws-token-file", str(tokenFile)],
        "signed": [
            "--ws-auth",
            "signed-bearer-token",
            "--ws-shared-secret-file",
            str(secretFile),
            "--ws-issuer",
            "side",
            "--ws-audience",
            "exec",
        ],
    }
    binaries = {
        "0.171": [str(args.codex_bin), "exec-server", "--listen", "ws://127.0.0.1:0"],
        "ours": [sys.executable, "-m", "twisted_exec", "--listen", "ws://127.0.0.1:0"],
    }
    rows: list[dict[str, Any]] = []
    now = int(time.time())
    for mode, extra in modes.items():
        answers: dict[str, dict[str, Response]] = {}
        for who, argv in binaries.items():
            transport, url, server = await serve(reactor, [*argv, *extra], env)
            try:
                answers[who] = {
                    name: await ask(url, headers, reactor)
                    for m, name, headers, _ in cases(now)
                    if m == mode
                }
            finally:
                transport.signalProcess("TERM")
                await server.ended.addTimeout(10, reactor)
        for m, name, _, oursOnly in cases(now):
            if m != mode:
                continue
            ref, ours = answers["0.171"][name], answers["ours"][name]
            same = (ref.status, ref.body) == (ours.status, ours.body)
            rows.append(
                {
                    "mode": mode,
                    "case": name,
                    "0.171": show(ref),
                    "ours": show(ours),
                    "same": same,
                    "oursOnly": oursOnly,
                }
            )
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        width = max(len(f"{r['mode']}: {r['case']}") for r in rows)
        print(f"{'case':<{width}}  {'0.171':<42} {'ours':<42} same")
        for r in rows:
            mark = "yes" if r["same"] else ("ours only" if r["oursOnly"] else "NO")
            print(
                f"{r['mode'] + ': ' + r['case']:<{width}}  {r['0.171']:<42} {r['ours']:<42} {mark}"
            )
    if any(not r["same"] and not r["oursOnly"] for r in rows):
        raise SystemExit(1)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codex-bin", default=os.environ.get("CODEX_BIN", str(DEFAULT_BIN)))
    parser.add_argument("--json", action="store_true", help="one JSON list instead of a table")
    args = parser.parse_args()
    if not Path(args.codex_bin).exists():
        raise SystemExit(f"no reference binary at {args.codex_bin} (scripts/fetch_codex.sh)")
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, args)))


if __name__ == "__main__":
    cli()
