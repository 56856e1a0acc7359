"""Conformance: ``http/request`` and stdio mode, the reference binary vs twisted-exec.

Both executors are spawned as a harness would, ``--listen stdio`` (ours: ``python -m
twisted_exec.executor.stdio_main``), and driven with the same cases against the same loopback
twisted.web
server (``twisted_exec/testing/httpsite.py``, whose ``/echo`` reports the raw request lines). The
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
The code is the package :mod:`scripts.httpstdiolib`; this file is the documented command.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This source tree's scripts package, tests (the loopback HTTP server) and twisted_exec.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.httpstdiolib.cli import run

if __name__ == "__main__":
    run(__doc__ or "")
