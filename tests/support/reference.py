"""Where the Codex reference binaries are (0.171.0, and the older 0.131.0), and how the
differential tests start one.

The reference-backed tests skip (never fail) when the binary is absent: ``scripts/fetch_codex.sh``
puts it under ``vendor/``. Several files had their own search order; one function means
``$CODEX_171_BIN`` is honoured by all of them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from twisted.internet.interfaces import IProcessTransport
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.support.children import AnnouncedUrl, ChildOutput, spawnChild

ROOT = Path(__file__).resolve().parent.parent.parent
CANDIDATE_BINARIES = (
    ROOT / "vendor/codex-0.171.0/codex",
    Path("/work/main/vendor/codex-0.171.0/codex"),
)
NOT_FOUND = "Codex CLI 0.171.0 not found; run scripts/fetch_codex.sh"

_BIN_IN_PACKAGE = Path("package/vendor/x86_64-unknown-linux-musl/codex/codex")
#: The 0.131.0 generation, unpacked from its npm package.
CANDIDATE_BINARIES_131 = (
    ROOT / "vendor/codex-0.131.0" / _BIN_IN_PACKAGE,
    Path("/work/ref") / _BIN_IN_PACKAGE,
)
NOT_FOUND_131 = "Codex CLI binary not found; run scripts/fetch_codex.sh"


def findExecutable(
    variable: str, candidates: Sequence[Path], environ: Mapping[str, str]
) -> Path | None:
    """``$variable`` when set (and only it), else the first executable of ``candidates``."""
    given = environ.get(variable)
    for path in [Path(given)] if given else candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def findCodex171(environ: Mapping[str, str] = os.environ) -> Path | None:
    """$CODEX_171_BIN, then ./vendor/codex-0.171.0/codex; None when absent."""
    return findExecutable("CODEX_171_BIN", CANDIDATE_BINARIES, environ)


def findCodexBinary(environ: Mapping[str, str] = os.environ) -> Path | None:
    """$CODEX_BIN, then ./vendor/codex-0.131.0/..., then /work/ref/...; None when absent."""
    return findExecutable("CODEX_BIN", CANDIDATE_BINARIES_131, environ)


def binary171() -> str:
    """The 0.171 reference binary's path, or skip the calling test."""
    found = findCodex171()
    if found is None:
        raise SkipTest(NOT_FOUND)
    return str(found)


def binary131() -> str:
    """The 0.131 reference binary's path, or skip the calling test."""
    found = findCodexBinary()
    if found is None:
        raise SkipTest(NOT_FOUND_131)
    return str(found)


def codexHome(case: SynchronousTestCase) -> str:
    """A fresh ``CODEX_HOME`` under the test's temporary directory (``_trial_temp``, not /tmp)."""
    home = os.path.abspath(case.mktemp())
    os.makedirs(home)
    return home


def spawnReference(
    case: SynchronousTestCase,
    proto: ChildOutput,
    home: str,
    *args: str,
    env: Mapping[str, str] | None = None,
) -> IProcessTransport:
    """``codex exec-server ARGS`` from the reference, with ``home`` as its HOME, CODEX_HOME and
    working directory, killed at cleanup. Skips the test when the binary is absent."""
    binary = binary171()
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "CODEX_HOME": home}
    environ.update(env or {})
    return spawnChild(case, proto, [binary, "exec-server", *args], environ, path=home)


async def listeningReference(case: SynchronousTestCase, *args: str, timeout: float = 20.0) -> str:
    """``codex exec-server --listen ws://127.0.0.1:0 ARGS`` from the reference, for the length of
    ``case``: the ``ws://`` URL it announces (within ``timeout`` seconds)."""
    from twisted.internet import reactor

    proto = AnnouncedUrl()
    spawnReference(case, proto, codexHome(case), "--listen", "ws://127.0.0.1:0", *args)
    url: str = await proto.url.addTimeout(timeout, reactor)
    return url
