"""The sans-IO JSON-RPC client core."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.wire.rpcclient import Notification, Reply, RpcClientCore, Unmatched


class RpcClientCoreTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.core: RpcClientCore[str] = RpcClientCore()

    def test_requestsAreNumberedFromOne(self) -> None:
        self.assertEqual(self.core.request("a", None, "A"), {"id": 1, "method": "a"})
        self.assertEqual(
            self.core.request("b", {"x": 1}, "B"), {"id": 2, "method": "b", "params": {"x": 1}}
        )
        self.assertEqual(len(self.core), 2)

    def test_replyMatchedOnceByIdInAnyOrder(self) -> None:
        self.core.request("a", None, "A")
        self.core.request("b", None, "B")
        second = self.core.received({"id": 2, "result": {}})
        self.assertEqual(second, Reply("B", {"id": 2, "result": {}}))
        first = self.core.received({"id": 1, "error": {"code": -1, "message": "m"}})
        assert isinstance(first, Reply)
        self.assertEqual((first.pending, first.error), ("A", {"code": -1, "message": "m"}))
        self.assertIsInstance(self.core.received({"id": 1, "result": {}}), Unmatched)

    def test_explicitId(self) -> None:
        self.core.request("a", None, "A", id="x")
        self.assertEqual(self.core.received({"id": "x", "result": 1}).pending, "A")  # type: ignore[union-attr]

    def test_notificationsAndOddMessages(self) -> None:
        self.assertEqual(
            self.core.received({"method": "process/output", "params": {}}),
            Notification({"method": "process/output", "params": {}}),
        )
        self.assertIsInstance(self.core.received({"id": 5, "method": "x"}), Unmatched)
        self.assertIsInstance(self.core.received([1, 2]), Unmatched)
        self.assertIsInstance(self.core.received({"id": [1], "result": 0}), Unmatched)
        self.assertIsNone(Reply("p", {"id": 1, "result": 0}).error)

    def test_takeAllEmptiesTheTable(self) -> None:
        self.core.request("a", None, "A")
        self.core.request("b", None, "B")
        self.assertEqual(self.core.takeAll(), ["A", "B"])
        self.assertEqual(len(self.core), 0)
        self.assertEqual(self.core.notification("initialized"), {"method": "initialized"})
