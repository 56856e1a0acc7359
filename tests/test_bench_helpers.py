"""The benchmark's pure helpers (bench/benchlib.py): stats, /proc readings and the table.

The benchmark itself needs minutes and the reference binary: ``python bench/relay.py``."""

from __future__ import annotations

import base64
import math
import os

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from bench import benchlib as lib
from bench.relaylib.cli import parseArgs
from bench.relaylib.targets import failureText


class StatsTests(SynchronousTestCase):
    def test_nearestRankPercentile(self) -> None:
        samples = [float(n) for n in range(1, 101)]
        self.assertEqual(lib.percentile(samples, 0.5), 50.0)
        self.assertEqual(lib.percentile(samples, 0.99), 99.0)
        self.assertEqual(lib.percentile(samples, 1.0), 100.0)
        self.assertEqual(lib.percentile([3.0], 0.99), 3.0)
        self.assertTrue(math.isnan(lib.percentile([], 0.5)))

    def test_b64len(self) -> None:
        for size in range(0, 20):
            self.assertEqual(lib.b64len(base64.b64encode(bytes(size)).decode()), size)

    def test_ratio(self) -> None:
        self.assertEqual(lib.ratio(2.0, 4.0), 0.5)
        self.assertIsNone(lib.ratio("timeout", 4.0))
        self.assertIsNone(lib.ratio(1.0, 0.0))
        self.assertIsNone(lib.ratio(1.0, None))


class ProcTests(SynchronousTestCase):
    def test_ownProcess(self) -> None:
        rss = lib.rssKiB(os.getpid())
        assert rss is not None
        self.assertGreater(rss, 1000)
        before = lib.cpuSeconds(os.getpid())
        sum(i * i for i in range(300_000))
        after = lib.cpuSeconds(os.getpid())
        assert before is not None and after is not None
        self.assertGreaterEqual(after, before)

    def test_goneProcess(self) -> None:
        self.assertIsNone(lib.rssKiB(2**22 + 12345))
        self.assertIsNone(lib.cpuSeconds(2**22 + 12345))
        self.assertIsNone(lib.cpuSeconds(None))


class TableTests(SynchronousTestCase):
    def test_ratiosAndFailures(self) -> None:
        rows = [
            lib.Row("p50", "ms", True, {"ours": 0.3, "reference": 0.1, "ceiling": 0.2}),
            lib.Row("rate", "1/s", False, {"ours": 1500.0, "reference": "timeout"}),
        ]
        lines = lib.renderTable(rows, ["ours", "reference", "ceiling"])
        self.assertEqual(lines[0], "| measurement | unit | ours | reference | ceiling | ours/ref |")
        self.assertEqual(lines[2], "| p50 | ms ↓ | 0.30 | 0.10 | 0.20 | 3.00 |")
        self.assertEqual(lines[3], "| rate | 1/s ↑ | 1,500 | timeout | - | - |")

    def test_beforeColumn(self) -> None:
        rows = [lib.Row("x", "µs", True, {"ours": 50.0, "before": 100.0, "reference": 25.0})]
        lines = lib.renderTable(rows, ["ours", "before", "reference"])
        self.assertTrue(lines[0].endswith("| ours/ref | before/ref |"))
        self.assertTrue(lines[2].endswith("| 2.00 | 4.00 |"))

    def test_withoutTheReferenceNoRatio(self) -> None:
        lines = lib.renderTable([lib.Row("x", "ms", True, {"ours": 1.0})], ["ours"])
        self.assertEqual(lines[0], "| measurement | unit | ours |")


class RelayCommandLineTests(SynchronousTestCase):
    """The relay benchmark's package imports by name and parses its documented command line."""

    def test_quickHarnessProcessCommand(self) -> None:
        args = parseArgs(["--harness-process", "--quick", "--no-ceiling", "--rows", "rpc"])
        self.assertTrue(args.harness_process)
        self.assertTrue(args.quick)
        self.assertTrue(args.no_ceiling)
        self.assertEqual(args.rows, "rpc")

    def test_failureText(self) -> None:
        self.assertEqual(failureText(defer.TimeoutError()), "timeout")
        self.assertEqual(failureText(RuntimeError("boom\nmore")), "error: boom")
