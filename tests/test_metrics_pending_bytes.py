"""The executor's byte counters are kept as plain ints and added to prometheus at each render."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.test_ops_units import samples
from twisted_exec.net.metrics import ExecutorMetrics

RECEIVED = ("codex_exec_received_bytes_total", (("transport", "relay"),))
SENT = ("codex_exec_sent_bytes_total", (("transport", "relay"),))


class PendingBytesTests(SynchronousTestCase):
    def test_everyRenderSeesEveryByte(self) -> None:
        m = ExecutorMetrics()
        m.received("relay", 100)
        m.received("relay", 5)
        m.sent("relay", 40)
        first = samples(m.render().decode())
        self.assertEqual((first[RECEIVED], first[SENT]), (105, 40))
        again = samples(m.render().decode())  # a flush adds each byte once
        self.assertEqual((again[RECEIVED], again[SENT]), (105, 40))
        m.received("relay", 7)
        third = samples(m.render().decode())
        self.assertEqual((third[RECEIVED], third[SENT]), (112, 40))

    def test_noSeriesBeforeTheFirstMessage(self) -> None:
        m = ExecutorMetrics()
        self.assertNotIn(RECEIVED, samples(m.render().decode()))
        m.sent("relay", 1)
        self.assertNotIn(RECEIVED, samples(m.render().decode()))
