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

from twisted.logger import ILogObserver, LogEvent, Logger, eventAsText, globalLogPublisher
from twisted.python.failure import Failure

_report = Logger(namespace="tests.logguard")

_SIG = re.compile(r"[?&]sig=(?!<redacted>)")
#: A compact JWS (``header.claims.signature``, base64url JSON objects): whoever minted it.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{16,}")
#: Secrets shorter than this would match innocent text (they are never real tokens).
_MIN_SECRET = 6


class LogGuard:
    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.violations: list[str] = []
        self.lines = 0
        self.relayLines = 0
        self.installed = False
        self._reporting = False

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
        if _SIG.search(text) or _JWT.search(text) or any(secret in text for secret in self.secrets):
            self.violations.append(text[:500])
            self._failTheRunningTest(event)

    def _failTheRunningTest(self, event: LogEvent) -> None:
        """Fail the test that logged it, whatever the order tests run in: trial (and pytest
        running trial TestCases) turn a logged failure during a test into that test's error.
        The failure names where the line came from, never the line itself (it holds the
        secret). ``test_zz_log_secrets`` stays as a backstop for lines logged between tests."""
        if self._reporting:
            return
        self._reporting = True
        try:
            where = str(event.get("log_namespace", "?"))
            _report.failure(
                "a log line contains a secret ({where})",
                Failure(AssertionError(f"secret in a log line from {where}")),
                where=where,
            )
        finally:
            self._reporting = False

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

        self._learnSecurity()
        globalLogPublisher.addObserver(cast(ILogObserver, self.observe))

    def _learnSecurity(self) -> None:
        """Tokens of the rendezvous, websocket tokens and JWT secrets, minted JWTs and their
        signatures, executor URL signatures, and every value a SecretScrubber learns."""
        from twisted_exec.net import secretenv, wsauth_config, wsauth_jwt
        from twisted_exec.rendezvous import auth

        guard = self
        originalMint = wsauth_jwt.mintSignedBearer

        def mintSignedBearer(secret: bytes, claims: Any) -> str:
            guard.learn(secret.decode("utf-8", "replace"))
            token = originalMint(secret, claims)
            guard.learn(token)
            guard.learn(token.rpartition(".")[2])
            return token

        wsauth_jwt.mintSignedBearer = mintSignedBearer  # type: ignore[assignment]
        originalRead = wsauth_config.readTrimmedSecret

        def readTrimmedSecret(path: str) -> str:
            secret = originalRead(path)
            guard.learn(secret)
            return secret

        wsauth_config.readTrimmedSecret = readTrimmedSecret  # type: ignore[assignment]
        originalLearn = secretenv.SecretScrubber.learn

        def learn(self: Any, secret: str | bytes | None) -> None:
            guard.learn(secret.decode("utf-8", "replace") if isinstance(secret, bytes) else secret)
            originalLearn(self, secret)

        secretenv.SecretScrubber.learn = learn  # type: ignore[method-assign]
        originalTokens = auth.TokenSet.__init__

        def tokenSetInit(self: Any, tokens: Any) -> None:
            tokens = list(tokens)
            for entry in tokens:
                guard.learn(entry[0] if isinstance(entry, tuple) else str(entry).strip())
            originalTokens(self, tokens)

        auth.TokenSet.__init__ = tokenSetInit  # type: ignore[method-assign]
        originalSign = auth.UrlSigner.sign

        def sign(self: Any, executorId: str) -> str:
            sig = originalSign(self, executorId)
            guard.learn(sig)
            return sig

        auth.UrlSigner.sign = sign  # type: ignore[method-assign]


GUARD = LogGuard()
