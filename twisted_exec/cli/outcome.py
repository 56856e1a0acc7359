"""How ``codex-exec run`` turns what the executor says into a shell's exit status and message.

A shell exits 127 for a command it cannot find, 126 for one it cannot execute and 128+N for one
killed by signal N. The executor only says ``-32603 No such file or directory (os error 2)``
for both a missing program and a missing working directory, so ``run`` checks the directory
first (:func:`cwdProblem`) and then reads a spawn failure as the program's
(:func:`spawnFailure`).

Exit codes: a Codex 0.171 executor reports a signal as 128+N already (``sleep`` interrupted:
130, terminated: 137/143, probed); 0.131 reports ``-1`` and not which signal. We pass 0..255
through; ``-1`` becomes 255 with a note saying the executor did not tell which signal, except
after our own Ctrl-C, which is 130 (``exitStatus``).
"""

from __future__ import annotations

import signal

__all__ = [
    "CANNOT_EXECUTE",
    "INTERRUPTED",
    "NOT_FOUND",
    "UNKNOWN_SIGNAL",
    "cwdProblem",
    "exitStatus",
    "spawnFailure",
]

NOT_FOUND = 127
CANNOT_EXECUTE = 126
INTERRUPTED = 128 + signal.SIGINT
#: A process killed by a signal that the executor does not name (0.131 reports exitCode -1).
UNKNOWN_SIGNAL = 255

_ENOENT = "(os error 2)"
_EACCES = "(os error 13)"
_ENOEXEC = "(os error 8)"
_ENOTDIR = "(os error 20)"


def spawnFailure(program: str, message: str) -> tuple[str, int] | None:
    """``(message, status)`` for a ``process/start`` error that is the program's fault.

    ``None`` when the error is something else (a limit, bad params): the caller reports the
    executor's message as it is.
    """
    if message.endswith(_ENOENT) or "Unable to resolve the PATH" in message:
        return f"{program}: command not found on the executor", NOT_FOUND
    if message.endswith(_ENOTDIR):
        return f"{program}: not a directory on the executor", NOT_FOUND
    if message.endswith(_EACCES):
        return f"{program}: permission denied (not an executable file)", CANNOT_EXECUTE
    if message.endswith(_ENOEXEC):
        return f"{program}: cannot execute (exec format error)", CANNOT_EXECUTE
    return None


def cwdProblem(path: str, metadata: dict[str, object] | None) -> str | None:
    """Why ``-C path`` cannot be the working directory (``metadata``: None when missing)."""
    if metadata is None:
        return f"-C {path}: no such directory on the executor"
    if not metadata.get("isDirectory"):
        return f"-C {path}: not a directory on the executor"
    return None


def exitStatus(code: int, *, interrupted: bool = False) -> tuple[int, str | None]:
    """``(status, note)``: the shell status for an executor's exit code, and why, if unclear."""
    if interrupted:
        return INTERRUPTED, None
    if 0 <= code <= 255:
        return code, None
    return UNKNOWN_SIGNAL, (
        "the command was killed by a signal; this executor does not say which "
        "(Codex 0.131 protocol: exitCode -1), so the status is 255"
    )
