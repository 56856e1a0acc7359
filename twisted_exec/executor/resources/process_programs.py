"""Which program a process/start runs: PATH lookup for pipes and ptys, as the reference does."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping

from twisted.logger import Logger

from twisted_exec.wire.errors import RpcError, internalError

log = Logger()


def _isExecutableFile(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and os.access(path, os.X_OK)


def resolvePipeProgram(
    program: str, childEnv: Mapping[str, str], environ: Mapping[str, str]
) -> str:
    """Rust ``Command``'s lookup: the child's PATH when it sets one, else the executor's.

    A name with a slash is used as is (relative to the child's cwd). Raises ``OSError`` as
    ``execvp`` would: ENOENT when nothing is found, EACCES when only non-executables were.
    """
    if not program:
        raise RpcError(-32603, "missing program for pipe spawn")
    if "/" in program:
        return program
    searchPath = childEnv["PATH"] if "PATH" in childEnv else environ.get("PATH", os.defpath)
    sawAccess = False
    for directory in searchPath.split(os.pathsep):
        candidate = os.path.join(directory or ".", program)
        if _isExecutableFile(candidate):
            return candidate
        if not sawAccess and os.path.exists(candidate):
            sawAccess = True
    code = errno.EACCES if sawAccess else errno.ENOENT
    raise OSError(code, os.strerror(code))


def resolvePtyProgram(program: str, childEnv: Mapping[str, str], cwd: str | None) -> str:
    """portable-pty's lookup and messages: only the child's own PATH is searched."""
    if not program:
        raise internalError("missing program for PTY spawn")
    if "/" in program:
        path = os.path.join(cwd, program) if cwd and not program.startswith("/") else program
        if not os.path.exists(path):
            raise internalError(
                f"Unable to spawn {program} because it doesn't exist on the filesystem "
                "(ENOENT: No such file or directory)"
            )
        if os.path.isdir(path):
            raise internalError(f"Unable to spawn {program} because it is a directory")
        if not os.access(path, os.X_OK):
            raise internalError(
                f"Unable to spawn {program} because it is not executable "
                "(EACCES: Permission denied)"
            )
        return path
    if "PATH" not in childEnv:
        raise internalError(f"Unable to spawn {program} because:\nUnable to resolve the PATH")
    searchPath = childEnv["PATH"]
    for directory in searchPath.split(os.pathsep):
        candidate = os.path.join(directory or ".", program)
        if _isExecutableFile(candidate):
            return candidate
    raise internalError(
        f'Unable to spawn {program} because:\nNo viable candidates found in PATH "{searchPath}"'
    )


def _ptyCwd(cwd: str, childEnv: Mapping[str, str], environ: Mapping[str, str]) -> str | None:
    """portable-pty falls back to HOME when the cwd is not a directory (probed)."""
    if os.path.isdir(cwd):
        return cwd
    for home in (childEnv.get("HOME"), environ.get("HOME")):
        if home and os.path.isdir(home):
            return home
    return None
