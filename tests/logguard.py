"""Whole-suite guard: no log line may contain a bearer token or a registration URL's query.

Installed by ``tests/__init__.py`` before any test module is imported, it watches every
twisted.logger event of the run (tracebacks included) and learns the secrets as tests create
them: every token a :class:`FakeRegistry` accepts or a :class:`RemoteConfig` carries, and the
query string of every websocket URL a test rendezvous hands out. Any ``?sig=``/``&sig=`` in a
log line is a violation as well, whoever made the URL. ``tests/test_zz_log_secrets.py`` (last
in both runners' order) asserts that nothing was found. Executor child processes are checked
by :class:`~twisted_exec.testing.executorproc.LogScan` with the same secrets.
"""

from __future__ import annotations

import re
from typing import Any, cast

from twisted.logger import ILogObserver, LogEvent, eventAsText, globalLogPublisher

_SIG = re.compile(r"[?&]sig=(?!<redacted>)")
#: Secrets shorter than this would match innocent text (they are never real tokens).
_MIN_SECRET = 6


class LogGuard:
    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.violations: list[str] = []
        self.lines = 0
        self.relayLines = 0
        self.installed = False

    def learn(self, secret: str | None) -> None:
        if secret and len(secret) >= _MIN_SECRET:
            self.secrets.add(secret)

    def learnUrl(self, url: str) -> str:
        self.learn(url.partition("?")[2])
        return url

    def observe(self, event: LogEvent) -> None:
        text = eventAsText(event, includeTimestamp=False)
        if not text:
            return
        self.lines += 1
        if str(event.get("log_namespace", "")).startswith("twisted_exec.executor.transports.relay"):
            self.relayLines += 1
        if _SIG.search(text) or any(secret in text for secret in self.secrets):
            self.violations.append(text[:500])

    def install(self) -> None:
        if self.installed:
            return
        self.installed = True
        from twisted_exec.executor.transports.relay.registry import RemoteConfig
        from twisted_exec.testing import registry, rendezvous, slowpeer

        guard = self
        originalInit = registry.FakeRegistry.__init__

        def fakeRegistryInit(self: Any, token: str, *args: Any, **kwargs: Any) -> None:
            guard.learn(token)
            originalInit(self, token, *args, **kwargs)

        registry.FakeRegistry.__init__ = fakeRegistryInit  # type: ignore[method-assign]

        originalFromInputs = RemoteConfig.fromInputs.__func__  # type: ignore[attr-defined]

        def fromInputs(cls: Any, *args: Any, **kwargs: Any) -> Any:
            config = originalFromInputs(cls, *args, **kwargs)
            guard.learn(config.token)
            return config

        RemoteConfig.fromInputs = classmethod(fromInputs)  # type: ignore[method-assign,assignment]

        for cls in (rendezvous.Rendezvous, slowpeer.SlowRendezvous):
            original = getattr(cls, "executorUrl", None)
            if original is None:  # renamed elsewhere: the ?sig= pattern still guards
                continue

            def executorUrl(self: Any, executorId: str, _original: Any = original) -> str:
                return guard.learnUrl(_original(self, executorId))

            cls.executorUrl = executorUrl  # type: ignore[method-assign]

        globalLogPublisher.addObserver(cast(ILogObserver, self.observe))


GUARD = LogGuard()
