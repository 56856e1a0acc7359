"""``initialize``, ``environment/info``, ``environment/status``, ``environmentConfig/read``.

``initialize`` answers ``{sessionId}`` in both dialects (``ExecProcessor.initialize``); a 0.171
client that finds no ``environmentInfo`` there asks ``environment/info``, which answers the
executor's :class:`LocalEnvironment` with the capabilities the method registry adds up to
(true only for what we implement). ``environmentConfig/read`` returns the selected keys of the
user's ``$CODEX_HOME/config.toml`` as 0.171 does (one ``user`` layer, re-serialised TOML; no
requirements layers: we have no managed requirements). Shapes, key order and errors were probed
on the 0.171.0 binary.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twisted_exec.compat import params
from twisted_exec.compat.fileuri import FileUri, fromHostPath
from twisted_exec.compat.params import Field, sequenceOf, string, struct
from twisted_exec.compat.params171 import decode171, pathUri, unitParams
from twisted_exec.compat.record import frozen
from twisted_exec.executor.core.dialect import Dialect
from twisted_exec.executor.methods.registry import Method, MethodRegistry
from twisted_exec.wire.errors import invalidParams

#: What ``executorVersion`` reports: the protocol generation we serve (docs/decisions.md).
EXECUTOR_VERSION = "0.171.0"


def _version() -> str:
    """This package's version (the ``providerId`` names our build, not the reference's)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("twisted-exec")
    except PackageNotFoundError:
        return "unknown"


class LocalEnvironment:
    """The executor's own environment, as ``environment/info`` describes it.

    Read once when the executor starts (cwd, home, shell, temporary directory), from the
    environment the executor was given, so a test can hand in its own.
    """

    def __init__(self, environ: Mapping[str, str] | None = None, cwd: str | None = None) -> None:
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.cwd = cwd if cwd is not None else os.getcwd()

    def shell(self) -> dict[str, str]:
        """The user's login shell from the passwd entry, else ``$SHELL``, else ``/bin/sh``."""
        try:
            path = pwd.getpwuid(os.getuid()).pw_shell or ""
        except KeyError:
            path = ""
        path = path or self.environ.get("SHELL", "") or "/bin/sh"
        return {"name": os.path.basename(path), "path": path}

    def homeDir(self) -> str:
        home = self.environ.get("HOME")
        if home:
            return home
        try:
            return pwd.getpwuid(os.getuid()).pw_dir
        except KeyError:
            return "/"

    def codexHome(self) -> str:
        given = self.environ.get("CODEX_HOME")
        return os.path.abspath(given) if given else os.path.join(self.homeDir(), ".codex")

    def temporaryDirectories(self) -> list[str]:
        tmpdir = self.environ.get("TMPDIR", "")
        if not tmpdir:
            return []
        return [fromHostPath(os.path.join(self.cwd, tmpdir))]

    def tempDir(self) -> str:
        tmpdir = self.environ.get("TMPDIR", "")
        return fromHostPath(os.path.join(self.cwd, tmpdir) if tmpdir else "/tmp")

    def info(self, capabilities: Mapping[str, bool]) -> dict[str, Any]:
        """``EnvironmentInfo`` in 0.171's key order."""
        provider = hashlib.sha256(f"twisted-exec {_version()}".encode()).hexdigest()
        return {
            "shell": self.shell(),
            "executorVersion": EXECUTOR_VERSION,
            "providerId": f"sha256:{provider}",
            "cwd": fromHostPath(self.cwd),
            "userHomeDir": fromHostPath(self.homeDir()),
            "platformOs": "linux",
            "prependPathDirs": [],
            "temporaryDirectories": self.temporaryDirectories(),
            "tempDir": self.tempDir(),
            "capabilities": dict(capabilities),
        }

    def configLayers(self, paths: list[list[str]]) -> list[dict[str, Any]]:
        """The ``user`` layer of ``$CODEX_HOME/config.toml`` cut to ``paths`` (none if empty)."""
        # imported on the first environmentConfig/read: tomllib and our TOML writer were ~0.7
        # MiB of every idle executor (bench/results/rss-2026-12-04.md)
        import tomllib

        from twisted_exec.compat import tomlwrite

        home = self.codexHome()
        path = Path(home) / "config.toml"
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return []
        selected = tomlwrite.select(document, paths)
        if not selected:
            return []
        return [
            {
                "baseDir": fromHostPath(home),
                "source": f"user ({path})",
                "toml": tomlwrite.dumps(selected),
            }
        ]


@struct(
    "EnvironmentConfigReadParams",
    Field("cwd", pathUri),
    Field("configPaths", sequenceOf(sequenceOf(string))),
    Field("requirementsPaths", sequenceOf(sequenceOf(string))),
)
@frozen
class ConfigRead:
    cwd: FileUri
    configPaths: list[list[str]]
    requirementsPaths: list[list[str]]


def environmentOf(ctx: Any) -> LocalEnvironment:
    """The executor's environment (a processor built without one describes this process)."""
    env = ctx.environment
    return env if isinstance(env, LocalEnvironment) else LocalEnvironment()


def _info(ctx: Any, _: None) -> dict[str, Any]:
    return environmentOf(ctx).info(ctx.methods.capabilities())


def _configRead(ctx: Any, p: ConfigRead) -> dict[str, Any]:
    if not p.configPaths and not p.requirementsPaths:
        raise invalidParams("at least one config or requirements path is required")
    if any(not path for path in (*p.configPaths, *p.requirementsPaths)):
        raise invalidParams("TOML paths must contain at least one key segment")
    env = environmentOf(ctx)
    layers = env.configLayers(p.configPaths) if p.configPaths else []
    return {
        "userHomeDir": fromHostPath(env.homeDir()),
        "codexHomeDir": fromHostPath(env.codexHome()),
        "hostname": socket.gethostname(),
        "config": {"layers": layers, "cloudInsertionIndex": 0},
        "requirements": {"layers": [], "cloudInsertionIndex": 0},
    }


def register(registry: MethodRegistry) -> None:
    registry.add(
        Method(
            "initialize",
            Dialect.V131,
            params.InitializeParams.fromJson,  # type: ignore[attr-defined]
            lambda ctx, p: ctx.initialize(p),
            None,
        )
    )
    registry.add(Method("environment/info", Dialect.V171, unitParams, _info, "environment info"))
    registry.add(
        Method(
            "environment/status",
            Dialect.V171,
            unitParams,
            lambda ctx, _: {"status": "ready"},
            "environment status",
        )
    )
    registry.add(
        Method(
            "environmentConfig/read",
            Dialect.V171,
            decode171(ConfigRead.fromJson),  # type: ignore[attr-defined]
            _configRead,
            "environment config",
            provides=("environmentConfigRead",),
        )
    )


__all__ = ["EXECUTOR_VERSION", "ConfigRead", "LocalEnvironment", "register"]
