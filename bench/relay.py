"""Relay benchmark: our executor and the reference, side by side, through one rendezvous.

Usage::

    python bench/relay.py [--quick] [--codex-bin PATH] [--only ours|reference] [--no-ceiling]
                          [--rounds N] [--rows PHASES] [--baseline DIR] [--profile FILE]
                          [--markdown FILE] [--note TEXT]

One run starts a registry and a rendezvous (``twisted_exec.testing``) on loopback and three
executors that dial it: ours (``twistd -n codex-executor --remote ...`` from this source tree),
the reference (``codex exec-server --remote ...``, when the binary is found) and the *ceiling*, a
bare autobahn peer that answers every request at once with a reply of the same size
(``bench/echo_peer.py``). The harness is in this process (``HarnessStream``). Every measurement
is taken on each executor in turn, interleaved, and the table shows ours, the reference, the
ceiling (the best an executor built on our stack, Python, Twisted and autobahn, scores against
this harness; the Rust reference can exceed it) and ours/reference. See bench/README.md for what
each row measures.

The code is the package :mod:`bench.relaylib`; this file is the documented command.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This source tree's twisted_exec and bench package (the rendezvous, the in-process harness), not
# an installed twisted_exec.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.relaylib.cli import main

if __name__ == "__main__":
    main()
