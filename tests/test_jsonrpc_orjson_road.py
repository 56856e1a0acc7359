"""The envelope's orjson road (``jsonrpc._orjsonRoad``) against the serde-exact parser.

Whatever the road accepts must be exactly what ``serde_json_errors.parse`` reads from the same
text (types included: 1 vs 1.0, a plain dict vs a ``JsonObject`` with repeated keys), with no
trailing text; whatever it declines goes the serde road, so declining is always safe. The
corpus: every message the conformance scripts send, hypothesis's JSON with mutations, and
objects written with repeated keys and whitespace before the colon.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.test_serde_json_errors import _mutatedJson, _typed
from twisted_exec.wire import jsonrpc, serde_json_errors

CONFORMANCE = Path(__file__).resolve().parent.parent / "conformance"


def _conformanceMessages() -> list[str]:
    texts: list[str] = []
    for script in sorted(CONFORMANCE.glob("*.json")):
        for step in json.loads(script.read_text()).get("steps", []):
            if "sendText" in step:
                texts.append(step["sendText"])
            if "send" in step:
                texts.append(json.dumps(step["send"]))
    return texts


_KEYS = st.sampled_from(["id", "method", "params", "a", 'a\\"', "x"])
_WS = st.sampled_from(["", " ", "\n", "\t ", "\r"])
_LEAVES = st.sampled_from(["1", '"s"', '"\\":"', "null", "[]", "{}", "-0", "1.5", '"a-0"', "true"])


@st.composite
def _objectsWithRepeats(draw: st.DrawFn) -> str:
    """An object text whose keys may repeat, with whitespace where JSON allows it."""
    members = []
    for _ in range(draw(st.integers(0, 5))):
        key = draw(_KEYS)
        value = draw(_LEAVES | _objectsWithRepeats())
        members.append(f'{draw(_WS)}"{key}"{draw(_WS)}:{draw(_WS)}{value}{draw(_WS)}')
    return "{" + ",".join(members) + "}"


class OrjsonRoadTests(SynchronousTestCase):
    def assertSameAsSerde(self, text: str) -> None:
        raw = text.encode("utf-8", "surrogatepass")
        for payload in (raw, text):
            value = jsonrpc._orjsonRoad(payload)
            if value is jsonrpc._SLOW:
                continue
            parsed = serde_json_errors.parse(text)  # must not raise: the road accepted it
            self.assertIsNone(parsed.trailing, text)
            self.assertEqual(_typed(value), _typed(parsed.value), text)

    def test_conformanceMessages(self) -> None:
        texts = _conformanceMessages()
        self.assertGreater(len(texts), 400)
        taken = 0
        for text in texts:
            self.assertSameAsSerde(text)
            taken += jsonrpc._orjsonRoad(text.encode("utf-8", "surrogatepass")) is not jsonrpc._SLOW
        self.assertGreater(taken, 200)  # the road is the common case, not a dead branch

    def test_repeatedKeysTakeTheSerdeRoad(self) -> None:
        for text in (
            '{"a":1,"a":2}',
            '{"a" :1,"a" :2,"b":"\\":"}',
            '{"id":1,"method":"m","params":{"p":1,"p":2}}',
            '[{"a":1},{"b":{"c":1,"c":1}}]',
        ):
            self.assertIs(jsonrpc._orjsonRoad(text.encode()), jsonrpc._SLOW, text)

    def test_whatTheRoadDeclines(self) -> None:
        for text in ("-0", "[1.0]", '{"a":1e400}', "18446744073709551616", "[" * 127 + "]" * 127):
            self.assertIs(jsonrpc._orjsonRoad(text.encode()), jsonrpc._SLOW, text)
        self.assertEqual(jsonrpc._orjsonRoad(b'{"id":1,"method":"m"}'), {"id": 1, "method": "m"})

    @given(_objectsWithRepeats())
    @settings(max_examples=400, deadline=None, database=None)
    @example('{"a" :1,"a" :2,"b":"\\":"}')
    def test_objectsWithRepeats(self, text: str) -> None:
        self.assertSameAsSerde(text)

    @given(_mutatedJson() | st.text(max_size=200))
    @settings(max_examples=400, deadline=None, database=None)
    def test_mutatedJson(self, text: str) -> None:
        self.assertSameAsSerde(text)

    @given(st.binary(max_size=200))
    @settings(max_examples=300, deadline=None, database=None)
    def test_bytes(self, data: bytes) -> None:
        value = jsonrpc._orjsonRoad(data)
        if value is jsonrpc._SLOW:
            return
        self.assertSameAsSerde(data.decode("utf-8"))  # the road refuses invalid UTF-8
