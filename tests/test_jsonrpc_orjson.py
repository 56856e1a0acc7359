"""Outbound JSON through orjson is byte for byte what ``json`` wrote, for everything we send.

``wire/jsonrpc._dumps`` takes orjson (about ten times cheaper per reply) and falls back to
``json`` for what orjson refuses; these tests hold the two encoders together on arbitrary
strings (control characters, quotes, backslashes, non-ASCII, U+2028), integers up to 64 bits,
booleans, null, nested objects and arrays.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.wire import jsonrpc


def reference(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# Valid text only (a lone surrogate cannot be UTF-8 encoded by either encoder).
text = st.text(st.characters(exclude_categories=["Cs"]))
scalars = st.none() | st.booleans() | text | st.integers(-(2**63), 2**64 - 1)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(text, children, max_size=5),
    max_leaves=30,
)


class OrjsonMatchesJsonTests(SynchronousTestCase):
    @settings(max_examples=200, deadline=None)
    @given(values)
    def test_sameBytesAsJson(self, value: Any) -> None:
        self.assertEqual(jsonrpc._dumps(value), reference(value))

    def test_envelopes(self) -> None:
        result = {"isDirectory": True, "size": 4096, "modifiedAtMs": 1796316679636, "x": None}
        self.assertEqual(jsonrpc.encodeResult(7, result), reference({"id": 7, "result": result}))
        self.assertEqual(
            jsonrpc.encodeError("a\u2028b", -32600, 'bad "id"\n\x01\x7f\u00e9'),
            reference(
                {"error": {"code": -32600, "message": 'bad "id"\n\x01\x7f\u00e9'}, "id": "a\u2028b"}
            ),
        )
        params = {"processId": "p", "seq": 3, "exitCode": -1}
        self.assertEqual(
            jsonrpc.encodeNotification("process/exited", params),
            reference({"method": "process/exited", "params": params}),
        )

    def test_whatOrjsonRefusesGoesToJson(self) -> None:
        for value in ({1: "int key"}, {"big": 2**64}, {"neg": -(2**63) - 1}):
            self.assertEqual(jsonrpc._dumps(value), reference(value))
        with self.assertRaises(UnicodeEncodeError):  # as json always did
            jsonrpc._dumps({"s": "\ud800"})
        with self.assertRaises(TypeError):
            jsonrpc._dumps({"b": b"bytes"})

    def test_floatsRoundTrip(self) -> None:
        for value in (0.1, 100.0, 1e16, 1e-7, -2.5, 1.7976931348623157e308):
            self.assertEqual(json.loads(jsonrpc._dumps({"f": value}))["f"], value)
