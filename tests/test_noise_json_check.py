"""The Noise demux's "is this message a JSON object" check answers as ``json.loads`` would.

:func:`isJsonObject` asks orjson first and ``json`` only when orjson refuses; these tests hold
it to the plain ``json.loads`` verdict on generated JSON values, on their text cut or spliced
with what the two parsers treat differently, and on arbitrary bytes.
"""

from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.executor.transports.relay.noise_stream import isJsonObject


def _jsonVerdict(message: bytes) -> bool:
    try:
        return isinstance(json.loads(message), dict)
    except (ValueError, RecursionError):
        return False


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=12,
)
_SPLICES = [
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b'"\\ud800"',
    b'"\xed\xa0\x80"',
    b"\xef\xbb\xbf",
    b"\x00",
    b"1e999",
    b"18446744073709551616",
    b"-0",
    b" ",
    b",",
    b"}",
    b'"a":1',
]


class JsonObjectCheckTests(SynchronousTestCase):
    @settings(max_examples=1500, deadline=None)
    @given(_values, st.integers(min_value=0, max_value=64), st.sampled_from(_SPLICES))
    @example({"a": 1}, 5, b"NaN")
    @example({"a": 1}, 5, b'"\\ud800"')
    @example({"a": 1}, 5, b"18446744073709551616")
    def test_sameVerdictAsJson(self, value: object, cut: int, splice: bytes) -> None:
        text = json.dumps(value).encode()
        for message in (text, text[:cut] + splice + text[cut:], splice + text, text + splice):
            self.assertEqual(isJsonObject(message), _jsonVerdict(message), message)

    @settings(max_examples=1500, deadline=None)
    @given(st.binary(max_size=24))
    def test_sameVerdictOnAnyBytes(self, message: bytes) -> None:
        self.assertEqual(isJsonObject(b"{" + message), _jsonVerdict(b"{" + message))
        self.assertEqual(isJsonObject(message), _jsonVerdict(message))

    def test_deepNesting(self) -> None:
        for depth in (150, 250, 1000, 1100, 5000):
            message = b'{"a":' * depth + b"1" + b"}" * depth
            self.assertEqual(isJsonObject(message), _jsonVerdict(message))

    def test_objectsOnly(self) -> None:
        self.assertTrue(isJsonObject(b'{"id":1,"method":"m"}'))
        self.assertFalse(isJsonObject(b"[1]"))
        self.assertFalse(isJsonObject(b"{"))
        self.assertTrue(isJsonObject(b'{"a":NaN}'))  # json's verdict, not orjson's
