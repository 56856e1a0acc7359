"""JSON parsing with serde_json's semantics and error messages, sans IO.

The reference parses every inbound message with ``serde_json::from_str`` (serde_json 1.x, without
``arbitrary_precision`` or ``float_roundtrip``). A harness sees serde's message for text it cannot
parse (``expected `,` or `}` at line 1 column 10``), and serde differs from Python's ``json``
in what it accepts and in the values it builds:

- ``NaN``/``Infinity`` are refused; so are lone UTF-16 surrogates in ``\\u`` escapes, numbers
  that overflow an f64 (``1e400``) and nesting deeper than 127 arrays/objects;
- ``-0`` and integers beyond u64 (or below i64) are f64s; floats are computed with serde's own,
  not always correctly rounded, algorithm (``significand * 10^exponent`` in f64 steps);
- an object may repeat a key: serde's untagged-enum buffer keeps every entry, so a repeated field
  makes a struct fail, while a ``serde_json::Value`` keeps the last one.

:func:`parse` takes the fast road first (the C ``json`` scanner, with hooks that give numbers
serde's values and note repeated keys) and only walks the text itself, with :class:`_Scanner`, a
re-implementation of serde_json's recursive-descent parser, when the fast road fails or cannot
vouch for serde's verdict. Positions are serde's: line and column count bytes of UTF-8, the
column is the last byte consumed (or, for errors found by peeking, the byte peeked at); EOF is
reported at the end of the text (column 0 for an empty text).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import NamedTuple

RECURSION_LIMIT = 128
_U64_MAX = 2**64 - 1
_I32_MAX = 2**31 - 1
_I32_MIN = -(2**31)
#: serde's table: 1e0 .. 1e308 as correctly rounded f64 literals.
_POW10 = tuple(float(f"1e{k}") for k in range(309))
_DECIMAL_DIGITS = frozenset("0123456789")

EOF_LIST = "EOF while parsing a list"
EOF_OBJECT = "EOF while parsing an object"
EOF_STRING = "EOF while parsing a string"
EOF_VALUE = "EOF while parsing a value"
EXPECTED_COLON = "expected `:`"
EXPECTED_LIST_COMMA_OR_END = "expected `,` or `]`"
EXPECTED_OBJECT_COMMA_OR_END = "expected `,` or `}`"
EXPECTED_IDENT = "expected ident"
EXPECTED_VALUE = "expected value"
INVALID_ESCAPE = "invalid escape"
INVALID_NUMBER = "invalid number"
NUMBER_OUT_OF_RANGE = "number out of range"
CONTROL_CHARACTER = "control character (\\u0000-\\u001F) found while parsing a string"
KEY_MUST_BE_A_STRING = "key must be a string"
LONE_LEADING_SURROGATE = "lone leading surrogate in hex escape"
TRAILING_COMMA = "trailing comma"
TRAILING_CHARACTERS = "trailing characters"
UNEXPECTED_END_OF_HEX_ESCAPE = "unexpected end of hex escape"
RECURSION_LIMIT_EXCEEDED = "recursion limit exceeded"
INVALID_UNICODE = "invalid unicode code point"


class SerdeJsonError(ValueError):
    """Text serde_json refuses; ``str(err)`` is serde's message, position included."""


class JsonObject(dict[str, object]):
    """A JSON object whose text repeats some keys: values are the last ones (as a ``Value``'s).

    ``duplicates`` names the repeated keys, so that struct matching can fail the way serde's
    derive does (``duplicate field `id```).
    """

    duplicates: frozenset[str]

    def __init__(self, pairs: Iterable[tuple[str, object]]) -> None:
        items = list(pairs)
        super().__init__(items)
        seen: set[str] = set()
        repeated: set[str] = set()
        for key, _ in items:
            (repeated if key in seen else seen).add(key)
        self.duplicates = frozenset(repeated)


def duplicateKeys(value: object) -> frozenset[str]:
    """The keys the text of this object repeated (empty for anything but a :class:`JsonObject`)."""
    return value.duplicates if isinstance(value, JsonObject) else frozenset()


class Parsed(NamedTuple):
    """One JSON value and what serde would say about the text after it, if anything."""

    value: object
    trailing: str | None


# -- numbers ----------------------------------------------------------------------------------


