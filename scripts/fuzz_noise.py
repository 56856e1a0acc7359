"""Fuzz the executor's Noise relay with mutated frames and handshakes (issue 13: 100k).

    python scripts/fuzz_noise.py [--frames 100000] [--seed 0]

The same engine as ``tests/test_fuzz_noise.py`` (``twisted_exec.testing.noise_fuzz``) at
full size: no frame may raise, a neighbouring stream must keep answering, and every websocket
must end exactly at 8 failed handshakes. Prints the statistics as JSON; exit 1 on a broken
invariant.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted_exec.testing.noise_fuzz import FuzzInvariantError, NoiseFuzzer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check-every", type=int, default=50)
    args = parser.parse_args()
    fuzzer = NoiseFuzzer(seed=args.seed, checkEvery=args.check_every)
    started = time.monotonic()
    try:
        stats = fuzzer.run(args.frames)
    except FuzzInvariantError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    result = asdict(stats)
    result["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
