"""Invalid UTF-8 (a binary websocket frame) is refused as serde_json's ``from_slice`` refuses it.

Every case was sent to both reference binaries (0.131.0 and 0.171.0) as a binary websocket frame;
they answered the same: a stray byte outside a string is a syntax error at its column, a string
with invalid UTF-8 is ``invalid unicode code point`` at the column of its closing quote.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.wire import jsonrpc

CASES = {
    b'{"id":1,"method":"x\xff"}': "invalid unicode code point at line 1 column 21",
    b"\xff": "expected value at line 1 column 1",
    b'{"a":"\xc3"}': "invalid unicode code point at line 1 column 8",
    b'{"id":1,\n"m":"\xe2\x82"}': "invalid unicode code point at line 2 column 8",
    b'{"id":1,"method":"\xed\xa0\x80"}': "invalid unicode code point at line 1 column 22",
    b"  \xff": "expected value at line 1 column 3",
    b'{"a":"ok","b":"\xf0\x9f\x98"}': "invalid unicode code point at line 1 column 19",
    b'{"id":1,"method":"fs/getMetadata","params":{"path":"\xc3\xa4\xff"}}': (
        "invalid unicode code point at line 1 column 56"
    ),
    b'{"\xff":1}': "invalid unicode code point at line 1 column 4",
    b"[\xff]": "expected value at line 1 column 2",
    b'{"a":\xff}': "expected value at line 1 column 6",
    b'{"a":"\xff\\n"}': "invalid unicode code point at line 1 column 10",
    b'{"a":"\xff': "EOF while parsing a string at line 1 column 7",
}


class InvalidUtf8Tests(SynchronousTestCase):
    def test_asTheReferencesAnswer(self) -> None:
        for payload, detail in CASES.items():
            with self.subTest(payload=payload):
                self.assertEqual(jsonrpc.decode(payload), jsonrpc.Unparseable(detail))

    def test_validUtf8Unchanged(self) -> None:
        message = jsonrpc.decode(
            '{"id":1,"method":"fs/getMetadata","params":{"path":"ä"}}'.encode()
        )
        self.assertIsInstance(message, jsonrpc.Request)