class _OutOfRangeError(Exception):
    """serde's ``number out of range``; ``offset`` is where serde stands in the literal."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


def _overflows(accumulated: int, digit: int, limit: int) -> bool:
    """serde's ``overflow!(a * 10 + b, limit)``."""
    return accumulated >= limit // 10 and (accumulated > limit // 10 or digit > limit % 10)


def _f64FromParts(positive: bool, significand: int, exponent: int, end: int) -> float:
    f = float(significand)
    while True:
        magnitude = abs(exponent)
        if magnitude < len(_POW10):
            if exponent >= 0:
                f *= _POW10[magnitude]
                if math.isinf(f):
                    raise _OutOfRangeError(end)
            else:
                f /= _POW10[magnitude]
            break
        if f == 0.0:
            break
        if exponent >= 0:
            raise _OutOfRangeError(end)
        f /= 1e308
        exponent += 308
    return f if positive else -f


def numberValue(literal: str) -> int | float:
    """The value serde_json gives a JSON number literal (already known to be well-formed).

    Integers are u64 or i64 when they fit (``-0`` does not: it is -0.0), else f64. Raises
    :class:`_OutOfRangeError` where serde reports ``number out of range``.
    """
    positive = not literal.startswith("-")
    i = 0 if positive else 1
    n = len(literal)
    significand = 0
    exponent = 0
    longInteger = False
    while i < n and literal[i] in _DECIMAL_DIGITS:
        digit = ord(literal[i]) - 48
        if not longInteger and _overflows(significand, digit, _U64_MAX):
            longInteger = True
        if longInteger:
            exponent += 1
        else:
            significand = significand * 10 + digit
        i += 1
    if i == n and not longInteger:
        if positive:
            return significand
        if significand == 0 or significand > 2**63:
            return -float(significand)
        return -significand
    if i < n and literal[i] == ".":
        i += 1
        overflowed = False
        while i < n and literal[i] in _DECIMAL_DIGITS:
            digit = ord(literal[i]) - 48
            if not overflowed and _overflows(significand, digit, _U64_MAX):
                overflowed = True
            if not overflowed:
                significand = significand * 10 + digit
                exponent -= 1
            i += 1
    if i < n and literal[i] in "eE":
        i += 1
        positiveExp = True
        if literal[i] in "+-":
            positiveExp = literal[i] == "+"
            i += 1
        exp = 0
        while i < n:
            digit = ord(literal[i]) - 48
            i += 1
            if _overflows(exp, digit, _I32_MAX):
                if significand != 0 and positiveExp:
                    raise _OutOfRangeError(i)
                return 0.0 if positive else -0.0
            exp = exp * 10 + digit
        exponent = exponent + exp if positiveExp else exponent - exp
        exponent = max(_I32_MIN, min(_I32_MAX, exponent))
    return _f64FromParts(positive, significand, exponent, n)


# -- the fast road ----------------------------------------------------------------------------


class _NotSerdeError(Exception):
    """The fast road cannot vouch for serde's verdict on this text."""


def _intHook(literal: str) -> int | float:
    if len(literal) < 19 and literal != "-0":
        return int(literal)
    try:
        return numberValue(literal)
    except _OutOfRangeError:
        raise _NotSerdeError() from None


def _floatHook(literal: str) -> float:
    try:
        value = numberValue(literal)
    except _OutOfRangeError:
        raise _NotSerdeError() from None
    return float(value)


def _constantHook(literal: str) -> object:
    raise _NotSerdeError()


