"""``codex-exec``: run commands and move files on an executor, through a rendezvous.

    codex-exec run -- uname -a                 # stream output live, exit with its exit code
    codex-exec run --tty -- top                # a remote pty; local keystrokes are forwarded
    codex-exec cat /etc/hostname               # a remote file to stdout
    codex-exec cp ./local.txt :/tmp/remote.txt # ":" marks the executor's side ("-" = stdio)
    codex-exec ls /tmp                         # a remote directory
    codex-exec ls-executors                    # what the rendezvous knows

Exit status: ``run`` exits with the command's status (255 when it was killed by a signal);
file commands exit 1 when the executor reports an error; 125 means codex-exec itself could not do
the job (rendezvous unreachable, token refused, unknown or disconnected executor, stream lost);
2 is a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from twisted_exec.cli.errors import FAILED, CliError
from twisted_exec.harness.errors import CallError, HarnessError

DEFAULT_RENDEZVOUS = "http://127.0.0.1:8765"
URL_ENV = "CODEX_RENDEZVOUS_URL"
EXECUTOR_ENV = "CODEX_EXECUTOR_ID"
TOKEN_ENV = "CODEX_RENDEZVOUS_TOKEN"
FALLBACK_TOKEN_ENV = "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN"


def tokenFromEnvironment(environ: dict[str, str] | os._Environ[str]) -> str | None:
    for name in (TOKEN_ENV, FALLBACK_TOKEN_ENV):
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def _commonOptions(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """``--rendezvous``, ``--executor-id``, ``--timeout``: accepted before and after the command.

    The command's copies default to SUPPRESS, so they only override when given there.
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--rendezvous",
        "-r",
        metavar="URL",
        default=default(os.environ.get(URL_ENV) or DEFAULT_RENDEZVOUS),
        help=f"rendezvous base URL (default ${URL_ENV} or {DEFAULT_RENDEZVOUS})",
    )
    parser.add_argument(
        "--executor-id",
        "-e",
        metavar="ID",
        default=default(os.environ.get(EXECUTOR_ENV)),
        help=f"executor to use (default ${EXECUTOR_ENV}, or the only connected one)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=default(10.0),
        metavar="SECONDS",
        help="connect timeout (default 10)",
    )


def buildParser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _commonOptions(common, suppress=True)
    parser = argparse.ArgumentParser(
        prog="codex-exec",
        description="Run commands and move files on a Codex exec-server executor through a "
        f"rendezvous. The bearer token is read from ${TOKEN_ENV} (or ${FALLBACK_TOKEN_ENV}).",
    )
    _commonOptions(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="run a command, streaming its output")
    run.add_argument("--tty", "-t", action="store_true", help="run it on a remote pty")
    run.add_argument(
        "--interactive",
        "-i",
        action="store_true",
        help="forward stdin (implied by --tty when stdin is a terminal)",
    )
    run.add_argument("--cwd", "-C", metavar="DIR", help="working directory on the executor")
    run.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a variable (the executor's environment is inherited otherwise)",
    )
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG ...]")

    cat = sub.add_parser("cat", parents=[common], help="print remote files")
    cat.add_argument("paths", nargs="+", metavar="PATH")

    cp = sub.add_parser(
        "cp", parents=[common], help="copy a file to or from the executor (':PATH' is remote)"
    )
    cp.add_argument("source", metavar="SRC")
    cp.add_argument("destination", metavar="DST")

    ls = sub.add_parser("ls", parents=[common], help="list a remote directory")
    ls.add_argument("path", nargs="?", default="/", metavar="PATH")

    sub.add_parser("ls-executors", parents=[common], help="list the rendezvous's executors")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Console script entry point (``codex-exec``)."""
    parser = buildParser()
    args = parser.parse_args(argv)
    if args.command == "run":
        command = list(args.argv)
        if command and command[0] == "--":
            command = command[1:]
        if not command:
            parser.error("run needs a command: codex-exec run -- COMMAND [ARG ...]")
        args.argv = command
        for item in args.env:
            if "=" not in item or item.startswith("="):
                parser.error(f"--env expects NAME=VALUE, got {item!r}")
    from twisted.internet import task

    task.react(_react, (args,))


def _react(reactor: Any, args: argparse.Namespace) -> Any:
    from twisted.internet.defer import Deferred

    from twisted_exec.cli.commands import runCommand

    async def go() -> None:
        try:
            code = await runCommand(reactor, args, tokenFromEnvironment(os.environ))
        except CliError as e:
            fail(str(e))
            raise SystemExit(e.exitCode) from None
        except CallError as e:
            fail(e.message)
            raise SystemExit(1) from None
        except HarnessError as e:
            fail(str(e))
            raise SystemExit(FAILED) from None
        raise SystemExit(code)

    return Deferred.fromCoroutine(go())


def fail(message: str) -> None:
    sys.stderr.write(f"codex-exec: error: {message}\n")
    sys.stderr.flush()
