"""serde_json's verdicts, as observed on the reference binary (Codex CLI 0.131.0).

Every expected string below was read off ``codex exec-server --listen ws://127.0.0.1:0``: each
text was sent as one websocket text frame and the reply's message recorded (after the
``failed to parse websocket JSON-RPC message from ...: `` prefix). ``tests/data/
serde_json_reference.jsonl`` holds 1200 more such observations (hand-written cases and mutations
of valid messages, up to 60 per kind of reply); ``"CLOSED"`` there means the reference dropped
the connection, ``exec-server stub does not implement ...`` that the text was read as a request.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.executor.core.dialect import Dialect
from twisted_exec.executor.methods import buildRegistry
from twisted_exec.wire import jsonrpc, serde_json_errors
from twisted_exec.wire.jsonrpc import Malformed, Notification, Request, RequestId, Unparseable
from twisted_exec.wire.serde_json_errors import JsonObject, SerdeJsonError, numberValue

NO_VARIANT = "data did not match any variant of untagged enum JSONRPCMessage"
REFERENCE_DATA = Path(__file__).parent / "data" / "serde_json_reference.jsonl"

#: (text, the reference's parse-error message), envelope.json's cases first.
PARSE_ERRORS: list[tuple[str, str]] = [
    ("this is not json", "expected ident at line 1 column 2"),
    ('{"id": 4, "method": "initialize", ', "EOF while parsing a value at line 1 column 34"),
    ('"a json string"', NO_VARIANT),
    ('{"id":73}', NO_VARIANT),
    ("{}", NO_VARIANT),
    ("42", NO_VARIANT),
    ("{", "EOF while parsing an object at line 1 column 1"),
    ('{"id"', "EOF while parsing an object at line 1 column 5"),
    ('{"id":', "EOF while parsing a value at line 1 column 6"),
    ('{"id": 1', "EOF while parsing an object at line 1 column 8"),
    ('{"id": 1,', "EOF while parsing a value at line 1 column 9"),
    ("[", "EOF while parsing a list at line 1 column 1"),
    ('"abc', "EOF while parsing a string at line 1 column 4"),
    ('{"a":[1,', "EOF while parsing a value at line 1 column 8"),
    ("tru", "EOF while parsing a value at line 1 column 3"),
    ("nul", "EOF while parsing a value at line 1 column 3"),
    ('{"id": 1}}', NO_VARIANT),
    ('{"id": 1} x', NO_VARIANT),
    ('{"id": 90, "method": "no/such"}}', "trailing characters at line 1 column 32"),
    ('{"id": 91, "method": "no/such"} x', "trailing characters at line 1 column 33"),
    ('{"id": 1e400}', "number out of range at line 1 column 12"),
    ('{"id": -}', "invalid number at line 1 column 9"),
    ('{"id": "\\u00zz"}', "invalid escape at line 1 column 14"),
    ('{"id": "\\ud800"}', "unexpected end of hex escape at line 1 column 15"),
    ('{"id": 1 "method": "x"}', "expected `,` or `}` at line 1 column 10"),
    ('{"id" 1}', "expected `:` at line 1 column 7"),
    ('{"id": [1,}', "expected value at line 1 column 11"),
    (" {}", NO_VARIANT),
    ("{'id': 1}", "key must be a string at line 1 column 2"),
    ('{"id": 01}', "invalid number at line 1 column 9"),
    ('{"id": 1, }', "trailing comma at line 1 column 11"),
    ("", "EOF while parsing a value at line 1 column 0"),
    (" ", "EOF while parsing a value at line 1 column 1"),
    ("é", "expected value at line 1 column 1"),
    # numbers
    ("[1e99999999999]", "number out of range at line 1 column 13"),
    ("[1e9999999999]", "number out of range at line 1 column 13"),
    ("[1e999999999]", "number out of range at line 1 column 12"),
    ("[-1e99999999999]", "number out of range at line 1 column 14"),
    ("[0e99999999999]", NO_VARIANT),
    ("[1e-99999999999]", NO_VARIANT),
    ("1.5e400", "number out of range at line 1 column 7"),
    ("1e-400", NO_VARIANT),
    ("1.7976931348623157e308", NO_VARIANT),
    ("1.7976931348623158e308", "number out of range at line 1 column 22"),
    ("17976931348623158" + "0" * 310, "number out of range at line 1 column 327"),
    ("123456789012345678901234567890", NO_VARIANT),
    ("1.", "EOF while parsing a value at line 1 column 2"),
    ("1.x", "invalid number at line 1 column 3"),
    ("1e", "EOF while parsing a value at line 1 column 2"),
    ("1e+", "EOF while parsing a value at line 1 column 3"),
    ("1ex", "invalid number at line 1 column 3"),
    ("-", "EOF while parsing a value at line 1 column 1"),
    ("--1", "invalid number at line 1 column 2"),
    ("-a", "invalid number at line 1 column 2"),
    ("0x10", NO_VARIANT),
    ("[1.0e+]", "invalid number at line 1 column 7"),
    ("[01.5]", "invalid number at line 1 column 3"),
    ("[-01]", "invalid number at line 1 column 4"),
    ("[1.5.5]", "expected `,` or `]` at line 1 column 5"),
    ("[.5]", "expected value at line 1 column 2"),
    ("[+1]", "expected value at line 1 column 2"),
    ("NaN", "expected value at line 1 column 1"),
    ("Infinity", "expected value at line 1 column 1"),
    ("-Infinity", "invalid number at line 1 column 2"),
    # strings and escapes
    (
        '"a\tb"',
        "control character (\\u0000-\\u001F) found while parsing a string at line 1 column 3",
    ),
    (
        '{"a\x00":1}',
        "control character (\\u0000-\\u001F) found while parsing a string at line 1 column 4",
    ),
    ('"\\x"', "invalid escape at line 1 column 3"),
    ('"\\', "EOF while parsing a string at line 1 column 2"),
    ('"\\u12', "EOF while parsing a string at line 1 column 5"),
    ('"\\u12"', "EOF while parsing a string at line 1 column 6"),
    ('"\\u0"ab', "invalid escape at line 1 column 7"),
    ('"\\udc00"', "lone leading surrogate in hex escape at line 1 column 7"),
    ('"\\ud800\\udbff"', "lone leading surrogate in hex escape at line 1 column 13"),
    ('"\\ud800\\u0041"', "lone leading surrogate in hex escape at line 1 column 13"),
    ('"\\ud800x"', "unexpected end of hex escape at line 1 column 8"),
    ('"\\ud800\\n"', "unexpected end of hex escape at line 1 column 9"),
    ('"\\ud800', "EOF while parsing a string at line 1 column 7"),
    ('"\\ud800\\', "EOF while parsing a string at line 1 column 8"),
    ('"\\ud800\\u', "EOF while parsing a string at line 1 column 9"),
    ('"\\ud800\\udc00"', NO_VARIANT),
    # structure, lines and byte columns
    ('{"a":1,}', "trailing comma at line 1 column 8"),
    ("[1,]", "trailing comma at line 1 column 4"),
    ("[1 2]", "expected `,` or `]` at line 1 column 4"),
    ('{"a":1 "b"}', "expected `,` or `}` at line 1 column 8"),
    ("{1:2}", "key must be a string at line 1 column 2"),
    ("[,1]", "expected value at line 1 column 2"),
    ("{,}", "key must be a string at line 1 column 2"),
    ("[1,,2]", "expected value at line 1 column 4"),
    ("\n\n  x", "expected value at line 3 column 3"),
    ('{"a":\n tru}', "expected ident at line 2 column 5"),
    ('{\r\n"a" x}', "expected `:` at line 2 column 5"),
    ("[1,\n2,\n3 4]", "expected `,` or `]` at line 3 column 3"),
    ('{"é": x}', "expected value at line 1 column 8"),
    ('"é', "EOF while parsing a string at line 1 column 3"),
    ('{"id":"é","method":"no/such"} é', "trailing characters at line 1 column 32"),
    ('{"id":1,"method":"no/such"}\n  x', "trailing characters at line 2 column 3"),
    ('{"id":1,"method":"no/such"}\r\n\tx', "trailing characters at line 2 column 2"),
    ("nulx", "expected ident at line 1 column 4"),
    ("n", "EOF while parsing a value at line 1 column 1"),
    ("falsy", "expected ident at line 1 column 5"),
    ("true false", NO_VARIANT),
    ("\ufeff{}", "expected value at line 1 column 1"),
    ('{"a":1}{', NO_VARIANT),
    ("\x00", "expected value at line 1 column 1"),
    # nesting: 127 levels are fine, the 128th opening bracket is refused where it stands
    ("[" * 127 + "]" * 127, NO_VARIANT),
    ("[" * 128 + "]" * 128, "recursion limit exceeded at line 1 column 128"),
    ("[" * 200, "recursion limit exceeded at line 1 column 128"),
    ('{"a":' * 127 + "1" + "}" * 127, NO_VARIANT),
    ('{"a":' * 128 + "1" + "}" * 128, "recursion limit exceeded at line 1 column 636"),
    # the value must match a message shape before trailing text is looked at
    ("[1] x", NO_VARIANT),
    ('{"id": 1.5, "method":"no/such"} x', "trailing characters at line 1 column 33"),
    ('{"jsonrpc":5,"id":1,"method":"no/such"} x', "trailing characters at line 1 column 41"),
    ('{"id":"a","result":5} x', "trailing characters at line 1 column 23"),
    ('{"id":1,"method":5} x', NO_VARIANT),
    ('{"id":1.0,"result":5} x', NO_VARIANT),
    ('{"id":1,"error":{"code":1}} x', NO_VARIANT),
    ('{"id":1,"error":{"code":1,"message":"m"}} x', "trailing characters at line 1 column 43"),
    ('{"method":"no/such","id":-9223372036854775809} x', "trailing characters at line 1 column 48"),
    # repeated keys: a struct refuses a repeated field
    ('{"method":"a","method":"b"}', NO_VARIANT),
    ('{"id":1,"id":2}', NO_VARIANT),
    ('{"method":"no/such","params":1,"params":2}', NO_VARIANT),
    ('{"id":1,"error":{"code":1,"message":"m","code":2}} x', NO_VARIANT),
    # arrays: a struct also reads a sequence of its fields
    ("[]", NO_VARIANT),
    ("[1]", NO_VARIANT),
    ('[{"id": 5, "method": "fs/getMetadata", "params": {"path": "/"}}]', NO_VARIANT),
    ('[1,"no/such",null,null,null]', NO_VARIANT),
]

#: (text, the request the reference answered: its id and method)
REQUESTS: list[tuple[str, RequestId, str]] = [
    ('[1, "m"]', 1, "m"),
    ('["a","no/such"]', "a", "no/such"),
    ('[1,"no/such",null,null]', 1, "no/such"),
    ('{"jsonrpc":5,"id":1,"method":"no/such"}', 1, "no/such"),
    ('{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"no/such"}', 1, "no/such"),
    ('{"id":1,"method":"no/such","trace":{}}', 1, "no/such"),
    ('{"id":1,"method":"no/such","trace":[null, null]}', 1, "no/such"),
    ('{"id":1,"method":"no/such","trace":{"traceparent":"x", "tracestate": null}}', 1, "no/such"),
    ('{"method":"no/such","id":-9223372036854775808}', -(2**63), "no/such"),
    ('{"id": 92, "method": "no/such"}\n', 92, "no/such"),
]

#: texts after which the reference dropped the connection (a response, or a request it read as a
#: notification): we answer with an error instead (decisions.md 6).
SESSION_KILLERS = [
    '{"id": -0, "method":"no/such"}',
    '{"id":1,"method":"x","trace":5}',
    '{"id":1,"method":"no/such","trace":{"traceparent":5}}',
    '{"id":1,"method":"no/such","trace":[null, null, null]}',
    '["no/such"]',
    "[1, {}]",
    '[{"code":1,"message":"x"}, 1]',
    '{"id": 5, "method": "fs/getMetadata", "params": {"path": "/"}, "id": 6}',
]


def _detail(text: str) -> str:
    message = jsonrpc.decode(text.encode("utf-8"))
    assert isinstance(message, Unparseable), message
    return message.detail


class ReferenceVerdictTests(SynchronousTestCase):
    def test_parseErrors(self) -> None:
        for text, expected in PARSE_ERRORS:
            self.assertEqual(_detail(text), expected, text)

    def test_requests(self) -> None:
        for text, requestId, method in REQUESTS:
            message = jsonrpc.decode(text.encode("utf-8"))
            assert isinstance(message, Request), (text, message)
            self.assertEqual((message.id, message.method), (requestId, method), text)

    def test_sessionKillersGetAnAnswer(self) -> None:
        for text in SESSION_KILLERS:
            message = jsonrpc.decode(text.encode("utf-8"))
            self.assertIsInstance(message, Malformed | Notification, text)

    def test_recordedObservations(self) -> None:
        lines = REFERENCE_DATA.read_text("utf-8").splitlines()
        self.assertGreater(len(lines), 1000)
        for line in lines:
            case = json.loads(line)
            text, reply = case["text"], case["reply"]
            message = jsonrpc.decode(text.encode("utf-8"))
            if reply == "CLOSED":
                self.assertIsInstance(message, Malformed | Notification, text)
            elif reply.startswith("exec-server stub does not implement"):
                assert isinstance(message, Request), (text, message)
                registry = buildRegistry()
                self.assertIsNone(registry.resolve(message.method, None, Dialect.V171))
                self.assertEqual(
                    reply, f"exec-server stub does not implement `{message.method}` yet"
                )
            else:
                self.assertEqual(message, Unparseable(reply), text)


class MessageShapeTests(SynchronousTestCase):
    def test_repeatedIdIsRefusedWithItsName(self) -> None:
        self.assertEqual(
            jsonrpc.decode(b'{"id":5,"method":"fs/getMetadata","id":6}'),
            Malformed(-1, -32600, "duplicate field `id`"),
        )

    def test_repeatedKeyInParamsKeepsTheLastValue(self) -> None:
        message = jsonrpc.decode(b'{"id":1,"method":"m","params":{"path":"/a","path":"/b"}}')
        self.assertEqual(message, Request(1, "m", {"path": "/b"}))

    def test_badTraceAnswersOnTheRequestId(self) -> None:
        message = jsonrpc.decode(b'{"id":7,"method":"m","trace":5}')
        assert isinstance(message, Malformed)
        self.assertEqual((message.id, message.code), (7, -32600))

    def test_negativeZeroIdIsAFloat(self) -> None:
        message = jsonrpc.decode(b'{"id":-0,"method":"m"}')
        self.assertEqual(
            message, Malformed(-1, -32600, "request id must be a string or a 64-bit integer")
        )

    def test_responsesAreRefused(self) -> None:
        for raw in (b'{"id":1,"result":null}', b"[1,null]", b'{"id":1,"error":[1,null,"m"]}'):
            message = jsonrpc.decode(raw)
            assert isinstance(message, Malformed), raw
            self.assertEqual(message.message, "exec-server does not accept JSON-RPC responses")

    def test_arrayNotification(self) -> None:
        self.assertEqual(jsonrpc.decode(b'["initialized"]'), Notification("initialized", None))


class NumberTests(SynchronousTestCase):
    def test_integers(self) -> None:
        self.assertEqual(numberValue("18446744073709551615"), 2**64 - 1)
        self.assertEqual(numberValue("-9223372036854775808"), -(2**63))
        self.assertEqual(numberValue("-9223372036854775809"), -9223372036854775808.0)
        self.assertIsInstance(numberValue("-9223372036854775809"), float)
        self.assertEqual(numberValue("18446744073709551616"), 1.8446744073709552e19)
        self.assertIsInstance(numberValue("18446744073709551616"), float)

    def test_negativeZeroIsAFloat(self) -> None:
        value = numberValue("-0")
        self.assertIsInstance(value, float)
        self.assertEqual(math.copysign(1.0, value), -1.0)

    def test_serdesRoundingNotPythons(self) -> None:
        # the reference printed these values in its `invalid type: floating point` messages
        self.assertEqual(repr(numberValue("83030920993190389e-32")), "8.303092099319038e-16")
        self.assertEqual(repr(numberValue("55937321310030553e-13")), "5593.732131003055")
        self.assertNotEqual(float("83030920993190389e-32"), numberValue("83030920993190389e-32"))

    def test_fastAndSlowRoadsAgreeOnNumbers(self) -> None:
        for literal in ("-0", "99999999999999999999", "83030920993190389e-32", "1.5", "-1"):
            text = f'{{"id":1,"method":"m","params":[{literal}]}}'
            fast = serde_json_errors._fastParse(text).value
            self.assertEqual(_typed(fast), _typed(_slowParse(text).value), literal)
        with self.assertRaises(serde_json_errors._NotSerdeError):
            serde_json_errors._fastParse("[1e400]")

    def test_largeIntegerDoesNotHitPythonsDigitLimit(self) -> None:
        self.assertEqual(_detail("1" + "0" * 5000), "number out of range at line 1 column 5001")
        self.assertEqual(_detail("[" + "1" * 300 + "]"), NO_VARIANT)


def _slowParse(text: str) -> serde_json_errors.Parsed:
    return serde_json_errors._Scanner(text.encode("utf-8", "surrogatepass")).parseDocument()


def _typed(value: object) -> object:
    """A value with the distinctions serde makes and ``==`` does not (1 vs 1.0, 0.0 vs -0.0)."""
    if isinstance(value, dict):
        dups = sorted(value.duplicates) if isinstance(value, JsonObject) else []
        return ("map", dups, [(k, _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("seq", [_typed(v) for v in value])
    if isinstance(value, float):
        return ("f64", repr(value))
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return ("int", value)
    return value


_JSON_PIECES = st.sampled_from(
    [
        *'{}[]:,"\\ \n\t0123456789eE.+-',
        *("true", "null", "false", "\\u", "\\ud800", "\\udc00", '"id"', '"method"', "é", "\x01"),
    ]
)
_VALID_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=10,
).map(json.dumps)


@st.composite
def _mutatedJson(draw: st.DrawFn) -> str:
    text = draw(_VALID_JSON)
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        piece = draw(_JSON_PIECES)
        text = draw(
            st.sampled_from([text[:at], text[:at] + piece + text[at:], text[:at] + text[at + 1 :]])
        )
    return text


class PropertyTests(SynchronousTestCase):
    @given(st.binary(max_size=300))
    @example(b"[" * 5000)
    @example(b"{" * 100000)
    def test_decodeNeverRaisesOnBytes(self, data: bytes) -> None:
        self.assertIsInstance(
            jsonrpc.decode(data), Request | Notification | Unparseable | Malformed
        )

    @given(st.text(max_size=300) | _mutatedJson())
    @settings(max_examples=300)
    def test_parseOnlyRaisesSerdeErrors(self, text: str) -> None:
        try:
            parsed = serde_json_errors.parse(text)
        except SerdeJsonError as err:
            self.assertRegex(str(err), r" at line \d+ column \d+$")
        else:
            self.assertTrue(parsed.trailing is None or "trailing characters" in parsed.trailing)

    @given(_mutatedJson())
    @settings(max_examples=400)
    def test_fastRoadAgreesWithTheScanner(self, text: str) -> None:
        """Whatever the C scanner vouches for, serde's own walk gives the same value."""
        try:
            fast = serde_json_errors._fastParse(text)
        except serde_json_errors._NotSerdeError:
            return
        slow = _slowParse(text)
        self.assertEqual(_typed(fast.value), _typed(slow.value))
        self.assertEqual(fast.trailing, slow.trailing)