def _objectHook(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        return JsonObject(pairs)
    return obj


_DECODER = json.JSONDecoder(
    object_pairs_hook=_objectHook,
    parse_float=_floatHook,
    parse_int=_intHook,
    parse_constant=_constantHook,
)
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_WHITESPACE_CHARS = " \t\n\r"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _tooDeep(value: object) -> bool:
    """Whether any array/object sits at depth ``RECURSION_LIMIT`` (the outermost is depth 1)."""
    level: list[object] = [value] if isinstance(value, dict | list) else []
    depth = 1
    while level:
        if depth >= RECURSION_LIMIT:
            return True
        nested: list[object] = []
        for container in level:
            children: Iterable[object] = (
                container.values() if isinstance(container, dict) else container  # type: ignore[assignment]
            )
            nested.extend(v for v in children if isinstance(v, dict | list))
        level = nested
        depth += 1
    return False


def _mayNestTooDeep(text: str) -> bool:
    """A cheap necessary condition for :func:`_tooDeep`: 128 ``[``/``{`` somewhere in the text."""
    if len(text) < 2 * RECURSION_LIMIT:
        return False
    if len(text) < 8192:
        return text.count("[") + text.count("{") >= RECURSION_LIMIT
    # Big messages are mostly one long string (base64): jump from bracket to bracket (memchr).
    found = 0
    for opener in "[{":
        at = text.find(opener)
        while at >= 0:
            found += 1
            if found >= RECURSION_LIMIT:
                return True
            at = text.find(opener, at + 1)
    return False


def _fastParse(text: str) -> Parsed:
    start = 0
    if text[:1] in _WHITESPACE_CHARS:  # (also true for "")
        start = _WHITESPACE.match(text).end()  # type: ignore[union-attr]
    try:
        value, end = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError, _NotSerdeError) as err:
        raise _NotSerdeError() from err
    if end != len(text) and _WHITESPACE.match(text, end).end() != len(text):  # type: ignore[union-attr]
        # rare, and serde may read on where Python stopped (``1.`` or ``01`` at the top level)
        raise _NotSerdeError()
    # Python accepts lone surrogates in \u escapes, serde does not.
    if "\\" in text and _SURROGATE_ESCAPE.search(text):
        raise _NotSerdeError()
    if _mayNestTooDeep(text) and _tooDeep(value):
        raise _NotSerdeError()
    return Parsed(value, None)


def parse(text: str) -> Parsed:
    """Parse one JSON value as serde_json would; raises :class:`SerdeJsonError` with its message.

    Text after the value is not an error here: the reference checks it only once the value has
    matched a message shape, so it is returned as :attr:`Parsed.trailing`.
    """
    try:
        return _fastParse(text)
    except _NotSerdeError:
        pass
    return _Scanner(text.encode("utf-8", "surrogatepass")).parseDocument()


def parseBytes(data: bytes) -> Parsed:
    """:func:`parse` of raw bytes that are not valid UTF-8 (a binary websocket frame).

    serde_json's ``from_slice`` reads bytes: a stray byte outside a string is an ordinary
    syntax error at its column (``expected value at line 1 column 3``), and a string holding
    invalid UTF-8 is refused when its closing quote is reached, at the column of that quote
    (``invalid unicode code point at line 1 column 21``), probed on both reference versions.
    """
    scanner = _Scanner(data)
    scanner.strictUtf8 = True
    return scanner.parseDocument()


# -- the slow road: serde_json's parser, step by step -----------------------------------------

_SPECIAL_IN_STRING = re.compile(rb'["\\\x00-\x1f]')
_SIMPLE_ESCAPES = {
    ord('"'): '"',
    ord("\\"): "\\",
    ord("/"): "/",
    ord("b"): "\b",
    ord("f"): "\f",
    ord("n"): "\n",
    ord("r"): "\r",
    ord("t"): "\t",
}
_HEX = frozenset(b"0123456789abcdefABCDEF")
_DIGITS = frozenset(b"0123456789")
_WS_BYTES = frozenset(b" \t\n\r")


class _Frame:
    """An array or object being read (an explicit stack: Python recursion is never used)."""

    __slots__ = ("first", "isObject", "key", "pairs")

    def __init__(self, isObject: bool) -> None:
        self.isObject = isObject
        self.first = True
        self.pairs: list[object] = []
        self.key = ""


