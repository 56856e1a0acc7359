"""``codex-exec``'s error type and exit codes: shared by the parser (main) and the commands."""

from __future__ import annotations

FAILED = 125


class CliError(Exception):
    """A failure reported as ``codex-exec: error: <message>`` with ``exitCode``."""

    def __init__(self, message: str, exitCode: int = FAILED) -> None:
        super().__init__(message)
        self.exitCode = exitCode
