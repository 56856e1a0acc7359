"""``python scripts/conformance_http_stdio.py``: run every part on both executors, compare."""

from __future__ import annotations

import argparse
import json
import os
import traceback
from typing import Any

from twisted.internet import defer, task

from scripts.httpstdiolib.cases import CASES, KNOWN
from scripts.httpstdiolib.executor import REFERENCE
from scripts.httpstdiolib.httpcases import bigStream, compare, runHttpCases
from scripts.httpstdiolib.stdiocases import compareStdio, runStdioCases


async def main(reactor: Any, args: argparse.Namespace) -> int:
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
            "http": await runHttpCases(reactor, target, cases),
            "stdio": await runStdioCases(reactor, target),
            "bigStream": await bigStream(reactor, target, args.big_mb),
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


def run(description: str) -> None:
    """Parse the command line, run :func:`main` on the reactor, exit with its status (2: it
    crashed)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--only", choices=["ref", "ours"])
    parser.add_argument("--json")
    parser.add_argument("--cases")
    parser.add_argument("--big-mb", type=int, default=50)
    options = parser.parse_args()

    async def go(reactor: Any) -> None:
        try:
            status = await main(reactor, options)
        except Exception:
            traceback.print_exc()
            status = 2
        if status:
            raise SystemExit(status)

    task.react(lambda reactor: defer.ensureDeferred(go(reactor)))