class _Scanner:
    """serde_json's ``Deserializer<StrRead>`` reading one value into serde's buffered form."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.index = 0
        #: Raw bytes (``parseBytes``): strings must hold valid UTF-8.
        self.strictUtf8 = False

    # positions and errors

    def _position(self, index: int) -> tuple[int, int]:
        lineStart = self.data.rfind(b"\n", 0, index) + 1
        return self.data.count(b"\n", 0, lineStart) + 1, index - lineStart

    def _error(self, code: str) -> SerdeJsonError:
        line, column = self._position(self.index)
        return SerdeJsonError(f"{code} at line {line} column {column}")

    def _peekError(self, code: str) -> SerdeJsonError:
        line, column = self._position(min(len(self.data), self.index + 1))
        return SerdeJsonError(f"{code} at line {line} column {column}")

    def _whitespace(self) -> int | None:
        data, i, n = self.data, self.index, len(self.data)
        while i < n and data[i] in _WS_BYTES:
            i += 1
        self.index = i
        return data[i] if i < n else None

    # the document

    def parseDocument(self) -> Parsed:
        value = self._value()
        rest = self._whitespace()
        trailing = None if rest is None else str(self._peekError(TRAILING_CHARACTERS))
        return Parsed(value, trailing)

    def _value(self) -> object:
        stack: list[_Frame] = []
        remaining = RECURSION_LIMIT
        while True:
            # deserialize_any: one value, or the opening of a container
            peek = self._whitespace()
            if peek is None:
                raise self._peekError(EOF_VALUE)
            if peek == 0x5B or peek == 0x7B:  # [ {
                remaining -= 1
                if remaining == 0:
                    raise self._peekError(RECURSION_LIMIT_EXCEEDED)
                self.index += 1
                stack.append(_Frame(peek == 0x7B))
                value: object = _NOTHING
            else:
                value = self._scalar(peek)
            # hand the value to the containers, closing those that end
            while stack:
                frame = stack[-1]
                if value is not _NOTHING:
                    if frame.isObject:
                        frame.pairs.append((frame.key, value))
                    else:
                        frame.pairs.append(value)
                    frame.first = False
                if not self._nextItem(frame):
                    break  # a value follows
                stack.pop()
                remaining += 1
                value = _close(frame)
            else:
                return value

    def _nextItem(self, frame: _Frame) -> bool:
        """serde's next_element/next_key (+ colon): True when the container has just closed."""
        closer = 0x7D if frame.isObject else 0x5D
        peek = self._whitespace()
        if peek == closer:
            self.index += 1
            return True
        if peek == 0x2C and not frame.first:  # ,
            self.index += 1
            peek = self._whitespace()
        elif peek is not None:
            if not frame.first:
                raise self._peekError(
                    EXPECTED_OBJECT_COMMA_OR_END if frame.isObject else EXPECTED_LIST_COMMA_OR_END
                )
        else:
            raise self._peekError(EOF_OBJECT if frame.isObject else EOF_LIST)
        if not frame.isObject:
            if peek == 0x5D:
                raise self._peekError(TRAILING_COMMA)
            if peek is None:
                raise self._peekError(EOF_VALUE)
            return False
        if peek == 0x22:  # "
            self.index += 1
            frame.key = self._string()
        elif peek == 0x7D:
            raise self._peekError(TRAILING_COMMA)
        elif peek is None:
            raise self._peekError(EOF_VALUE)
        else:
            raise self._peekError(KEY_MUST_BE_A_STRING)
        colon = self._whitespace()
        if colon == 0x3A:  # :
            self.index += 1
        elif colon is not None:
            raise self._peekError(EXPECTED_COLON)
        else:
            raise self._peekError(EOF_OBJECT)
        return False

    def _scalar(self, peek: int) -> object:
        if peek == 0x6E:  # n
            self.index += 1
            self._ident(b"ull")
            return None
        if peek == 0x74:  # t
            self.index += 1
            self._ident(b"rue")
            return True
        if peek == 0x66:  # f
            self.index += 1
            self._ident(b"alse")
            return False
        if peek == 0x2D:  # -
            start = self.index
            self.index += 1
            return self._number(start)
        if peek in _DIGITS:
            return self._number(self.index)
        if peek == 0x22:
            self.index += 1
            return self._string()
        raise self._peekError(EXPECTED_VALUE)

    def _ident(self, rest: bytes) -> None:
        for expected in rest:
            if self.index >= len(self.data):
                raise self._error(EOF_VALUE)
            got = self.data[self.index]
            self.index += 1
            if got != expected:
                raise self._error(EXPECTED_IDENT)

    def _peekByte(self) -> int:
        return self.data[self.index] if self.index < len(self.data) else 0

    def _number(self, start: int) -> int | float:
        """Check the grammar where serde does, then compute serde's value."""
        data = self.data
        if self.index >= len(data):
            raise self._error(EOF_VALUE)
        first = data[self.index]
        self.index += 1
        if first == 0x30:
            if self._peekByte() in _DIGITS:
                raise self._peekError(INVALID_NUMBER)
        elif first in _DIGITS:
            while self._peekByte() in _DIGITS:
                self.index += 1
        else:
            raise self._error(INVALID_NUMBER)
        if self._peekByte() == 0x2E:  # .
            self.index += 1
            if self._peekByte() not in _DIGITS:
                raise self._peekError(INVALID_NUMBER if self.index < len(data) else EOF_VALUE)
            while self._peekByte() in _DIGITS:
                self.index += 1
        if self._peekByte() in (0x65, 0x45):  # e E
            self.index += 1
            if self._peekByte() in (0x2B, 0x2D):
                self.index += 1
            if self.index >= len(data):
                raise self._error(EOF_VALUE)
            digit = data[self.index]
            self.index += 1
            if digit not in _DIGITS:
                raise self._error(INVALID_NUMBER)
            while self._peekByte() in _DIGITS:
                self.index += 1
        literal = data[start : self.index].decode("ascii")
        try:
            return numberValue(literal)
        except _OutOfRangeError as err:
            self.index = start + err.offset
            raise self._error(NUMBER_OUT_OF_RANGE) from None

    def _string(self) -> str:
        """The rest of a string whose opening quote was consumed."""
        data = self.data
        parts: list[str] = []
        start = self.index
        invalid = False
        while True:
            match = _SPECIAL_IN_STRING.search(data, self.index)
            if match is None:
                self.index = len(data)
                raise self._error(EOF_STRING)
            at = match.start()
            byte = data[at]
            if byte == 0x22:
                segment, bad = self._segment(data[start:at])
                parts.append(segment)
                self.index = at + 1
                if invalid or bad:
                    raise self._error(INVALID_UNICODE)
                return "".join(parts)
            if byte == 0x5C:
                segment, bad = self._segment(data[start:at])
                parts.append(segment)
                invalid = invalid or bad
                self.index = at + 1
                parts.append(self._escape())
                start = self.index
                continue
            self.index = at + 1
            raise self._error(CONTROL_CHARACTER)

    def _segment(self, raw: bytes) -> tuple[str, bool]:
        """A run of a string's bytes, and whether it breaks UTF-8 (only raw bytes can)."""
        if not self.strictUtf8:
            return raw.decode("utf-8", "surrogatepass"), False
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError:
            return "", True

    def _escape(self) -> str:
        if self.index >= len(self.data):
            raise self._error(EOF_STRING)
        code = self.data[self.index]
        self.index += 1
        simple = _SIMPLE_ESCAPES.get(code)
        if simple is not None:
            return simple
        if code != 0x75:  # u
            raise self._error(INVALID_ESCAPE)
        first = self._hexEscape()
        if 0xDC00 <= first <= 0xDFFF:
            raise self._error(LONE_LEADING_SURROGATE)
        if not 0xD800 <= first <= 0xDBFF:
            return chr(first)
        for expected in (0x5C, 0x75):  # \ u
            if self.index >= len(self.data):
                raise self._error(EOF_STRING)
            got = self.data[self.index]
            self.index += 1
            if got != expected:
                raise self._error(UNEXPECTED_END_OF_HEX_ESCAPE)
        second = self._hexEscape()
        if not 0xDC00 <= second <= 0xDFFF:
            raise self._error(LONE_LEADING_SURROGATE)
        return chr(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))

    def _hexEscape(self) -> int:
        digits = self.data[self.index : self.index + 4]
        if len(digits) < 4:
            self.index = len(self.data)
            raise self._error(EOF_STRING)
        self.index += 4
        if not all(d in _HEX for d in digits):
            raise self._error(INVALID_ESCAPE)
        return int(digits, 16)


class _Nothing:
    """No value yet: a container has just opened."""


_NOTHING = _Nothing()


def _close(frame: _Frame) -> object:
    if not frame.isObject:
        return frame.pairs
    return _objectHook(frame.pairs)  # type: ignore[arg-type]


__all__ = ["JsonObject", "Parsed", "SerdeJsonError", "duplicateKeys", "numberValue", "parse"]
