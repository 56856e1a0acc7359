"""The transport producer shared by local and relay websockets, driven directly."""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from twisted_exec.net.backpressure import TransportBackpressure


class _Recorder:
    def __init__(self, log: list[str], name: str) -> None:
        self.log = log
        self.name = name

    def pauseProducing(self) -> None:
        self.log.append(f"{self.name} paused")

    def resumeProducing(self) -> None:
        self.log.append(f"{self.name} resumed")


class _Protocol:
    def __init__(self, transport: Any) -> None:
        self.transport = transport


class TransportBackpressureTests(TestCase):
    def test_pauseReachesTargetThenReading_resumeTheOtherWayRound(self) -> None:
        log: list[str] = []
        protocol = _Protocol(_Recorder(log, "transport"))
        producer = TransportBackpressure(
            protocol, _Recorder(log, "target"), onResume=lambda: log.append("alive")
        )
        verifyObject(IPushProducer, producer)
        producer.pauseProducing()
        producer.pauseProducing()  # idempotent
        producer.resumeProducing()
        producer.resumeProducing()
        self.assertEqual(
            log,
            ["target paused", "transport paused", "alive", "transport resumed", "target resumed"],
        )
        self.assertEqual((producer.paused, producer.pauses), (False, 1))

    def test_transportGone(self) -> None:
        log: list[str] = []
        producer = TransportBackpressure(_Protocol(None), _Recorder(log, "target"))
        producer.pauseProducing()
        producer.resumeProducing()
        producer.stopProducing()
        self.assertEqual(log, ["target paused", "target resumed"])
