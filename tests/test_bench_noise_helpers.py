"""The Noise relay benchmark's pure helpers (bench/noise_worker.py): nothing timed is asserted.

The benchmark itself needs minutes and the 0.171 binary: ``python bench/noise_relay.py``."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from bench import noise_worker as worker
from bench.noise_relay import parseArgs, shownArguments


class SummaryTests(SynchronousTestCase):
    def test_ratesAndPercentiles(self) -> None:
        latencies = [n / 1000 for n in range(100, 0, -1)]  # 1..100 ms, unsorted
        result = worker.summarize(latencies, 2.0)
        self.assertEqual(result["calls_s"], 50.0)
        self.assertAlmostEqual(result["p50_ms"], 50.0)
        self.assertAlmostEqual(result["p99_ms"], 99.0)

    def test_cpuPer(self) -> None:
        self.assertAlmostEqual(worker.cpuPer(1.0, 1.5, 1000, 1e6), 500.0)
        self.assertAlmostEqual(worker.cpuPer(2.0, 2.2, 50.0, 1e3), 4.0)
        self.assertIsNone(worker.cpuPer(None, 1.0, 10, 1e6))
        self.assertIsNone(worker.cpuPer(1.0, None, 10, 1e6))
        self.assertIsNone(worker.cpuPer(1.0, 2.0, 0, 1e6))


class KeepBestTests(SynchronousTestCase):
    def test_bestRoundByDirection(self) -> None:
        self.assertEqual(worker.keepBest(3.0, 2.0, True), 2.0)
        self.assertEqual(worker.keepBest(2.0, 3.0, True), 2.0)
        self.assertEqual(worker.keepBest(3.0, 2.0, False), 3.0)
        self.assertEqual(worker.keepBest(None, 2.0, False), 2.0)

    def test_aNumberBeatsAFailure(self) -> None:
        self.assertEqual(worker.keepBest(2.0, "timeout", True), 2.0)
        self.assertEqual(worker.keepBest("timeout", 2.0, True), 2.0)
        self.assertEqual(worker.keepBest("error: a", "timeout", True), "timeout")


class CommandLineTests(SynchronousTestCase):
    def test_resultsFileShowsTheCommandWithoutItsOutputAndNote(self) -> None:
        argv = ["--quick", "--markdown", "x.md", "--note", "a b", "--rounds", "2", "--note=c"]
        self.assertEqual(shownArguments(argv), ["--quick", "--rounds", "2"])

    def test_defaults(self) -> None:
        args = parseArgs([])
        self.assertEqual((args.quick, args.rounds, args.only, args.rows), (False, None, None, None))
        self.assertEqual(parseArgs(["--rows", "rpc,16x4"]).rows, "rpc,16x4")
