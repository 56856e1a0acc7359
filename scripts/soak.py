"""Hardening soak runs against a real remote-mode executor (see README "Hardening").

    python scripts/soak.py                 # every scenario at CI size (about 15 s)
    python scripts/soak.py --full          # the issue's sizes (about 10 minutes)
    python scripts/soak.py --full slow     # one scenario: frames, faults, load or slow

Prints one JSON object per scenario (the numbers in bench/results/) and exits 1 if any
acceptance check failed. The same scenario code runs small in tests/test_soak.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react

from twisted_exec.testing.soak import FULL, QUICK, SCENARIOS, Common, verdict


async def _run(reactor: Any, names: list[str], full: bool) -> int:
    failed = 0
    for name in names:
        params = (FULL if full else QUICK)[name]
        try:
            result: Common = await SCENARIOS[name](reactor, **params)
        except Exception as e:  # a failed check inside the scenario: report it, run the rest
            record = {"scenario": name, "params": params, "ok": False, "problems": [repr(e)]}
        else:
            problems = verdict(name, result)
            record = {"scenario": name, "params": params, "ok": not problems}
            record["problems"] = problems
            record.update(result.asDict())
        print(json.dumps(record), flush=True)
        failed += not record["ok"]
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the issue's full sizes")
    parser.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)}")
    args = parser.parse_args()
    names = args.scenarios or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")

    def run(reactor: Any) -> Any:
        d = ensureDeferred(_run(reactor, names, args.full))
        return d.addCallback(lambda failed: sys.exit(1) if failed else None)

    react(run)


if __name__ == "__main__":
    main()
