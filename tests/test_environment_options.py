"""``--environment-id`` on the command line: which options go together, and what it builds."""

from __future__ import annotations

import io
import os
import sys
from typing import Any, cast

from twisted.internet.task import Clock
from twisted.python import usage
from twisted.trial.unittest import TestCase

from twisted_exec.executor.options import ExecutorOptions, makeService
from twisted_exec.executor.transports.relay.environment_service import EnvironmentExecutorService
from twisted_exec.executor.transports.relay.service import RemoteExecutorService


def parse(*argv: str) -> ExecutorOptions:
    options = ExecutorOptions()
    options.parseOptions(list(argv))
    return options


class EnvironmentOptionTests(TestCase):
    def test_combinations(self) -> None:
        parse("--remote", "http://r", "--environment-id", "env-1")
        parse("--remote", "http://r", "--environment-id", "env-1", "--registration-bearer-stdin")
        parse("--remote", "http://r", "--executor-id", "x")
        for argv in (
            ["--remote", "http://r", "--environment-id", "e", "--executor-id", "x"],
            ["--remote", "http://r", "--environment-id", "  "],
            ["--environment-id", "e"],
        ):
            self.assertRaises(usage.UsageError, parse, *argv)

    def test_buildsTheEnvironmentService(self) -> None:
        self.patch(os, "environ", {"CODEX_API_KEY": "k-123"})
        top = makeService(
            parse("--remote", "http://r.example", "--environment-id", "env-1"), Clock()
        )
        services = [s for s in cast(Any, top) if isinstance(s, RemoteExecutorService)]
        self.assertEqual(len(services), 1)
        service = services[0]
        self.assertIsInstance(service, EnvironmentExecutorService)
        assert isinstance(service, EnvironmentExecutorService)
        self.assertEqual(service.environmentRegistry.config.token, "k-123")
        self.assertEqual(service.environmentRegistry.config.environmentId, "env-1")
        # 0.171's websocket cap on a Noise relay: 256 KiB frames and messages.
        self.assertEqual(service.relayFactory.maxMessagePayloadSize, 256 * 1024)
        self.assertEqual(service.relayFactory.maxFramePayloadSize, 256 * 1024)

    def test_bearerFromStdin(self) -> None:
        self.patch(os, "environ", {"CODEX_API_KEY": "from-env"})
        fake = io.TextIOWrapper(io.BytesIO(b"from-stdin\nignored\n"))
        self.patch(sys, "stdin", fake)
        options = parse(
            "--remote",
            "http://r.example",
            "--environment-id",
            "env-1",
            "--registration-bearer-stdin",
        )
        top = makeService(options, Clock())
        [service] = [s for s in cast(Any, top) if isinstance(s, EnvironmentExecutorService)]
        self.assertEqual(service.environmentRegistry.config.token, "from-stdin")

    def test_missingBearerExits(self) -> None:
        self.patch(os, "environ", {})
        with self.assertRaises(SystemExit) as caught:
            makeService(parse("--remote", "http://r.example", "--environment-id", "env-1"), Clock())
        self.assertIn("environment registry bearer token is required", str(caught.exception))
