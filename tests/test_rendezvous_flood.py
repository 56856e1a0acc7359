"""One harness opens 100,000 streams and reads nothing: the rendezvous keeps answering.

The scenario is ``bench/flood.py``'s (the rendezvous as its own process, a flooding harness and
a ``/readyz`` prober as two more, an executor websocket here answering every stream it is
offered, so that the replies back up behind the harness that does not read). The suite holds
what needs no clock: every ``/readyz`` during the flood is answered 200 (each within the
prober's own 30 s socket timeout: before the fix, 20,000 streams froze the rendezvous for 54 s),
and no more streams than the cap ever reached the executor (the flood beyond it gets resets,
and its websocket is closed after as many refusals again). How fast ``/readyz`` answers is the
benchmark's number; that a flood cannot hold the loop for more than one slice per turn is
counted in ``tests/test_rendezvous_pacing.py``.
"""

from __future__ import annotations

import os
import sys

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from bench.flood import runFlood, summary
from tests.logguard import GUARD
from twisted_exec.rendezvous.router import MAX_STREAMS_PER_HARNESS
from twisted_exec.testing.executorproc import SOURCE_ROOT

TOKEN = "tok-FLOOD-0123456789"
STREAMS = int(os.environ.get("TWISTED_EXEC_FLOOD_STREAMS", "100000"))
#: Where the rendezvous child's code comes from (to run this test against another checkout).
SOURCE = os.environ.get("TWISTED_EXEC_FLOOD_SOURCE", str(SOURCE_ROOT))


class FloodTests(TestCase):
    timeout = 180

    async def test_readyzAnsweredAndStreamsCappedDuringTheFlood(self) -> None:
        GUARD.learn(TOKEN)
        run = await runFlood(
            reactor, TOKEN, STREAMS, 8, SOURCE, addCleanup=self.addCleanup, learn=GUARD.learnUrl
        )
        self.assertRegex(run.said, r"^(sent \d+|cut off after \d+)$")
        self.assertTrue(run.idle.answers)
        self.assertEqual(set(run.idle.statuses), {"200"}, run.idle.answers[:5])
        self.assertTrue(run.flood.answers, "no /readyz answered during the flood")
        self.assertEqual(set(run.flood.statuses), {"200"}, run.flood.answers[:5])
        cap = min(STREAMS, MAX_STREAMS_PER_HARNESS)
        self.assertGreater(run.answered, 0)
        self.assertLessEqual(run.answered, cap)
        self.assertLessEqual(run.listedStreams, cap)
        print(f"\nflood (not asserted): {summary(run)}", file=sys.stderr)
