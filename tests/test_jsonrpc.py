"""The JSON-RPC envelope: classification and the reference's wire forms."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.wire import jsonrpc
from twisted_exec.wire.jsonrpc import Malformed, Notification, Request, Unparseable


class DecodeTests(SynchronousTestCase):
    def test_request(self) -> None:
        self.assertEqual(
            jsonrpc.decode(b'{"id":1,"method":"m","params":{"a":1}}'), Request(1, "m", {"a": 1})
        )

    def test_stringAndNegativeIds(self) -> None:
        self.assertEqual(jsonrpc.decode(b'{"id":"x","method":"m"}'), Request("x", "m", None))
        self.assertEqual(jsonrpc.decode(b'{"id":-3,"method":"m"}'), Request(-3, "m", None))

    def test_jsonrpcFieldAccepted(self) -> None:
        self.assertEqual(
            jsonrpc.decode(b'{"jsonrpc":"2.0","id":1,"method":"m"}'), Request(1, "m", None)
        )

    def test_notification(self) -> None:
        self.assertEqual(
            jsonrpc.decode(b'{"method":"initialized"}'), Notification("initialized", None)
        )

    def test_badIdsAreMalformedNotNotifications(self) -> None:
        for raw in (
            b'{"id":null,"method":"m"}',
            b'{"id":1.5,"method":"m"}',
            b'{"id":true,"method":"m"}',
            b'{"id":9223372036854775808,"method":"m"}',
        ):
            message = jsonrpc.decode(raw)
            self.assertIsInstance(message, Malformed, raw)
            assert isinstance(message, Malformed)
            self.assertEqual((message.id, message.code), (-1, -32600))

    def test_responseIsMalformed(self) -> None:
        self.assertIsInstance(jsonrpc.decode(b'{"id":1,"result":{}}'), Malformed)

    def test_arrays(self) -> None:
        """No batches: an array is read as a struct's fields in order, as serde does."""
        self.assertEqual(
            jsonrpc.decode(b'[{"id":1,"method":"m"}]'),
            Unparseable("data did not match any variant of untagged enum JSONRPCMessage"),
        )
        self.assertEqual(jsonrpc.decode(b'[1,"m",{"a":1}]'), Request(1, "m", {"a": 1}))

    def test_notJsonRpc(self) -> None:
        detail = "data did not match any variant of untagged enum JSONRPCMessage"
        self.assertEqual(jsonrpc.decode(b'{"id":73}'), Unparseable(detail))
        self.assertEqual(jsonrpc.decode(b'"str"'), Unparseable(detail))

    def test_serdeParseErrors(self) -> None:
        self.assertEqual(
            jsonrpc.decode(b"not json"), Unparseable("expected ident at line 1 column 2")
        )
        self.assertEqual(jsonrpc.decode(b"?"), Unparseable("expected value at line 1 column 1"))
        truncated = jsonrpc.decode(b'{"id":1,"method":')
        self.assertEqual(truncated, Unparseable("EOF while parsing a value at line 1 column 17"))

    def test_invalidUtf8(self) -> None:
        self.assertIsInstance(jsonrpc.decode(b"\xff\xfe"), Unparseable)

    @given(st.binary(max_size=200))
    def test_decodeNeverRaises(self, data: bytes) -> None:
        jsonrpc.decode(data)

    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
            max_leaves=12,
        )
    )
    def test_classifyNeverRaises(self, value: object) -> None:
        jsonrpc.classify(value)


class EncodeTests(SynchronousTestCase):
    def test_shapes(self) -> None:
        self.assertEqual(jsonrpc.encodeResult(1, {"a": 1}), b'{"id":1,"result":{"a":1}}')
        self.assertEqual(
            jsonrpc.encodeError("s", -32601, "no"),
            b'{"error":{"code":-32601,"message":"no"},"id":"s"}',
        )
        self.assertEqual(
            json.loads(jsonrpc.encodeNotification("n", {"é": 1})),
            {"method": "n", "params": {"é": 1}},
        )
