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
(``Target`` / ``Connection`` of :mod:`scripts.conformancelib.transport`): a relay transport only
has to open connections that send and receive JSON-RPC text.

Exit status: 0 when every session is identical or differs only as listed in
``KNOWN_DIFFERENCES`` (:mod:`scripts.conformancelib.known`); 1 when any session differs
unexpectedly; 0 with a message when the reference binary is not found (nothing to compare
against).

The code is the package :mod:`scripts.conformancelib`; this file is the documented command.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This source tree's scripts package and twisted_exec (the relay mode's in-process rendezvous).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.conformancelib.cli import main

if __name__ == "__main__":
    main()
