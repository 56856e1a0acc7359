"""The JSON-RPC envelope, sans IO: classify one inbound message, encode outbound ones.

The reference speaks JSON-RPC 2.0 without the ``"jsonrpc"`` member. Its parser is serde_json over
an untagged enum (request, notification, response, error), so we mirror its error messages where a
harness can see them (parse errors in local and stdio mode).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import INVALID_REQUEST

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1

RequestId = int | str


@dataclass(frozen=True)
class Request:
    id: RequestId
    method: str
    params: object


@dataclass(frozen=True)
class Notification:
    method: str
    params: object


@dataclass(frozen=True)
class Unparseable:
    """Not JSON, or JSON that is no JSON-RPC message: ``detail`` is serde's wording."""

    detail: str


@dataclass(frozen=True)
class Malformed:
    """A message the reference kills the session for; we reply with an error instead.

    ``id`` is the request id to answer on, or -1 when the message has no usable id.
    """

    id: RequestId
    code: int
    message: str


Message = Request | Notification | Unparseable | Malformed


def _validId(value: object) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, int) and not isinstance(value, bool) and I64_MIN <= value <= I64_MAX


def decode(payload: bytes | str) -> Message:
    """Classify one inbound message. Never raises."""
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    except UnicodeDecodeError as err:
        return Unparseable(f"invalid unicode code point at byte {err.start}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        return Unparseable(serdeParseError(text, err))
    except (ValueError, RecursionError) as err:
        return Unparseable(str(err))
    return classify(value)


def classify(value: object) -> Message:
    """Turn a decoded JSON value into a message, the way the reference's untagged enum would."""
    if isinstance(value, list):
        return Malformed(-1, INVALID_REQUEST, "JSON-RPC batches are not supported")
    if not isinstance(value, dict):
        return Unparseable("data did not match any variant of untagged enum JSONRPCMessage")
    jsonrpc = value.get("jsonrpc")
    hasId = "id" in value
    rawId = value.get("id")
    replyId: RequestId = rawId if _validId(rawId) else -1  # type: ignore[assignment]
    if jsonrpc is not None and not isinstance(jsonrpc, str):
        return Malformed(replyId, INVALID_REQUEST, "`jsonrpc` must be a string")
    method = value.get("method")
    if "method" in value:
        if not isinstance(method, str):
            return Malformed(replyId, INVALID_REQUEST, "`method` must be a string")
        params = value.get("params")
        if hasId and rawId is not None:
            if not _validId(rawId):
                return Malformed(
                    -1, INVALID_REQUEST, "request id must be a string or a 64-bit integer"
                )
            return Request(rawId, method, params)
        if hasId:
            return Malformed(-1, INVALID_REQUEST, "request id must not be null")
        return Notification(method, params)
    if hasId and ("result" in value or "error" in value):
        return Malformed(-1, INVALID_REQUEST, "exec-server does not accept JSON-RPC responses")
    return Unparseable("data did not match any variant of untagged enum JSONRPCMessage")


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1)
    return line, column


def serdeParseError(text: str, err: json.JSONDecodeError) -> str:
    """An approximation of serde_json's message for the same syntax error.

    serde reports the line and the column of the character it stopped at (1-based), e.g.
    ``expected ident at line 1 column 2`` for ``not json`` and ``EOF while parsing a value at
    line 1 column 19`` for a truncated object.
    """
    pos = err.pos
    stripped = text.rstrip(" \t\r\n")
    if pos >= len(stripped):
        # serde reports EOF at the last character read.
        line, column = _position(text, max(len(text), 1))
        what = "a value"
        if err.msg.startswith(("Expecting ',' delimiter", "Expecting property name")):
            what = "an object" if stripped.lstrip().startswith("{") else "a list"
        elif err.msg.startswith("Unterminated string"):
            what = "a string"
        if not text:
            line, column = 1, 0
        return f"EOF while parsing {what} at line {line} column {column}"
    if err.msg.startswith("Expecting value"):
        for literal in ("null", "true", "false"):
            if text[pos] == literal[0]:
                index = pos
                for expected in literal:
                    if index >= len(text) or text[index] != expected:
                        break
                    index += 1
                if index >= len(text):
                    line, column = _position(text, len(text))
                    return f"EOF while parsing a value at line {line} column {column}"
                line, column = _position(text, index + 1)
                return f"expected ident at line {line} column {column}"
        line, column = _position(text, pos + 1)
        return f"expected value at line {line} column {column}"
    line, column = _position(text, pos + 1)
    if err.msg.startswith("Extra data"):
        return f"trailing characters at line {line} column {column}"
    if err.msg.startswith("Expecting ':' delimiter"):
        return f"expected `:` at line {line} column {column}"
    if err.msg.startswith("Expecting ',' delimiter"):
        return f"expected `,` or `}}` at line {line} column {column}"
    if err.msg.startswith("Expecting property name"):
        return f"key must be a string at line {line} column {column}"
    return f"{err.msg} at line {line} column {column}"


def _dumps(message: object) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encodeResult(requestId: RequestId, result: object) -> bytes:
    return _dumps({"id": requestId, "result": result})


def encodeError(requestId: RequestId, code: int, message: str) -> bytes:
    # The reference puts "error" before "id"; harmless to keep its order.
    return _dumps({"error": {"code": code, "message": message}, "id": requestId})


class EncodedParams(dict[str, Any]):
    """Notification params that carry their own JSON encoding, ``raw``.

    Process output is the one hot notification: JSON-encoding a dict whose ``chunk`` is 11 KB of
    base64 costs three times the base64 itself (the encoder scans every character for escapes,
    which base64 never needs). The producer builds ``raw`` directly; the dict content stays
    available to anything that looks at the params. ``raw`` must be exactly what
    :func:`encodeNotification` would produce for the dict (tests hold the two together).
    """

    __slots__ = ("raw",)

    def __init__(self, value: dict[str, Any], raw: bytes) -> None:
        super().__init__(value)
        self.raw = raw


def encodeNotification(method: str, params: object) -> bytes:
    if isinstance(params, EncodedParams):
        return b"".join((b'{"method":', _dumps(method), b',"params":', params.raw, b"}"))
    return _dumps({"method": method, "params": params})
