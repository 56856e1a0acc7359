"""What both twistd plugins share with an operator: ``--version``, log options, clean errors.

:class:`OperatorOptions` is mixed into ``ExecutorOptions`` and ``RendezvousOptions``:

- ``--version`` prints *our* version (twistd's own ``--version`` names Twisted's);
- ``--log-format text|json`` and ``--log-level debug|info|warn|error``;
- a usage error prints one line, message first (``Error: --listen expects ...``), and exits 2,
  instead of twistd's 40 lines of options with the message at the bottom.

:func:`failStartup` is the same one-line exit for a start-up failure that is the operator's to
fix (a port in use), instead of a 30-line traceback.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from twisted.python import usage

from twisted_exec.net.logs import LOG_FORMATS, LOG_LEVELS

__all__ = ["USAGE_EXIT", "OperatorOptions", "failStartup", "versionText"]

#: Exit status of a usage error or a port in use, as most Unix tools use for bad invocations.
USAGE_EXIT = 2


def versionText(program: str) -> str:
    """``twistd codex-executor 0.1.0 (twisted-exec; Twisted 26.10.0, Python 3.11.2)``."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from twisted import __version__ as twisted_version

    try:
        ours = version("twisted-exec")
    except PackageNotFoundError:
        ours = "unknown"
    return (
        f"{program} {ours} (twisted-exec; Twisted {twisted_version}, "
        f"Python {platform.python_version()})"
    )


def failStartup(message: str) -> NoReturn:
    """One ``Error: ...`` line on the real stderr, exit code 2."""
    stream = sys.__stderr__ or sys.stderr
    stream.write(f"Error: {message}\n")
    stream.flush()
    raise SystemExit(USAGE_EXIT)


class OperatorOptions(usage.Options):
    """Mixin for a twistd plugin's options; set ``programName`` (``twistd codex-executor``)."""

    programName = "twistd"

    optParameters: list[list[Any]] = [
        [
            "log-format",
            None,
            "text",
            f"Log line format: {' or '.join(LOG_FORMATS)} (one JSON object per line, for log "
            "shippers).",
        ],
        [
            "log-level",
            None,
            "info",
            f"Least severe level logged: {', '.join(LOG_LEVELS)} (per-stream and per-request "
            "detail is at debug).",
        ],
    ]

    def opt_version(self) -> NoReturn:
        """Print the version and exit."""
        out = sys.__stdout__ or sys.stdout
        out.write(versionText(self.programName) + "\n")
        out.flush()
        raise SystemExit(0)

    def parseOptions(self, options: Any = None) -> None:
        try:
            super().parseOptions(options)
            if self["log-format"] not in LOG_FORMATS:
                raise usage.UsageError(
                    f"--log-format expects {' or '.join(LOG_FORMATS)}, got {self['log-format']!r}"
                )
            if self["log-level"] not in LOG_LEVELS:
                raise usage.UsageError(
                    f"--log-level expects one of {', '.join(LOG_LEVELS)}, got {self['log-level']!r}"
                )
        except usage.UsageError as err:
            if getattr(self, "parent", None) is None:
                raise  # parsed by a program of its own (a test, an embedder): its error
            failStartup(f"{err} (see {self.programName} --help)")
