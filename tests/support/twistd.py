"""``twistd`` with our plugins as a real child of the test, from this source tree.

The command-line tests (twistd, operator, stdin-close, rendezvous loop) each carried the same
launcher, environment and kill-at-cleanup; here once, so every one runs the tree under test
(``PYTHONPATH``, also under trial whose cwd is ``_trial_temp``) from a scratch directory.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from twisted.internet.interfaces import IProcessTransport
from twisted.trial.unittest import SynchronousTestCase

import twisted_exec
from tests.support.children import ChildOutput, spawnChild

# `python -m twisted.scripts.twistd` is a no-op (that module has no __main__ block).
TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(twisted_exec.__file__)))


def pluginInstalled(*tapnames: str) -> bool:
    """Whether twistd finds our plugins (``codex-executor`` unless others are named)."""
    from twisted.application.service import IServiceMaker
    from twisted.plugin import getPlugins

    found = {p.tapname for p in getPlugins(IServiceMaker)}
    return set(tapnames or ("codex-executor",)) <= found


def spawnFromTree(
    case: SynchronousTestCase,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    proto: ChildOutput | None = None,
) -> tuple[IProcessTransport, ChildOutput]:
    """``argv`` with this tree on PYTHONPATH, in a fresh directory, killed at cleanup."""
    proto = ChildOutput() if proto is None else proto
    environ = {"PATH": os.environ["PATH"], "PYTHONPATH": SOURCE_ROOT, **(env or {})}
    cwd = os.path.abspath(case.mktemp())
    os.makedirs(cwd)
    return spawnChild(case, proto, argv, environ, path=cwd), proto


def spawnTwistd(
    case: SynchronousTestCase, *args: str, env: Mapping[str, str] | None = None
) -> tuple[IProcessTransport, ChildOutput]:
    """``twistd -n --pidfile= ARGS`` (foreground, no pid file) as :func:`spawnFromTree` runs it."""
    return spawnFromTree(case, [sys.executable, "-c", TWISTD, "-n", "--pidfile=", *args], env)
