"""Remote mode's part of ``twistd codex-executor``: the 0.131 relay or the 0.171 environment.

:func:`addRemoteService` puts the one ``--remote`` asks for under the executor service. Each
reads its registry configuration first (a bad one ends start-up with one ``Error: ...`` line and
exit code 1, as the reference), and under twistd a permanent registry error later (a 401) ends
the process the same way. The relay modules are imported only when remote mode is on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from twisted_exec.executor import secrets

_Config = TypeVar("_Config")


def addRemoteService(
    options: Mapping[str, Any],
    reactor: Any,
    factory: Any,
    top: Any,
    twistd: Any,
    *,
    registrationEnv: Mapping[str, str],
    environmentToken: str | None,
    maxMessageBytes: int,
    metrics: Any,
) -> None:
    """The environment service with ``--environment-id``, else the 0.131 relay, under ``top``."""
    if options["environment-id"] is not None:
        _addEnvironmentService(options, reactor, factory, top, twistd, environmentToken)
        return
    from twisted_exec.executor.transports.relay import RemoteConfig, makeRemoteService

    remoteConfig = _configOrExit(
        lambda: RemoteConfig.fromInputs(
            options["remote"],
            options["executor-id"] or "",
            options["name"],
            environ=registrationEnv,
        )
    )
    remote = makeRemoteService(
        reactor,
        factory,
        remoteConfig,
        maxMessageBytes=maxMessageBytes,
        maxStreams=options["max-streams"] or None,
        metrics=metrics,
    )
    _addRelayService(remote, top, twistd, reactor)


def environmentBearer(options: Mapping[str, Any], registrationEnv: Mapping[str, str]) -> str | None:
    """The ``--environment-id`` bearer: ``--registration-bearer-stdin``/``-file`` (one line, as
    0.171), else ``$CODEX_API_KEY`` (what 0.171 reads), else our ``--executor-id`` variable.
    Read before :func:`secrets.secureEnvironment` blanks them from our environment."""
    if options["registration-bearer-stdin"] or options.get("registration-bearer-file"):
        return registrationEnv.get(secrets.REGISTRATION_TOKEN_ENV)
    for value in (
        os.environ.get("CODEX_API_KEY"),
        registrationEnv.get(secrets.REGISTRATION_TOKEN_ENV),
    ):
        if value and value.strip():
            return value
    return None


def _addEnvironmentService(
    options: Mapping[str, Any],
    reactor: Any,
    factory: Any,
    top: Any,
    twistd: Any,
    token: str | None,
) -> None:
    from twisted_exec.executor.transports.relay.environment_registry import EnvironmentConfig
    from twisted_exec.executor.transports.relay.environment_service import (
        EnvironmentExecutorService,
    )

    config = _configOrExit(
        lambda: EnvironmentConfig.fromInputs(
            options["remote"],
            options["environment-id"] or "",
            options["name"],
            token=token if token is not None else "",
            environ={},
        )
    )
    _addRelayService(EnvironmentExecutorService(reactor, factory, config), top, twistd, reactor)


def _configOrExit(build: Callable[[], _Config]) -> _Config:
    """``build()``; a registry configuration error ends start-up like the reference: one
    ``Error: ...`` line on stderr, exit code 1."""
    from twisted_exec.executor.transports.relay.registry import RegistryError

    try:
        return build()
    except RegistryError as err:
        raise SystemExit(f"Error: {err}") from None


def _addRelayService(service: Any, top: Any, twistd: Any, reactor: Any) -> None:
    """``service`` under ``top``; under twistd, its permanent registry error ends the process."""
    service.setServiceParent(top)
    if twistd is not None and hasattr(twistd, "get"):
        service.whenFatal().addCallback(_exitOnFatal, reactor)


def _exitOnFatal(error: BaseException, reactor: Any) -> None:
    """A permanent registry error (e.g. 401) ends twistd with exit code 1 and a clear line.

    twistd has no exit-code hook; the code is set at interpreter exit, after twistd's own
    cleanup (pidfile removal, log flush) has run.
    """
    import atexit

    stream = sys.__stderr__ or sys.stderr
    stream.write(f"Error: {error}\n")
    stream.flush()

    def exitNonZero() -> None:
        for out in (sys.__stdout__, sys.__stderr__):
            if out is not None:
                out.flush()
        os._exit(1)

    atexit.register(exitNonZero)
    if reactor.running:
        reactor.stop()
