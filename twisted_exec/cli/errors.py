"""``codex-exec``'s error type and exit codes: shared by the parser (main) and the commands."""

from __future__ import annotations

import sys

FAILED = 125


class CliError(Exception):
    """A failure reported as ``codex-exec: error: <message>`` with ``exitCode``."""

    def __init__(self, message: str, exitCode: int = FAILED) -> None:
        super().__init__(message)
        self.exitCode = exitCode


def note(message: str) -> None:
    """A line on stderr that is not an error (``codex-exec: ...``)."""
    sys.stderr.write(f"codex-exec: {message}\n")
    sys.stderr.flush()


def packageVersion() -> str:
    """The installed distribution's version (the package metadata is the one source)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("twisted-exec")
    except PackageNotFoundError:
        return "unknown"
