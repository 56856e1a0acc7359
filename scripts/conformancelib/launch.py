"""Where the executors under test come from, and how each is launched from this source tree.

Shared with the benchmarks (``bench/``): the reference binary's discovery, the plugin shim that
lets ``twistd`` find our plugin without installing anything, one environment for both servers.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
SESSIONS_DIR = REPO / "conformance"
REFERENCE_171_CANDIDATES = (
    REPO / "vendor/codex-0.171.0/codex",
    Path("/work/main/vendor/codex-0.171.0/codex"),
)
SESSIONS_171_DIR = SESSIONS_DIR / "v171"
REFERENCE_CANDIDATES = (
    REPO / "vendor/codex-0.131.0/package/vendor/x86_64-unknown-linux-musl/codex/codex",
    Path("/work/ref/package/vendor/x86_64-unknown-linux-musl/codex/codex"),
)
CODEX_HOME_DEFAULT = Path("/work/codexhome")


def findReference(explicit: str | None, v171: bool = False) -> Path | None:
    """The reference binary: ``explicit`` (``--codex-bin``), ``$CODEX_BIN`` (``$CODEX_171_BIN``),
    then the vendored copies; None when none is an executable file."""
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    variable = "CODEX_171_BIN" if v171 else "CODEX_BIN"
    if os.environ.get(variable):
        candidates.append(Path(os.environ[variable]))
    candidates.extend(REFERENCE_171_CANDIDATES if v171 else REFERENCE_CANDIDATES)
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    return None


def pluginShim(runRoot: Path) -> Path:
    """A directory that makes ``twistd`` find our plugin when run from the source tree.

    ``twisted.plugins`` extends its ``__path__`` with every ``twisted/plugins`` directory on
    ``sys.path``; a symlink to ``twistd_plugins/codex_executor.py`` there is enough, without
    installing anything.
    """
    shim = runRoot / "plugin-shim"
    plugins = shim / "twisted" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "codex_executor.py"
    if not link.exists():
        link.symlink_to(REPO / "twistd_plugins" / "codex_executor.py")
    return shim


def serverEnv(extraPythonPath: str = "") -> dict[str, str]:
    """One environment for both servers, so that `inherit: all` children see the same thing.

    It carries the variables both need (CODEX_HOME for the reference, PYTHONPATH for ours) plus
    a few CONF_* variables the envPolicy sessions look at; TMPDIR is left out (the reference
    refuses to create its helper binaries under a temporary directory).
    """
    codexHome = os.environ.get("CODEX_HOME", str(CODEX_HOME_DEFAULT))
    # The reference refuses to start (and environmentConfig/read fails) without it.
    Path(codexHome).mkdir(parents=True, exist_ok=True)
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "CODEX_HOME": codexHome,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), extraPythonPath) if p),
        "CONF_PLAIN": "plain",
        "CONF_API_KEY": "k",
        "CONF_SECRET_X": "s",
        "CONF_MY_TOKEN": "t",
        "CONF_OTHER": "other",
    }


TWISTD_MAIN = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


def oursArgv(python: str, remote: bool = False) -> list[str]:
    # `python -m twisted.scripts.twistd` does nothing (that module has no __main__ block)
    argv = [python, "-c", TWISTD_MAIN, "-n", "--pidfile=", "codex-executor"]
    return argv if remote else [*argv, "--listen", "ws://127.0.0.1:0"]


def referenceArgv(binary: Path, remote: bool = False) -> list[str]:
    if remote:
        return [str(binary), "exec-server"]  # RelayTarget adds --remote URL --executor-id ID
    return [str(binary), "exec-server", "--listen", "ws://127.0.0.1:0"]


def stdioArgv(argv: list[str]) -> list[str]:
    """The same server in ``--listen stdio`` mode."""
    if "--listen" in argv:
        index = argv.index("--listen")
        return [*argv[:index], "--listen", "stdio", *argv[index + 2 :]]
    return [*argv, "--listen", "stdio"]
