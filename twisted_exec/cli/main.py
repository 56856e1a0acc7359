"""``codex-exec``: run commands and move files on an executor, through a rendezvous.

    codex-exec run -- uname -a                 # stream output live, exit with its exit code
    codex-exec run --tty -- top                # a remote pty; local keystrokes are forwarded
    codex-exec cat /etc/hostname               # a remote file to stdout
    codex-exec cp ./local.txt :/tmp/remote.txt # ":" marks the executor's side ("-" = stdio)
    codex-exec ls /tmp                         # a remote directory
    codex-exec ls-executors                    # what the rendezvous knows

Exit status, as a shell's: ``run`` exits with the command's status, 127 when the command is not
found on the executor, 126 when it cannot be executed, 128+N when signal N killed it (255 when
the executor does not say which), 130 after Ctrl-C; file commands exit 1 when the executor
reports an error; 125 means codex-exec itself could not do the job (rendezvous unreachable,
token refused, unknown or disconnected executor, stream lost); 2 is a usage error.

This module imports only the standard library until a command runs: ``--help`` and
``--version`` must answer fast (Twisted and autobahn take ~0.3 s to import).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from twisted_exec.cli.errors import FAILED, CliError
from twisted_exec.cli.safetext import safe

USAGE = 2
DEFAULT_RENDEZVOUS = "http://127.0.0.1:8765"
URL_ENV = "CODEX_RENDEZVOUS_URL"
EXECUTOR_ENV = "CODEX_EXECUTOR_ID"
TOKEN_ENV = "CODEX_RENDEZVOUS_TOKEN"
FALLBACK_TOKEN_ENV = "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN"
NOISE_ENV = "CODEX_EXEC_NOISE"


def tokenFromEnvironment(environ: dict[str, str] | os._Environ[str]) -> str | None:
    for name in (TOKEN_ENV, FALLBACK_TOKEN_ENV):
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def rendezvousUrlProblem(url: str) -> str | None:
    """Why ``url`` cannot be a rendezvous base URL (None when it can)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError as e:
        return f"--rendezvous: {e} in {url!r}"
    if parts.scheme.lower() not in ("http", "https", "ws", "wss") or not parts.hostname:
        return (
            f"--rendezvous expects http(s)://HOST[:PORT] (or ws(s)://), got {url!r}"
            f" (set it with -r URL or ${URL_ENV})"
        )
    return None


def version() -> str:
    from twisted_exec.cli.errors import packageVersion

    return (
        f"codex-exec {packageVersion()} (twisted-exec harness; Codex exec-server 0.131/0.171 wire)"
    )


class _VersionAction(argparse.Action):
    """``--version``, computed only when asked (importlib.metadata costs ~0.1 s of start-up)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        sys.stdout.write(version() + "\n")
        parser.exit(0)


class _Parser(argparse.ArgumentParser):
    """Usage errors: the message first, on one line, then where the options are."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            USAGE,
            f"codex-exec: error: {safe(message)}\n(see {self.prog} --help)\n",
        )


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
        "--noise",
        action="store_true",
        default=default(os.environ.get(NOISE_ENV, "") not in ("", "0")),
        help=f"-e names an environment (Codex 0.171): connect through its registry and speak "
        f"Noise end to end (default ${NOISE_ENV}=1)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=default(10.0),
        metavar="SECONDS",
        help="how long to wait for the rendezvous and for the executor to connect (default 10)",
    )


def buildParser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    _commonOptions(common, suppress=True)
    parser = _Parser(
        prog="codex-exec",
        description="Run commands and move files on a Codex exec-server executor through a "
        f"rendezvous. The bearer token is read from ${TOKEN_ENV} (or ${FALLBACK_TOKEN_ENV}).",
    )
    parser.add_argument(
        "--version", action=_VersionAction, nargs=0, help="print the version and exit"
    )
    _commonOptions(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, parents=[common], help=help)
        return p  # a _Parser too (add_subparsers uses the parser's class)

    run = command("run", "run a command, streaming its output")
    run.add_argument("--tty", "-t", action="store_true", help="run it on a remote pty")
    run.add_argument(
        "--interactive",
        "-i",
        action="store_true",
        help="forward stdin, and end the command's stdin at its end where the executor can "
        "(implied by --tty when stdin is a terminal)",
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

    cat = command("cat", "print remote files")
    cat.add_argument("paths", nargs="+", metavar="PATH")

    cp = command("cp", "copy a file to or from the executor (':PATH' is remote)")
    cp.add_argument("source", metavar="SRC")
    cp.add_argument("destination", metavar="DST")

    ls = command("ls", "list a remote directory")
    ls.add_argument("path", nargs="?", default="/", metavar="PATH")

    command("ls-executors", "list the rendezvous's executors")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Console script entry point (``codex-exec``)."""
    parser = buildParser()
    args = parser.parse_args(argv)
    problem = rendezvousUrlProblem(args.rendezvous)
    if problem is not None:
        parser.error(problem)
    if args.timeout <= 0:
        parser.error(f"--timeout must be more than 0, got {args.timeout:g}")
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
    token = tokenFromEnvironment(os.environ)
    if token is None:
        parser.exit(
            USAGE,
            f"codex-exec: error: no bearer token: set ${TOKEN_ENV} (or "
            f"${FALLBACK_TOKEN_ENV}) to a token the rendezvous at {args.rendezvous} accepts\n",
        )
    from twisted.internet import task

    task.react(_react, (args, token))


def _react(reactor: Any, args: argparse.Namespace, token: str) -> Any:
    from twisted.internet.defer import Deferred

    from twisted_exec.cli.commands import runCommand
    from twisted_exec.harness.errors import CallError, HarnessError

    async def go() -> None:
        try:
            code = await runCommand(reactor, args, token)
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
    # Messages carry remote text (an executor's error, a file name) and the URLs the user
    # gave: escaped, and redacted (cli/safetext.py).
    sys.stderr.write(f"codex-exec: error: {safe(message)}\n")
    sys.stderr.flush()
