"""Fuzzing the executor's Noise relay at CI size (``scripts/fuzz_noise.py`` runs 100k frames).

Mutated handshakes, records and control frames never raise, never disturb a neighbouring
stream, and the failed-handshake limit closes each websocket exactly at 8.
"""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from twisted_exec.testing.noise_fuzz import NoiseFuzzer


class NoiseFuzzTests(TestCase):
    def test_mutatedFrames(self) -> None:
        stats = NoiseFuzzer(seed=171, checkEvery=25).run(2000)
        self.assertGreaterEqual(stats.frames, 2000)
        # The budget was hit (and enforced: exactly 8 each time, checked by the fuzzer) often.
        self.assertGreater(stats.exhaustions, 10)
        self.assertGreaterEqual(stats.handshakeFailures, stats.exhaustions * 8)
        self.assertGreater(stats.guardChecks, 40)
        for kind in ("mutated-handshake", "spliced-handshake", "victim-data", "random-frame"):
            self.assertGreater(stats.kinds.get(kind, 0), 30, kind)
