"""``python scripts/conformance.py``: the command line, and one run of every session on both."""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred

from scripts.conformancelib.compare import compare, recordTranscript, report
from scripts.conformancelib.known import (
    KNOWN_DIFFERENCES,
    KNOWN_DIFFERENCES_171,
    KNOWN_REMOTE_DIFFERENCES,
    LOCAL_ONLY,
)
from scripts.conformancelib.launch import (
    SESSIONS_171_DIR,
    SESSIONS_DIR,
    findReference,
    oursArgv,
    pluginShim,
    referenceArgv,
    serverEnv,
    stdioArgv,
)
from scripts.conformancelib.remote import RelayCloud, RelayTarget
from scripts.conformancelib.runner import SessionRunner
from scripts.conformancelib.sessions import connectionCount, loadScripts
from scripts.conformancelib.stdio import StdioTarget
from scripts.conformancelib.transport import LocalWsTarget

DESCRIPTION = (
    "Run scripted JSON-RPC sessions against our executor and the reference, and compare them."
)


def parseArgs(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=DESCRIPTION)
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
        known = {**known, **KNOWN_REMOTE_DIFFERENCES}
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
        return RelayTarget(cloud, name, argv, env, str(runRoot))

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
