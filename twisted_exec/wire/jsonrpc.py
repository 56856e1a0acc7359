"""The JSON-RPC envelope, sans IO: classify one inbound message, encode outbound ones.

The reference speaks JSON-RPC 2.0 without the ``"jsonrpc"`` member. Its parser is serde_json over
an untagged enum (request, notification, response, error): :mod:`serde_json_errors` reads the text
as serde_json does (same values, same error messages), and :func:`classify` tries the enum's
variants as serde's derive does, so a harness sees the reference's replies in local and stdio mode.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from twisted_exec.wire import serde_json_errors
from twisted_exec.wire.errors import INVALID_REQUEST
from twisted_exec.wire.serde_json_errors import JsonObject, duplicateKeys

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


NO_VARIANT = "data did not match any variant of untagged enum JSONRPCMessage"
RESPONSES_REFUSED = "exec-server does not accept JSON-RPC responses"


def _validId(value: object) -> bool:
    """serde's ``RequestId``: a string or an i64 (a float never is, not even ``-0`` or ``1e3``)."""
    if isinstance(value, str):
        return True
    return isinstance(value, int) and not isinstance(value, bool) and I64_MIN <= value <= I64_MAX


def _validI64(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and I64_MIN <= value <= I64_MAX


def _optionalString(value: object) -> bool:
    return value is None or isinstance(value, str)


def _validTrace(value: object) -> bool:
    """``Option<W3cTraceContext>``: null, or {traceparent, tracestate} (both optional strings)."""
    if value is None:
        return True
    if isinstance(value, dict):
        return not _repeats(value, _TRACE_FIELDS) and all(
            _optionalString(value.get(name)) for name in _TRACE_FIELDS
        )
    if isinstance(value, list):
        return len(value) <= 2 and all(_optionalString(item) for item in value)
    return False


def _validErrorObject(value: object) -> bool:
    """``JSONRPCErrorError``: code (i64), data (optional, any), message (string)."""
    if isinstance(value, dict):
        return (
            not _repeats(value, _ERROR_OBJECT_FIELDS)
            and _validI64(value.get("code"))
            and isinstance(value.get("message"), str)
        )
    if isinstance(value, list):
        return len(value) == 3 and _validI64(value[0]) and isinstance(value[2], str)
    return False


def _repeats(value: dict[str, object], fields: frozenset[str]) -> bool:
    """Whether the text repeated one of a struct's fields (serde: ``duplicate field``)."""
    return isinstance(value, JsonObject) and not value.duplicates.isdisjoint(fields)


_REQUEST_FIELDS = frozenset({"id", "method", "params", "trace"})
_NOTIFICATION_FIELDS = frozenset({"method", "params"})
_RESPONSE_FIELDS = frozenset({"id", "result"})
_ERROR_FIELDS = frozenset({"error", "id"})
_ERROR_OBJECT_FIELDS = frozenset({"code", "data", "message"})
_TRACE_FIELDS = frozenset({"traceparent", "tracestate"})


def _asRequest(value: object) -> Request | None:
    """serde's derived ``JSONRPCRequest {id, method, params?, trace?}``, from a map or a seq."""
    if isinstance(value, dict):
        if _repeats(value, _REQUEST_FIELDS):
            return None
        rawId, method = value.get("id"), value.get("method")
        if "id" not in value or not _validId(rawId) or not isinstance(method, str):
            return None
        if not _validTrace(value.get("trace")):
            return None
        return Request(rawId, method, value.get("params"))  # type: ignore[arg-type]
    if isinstance(value, list) and 2 <= len(value) <= 4:
        rawId, method = value[0], value[1]
        if not _validId(rawId) or not isinstance(method, str):
            return None
        if len(value) == 4 and not _validTrace(value[3]):
            return None
        return Request(rawId, method, value[2] if len(value) > 2 else None)  # type: ignore[arg-type]
    return None


def _asNotification(value: object) -> Notification | None:
    """serde's derived ``JSONRPCNotification {method, params?}``: other keys are ignored."""
    if isinstance(value, dict):
        method = value.get("method")
        if _repeats(value, _NOTIFICATION_FIELDS) or not isinstance(method, str):
            return None
        return Notification(method, value.get("params"))
    if isinstance(value, list) and 1 <= len(value) <= 2 and isinstance(value[0], str):
        return Notification(value[0], value[1] if len(value) > 1 else None)
    return None


def _isResponse(value: object) -> bool:
    """``JSONRPCResponse {id, result}`` or ``JSONRPCError {error, id}``."""
    if isinstance(value, dict):
        if not _validId(value.get("id")) or "id" not in value:
            return False
        if "result" in value and not _repeats(value, _RESPONSE_FIELDS):
            return True
        return _validErrorObject(value.get("error")) and not _repeats(value, _ERROR_FIELDS)
    if isinstance(value, list) and len(value) == 2:
        return _validId(value[0]) or (_validErrorObject(value[0]) and _validId(value[1]))
    return False


def _notificationWithId(value: dict[str, object]) -> Message:
    """A map with an ``id`` that serde nevertheless read as a notification (``id`` is ignored).

    The reference then drops the session (unknown notification); we answer instead.
    """
    rawId = value.get("id")
    if "id" in duplicateKeys(value):
        return Malformed(-1, INVALID_REQUEST, "duplicate field `id`")
    if rawId is None:
        return Malformed(-1, INVALID_REQUEST, "request id must not be null")
    if not _validId(rawId):
        return Malformed(-1, INVALID_REQUEST, "request id must be a string or a 64-bit integer")
    if "trace" in duplicateKeys(value):
        return Malformed(rawId, INVALID_REQUEST, "duplicate field `trace`")  # type: ignore[arg-type]
    return Malformed(
        rawId,  # type: ignore[arg-type]
        INVALID_REQUEST,
        "`trace` must be null or a W3C trace context {traceparent, tracestate}",
    )


def decode(payload: bytes | str) -> Message:
    """Classify one inbound message the way the reference's ``serde_json::from_str`` does.

    Order matters and is serde's: a syntax error first; then the value must match one of the
    message shapes (else ``data did not match ...``, even with junk after the value); only then
    is text after the value refused (``trailing characters``). Never raises.
    """
    value = _orjsonRoad(payload)
    if value is not _SLOW:
        return classify(value)
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    except UnicodeDecodeError:
        assert isinstance(payload, bytes)
        try:
            serde_json_errors.parseBytes(payload)
        except serde_json_errors.SerdeJsonError as err:
            return Unparseable(str(err))
        except Exception as err:  # a bug in the parser must not take the session down
            return Unparseable(f"failed to parse JSON: {err!r}")
        return Unparseable("invalid unicode code point")  # not reached: such bytes never parse
    try:
        parsed = serde_json_errors.parse(text)
    except serde_json_errors.SerdeJsonError as err:
        return Unparseable(str(err))
    except Exception as err:  # a bug in the parser must not take the session down
        return Unparseable(f"failed to parse JSON: {err!r}")
    message = classify(parsed.value)
    if parsed.trailing is not None and not isinstance(message, Unparseable):
        return Unparseable(parsed.trailing)
    return message


_SLOW = object()  # _orjsonRoad's "take the serde-exact road"
#: Where a key ends: its closing quote, JSON whitespace, the colon. Every key of the text makes
#: one such match (strings may make more), so as many matches as distinct keys means no repeat.
_KEY_END = re.compile(rb'"[ \t\n\r]*:')
_ROAD_DEPTH = serde_json_errors.RECURSION_LIMIT - 1


def _orjsonRoad(payload: bytes | str) -> object:
    """The parsed value when orjson's is serde's for certain, else :data:`_SLOW`.

    orjson (about 0.3 µs for a request against ~1.5 µs for ``json`` with serde's hooks) agrees
    with serde_json on strings, integers in 64 bits, booleans, null, arrays and objects, and it
    refuses what serde refuses there (lone surrogates, control characters, trailing text,
    invalid UTF-8: refused means the slow road, which gives serde's message). Where the two can
    differ the slow road decides: any float (serde rounds its own way), ``-0`` anywhere in the
    text (serde reads it as a float), nesting near serde's recursion limit, and repeated keys
    (orjson keeps the last one silently; ``_objectHook`` keeps them all for serde's "duplicate
    field"): the text's key ends are counted against the keys orjson kept.
    ``tests/test_jsonrpc_orjson_road.py`` holds the two roads together.
    """
    raw = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
    if b"-0" in raw:
        return _SLOW
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _SLOW
    keys = _countKeys(value, 1)
    if keys <= 0:
        return value if keys == 0 else _SLOW
    # Every key is followed by a colon, so as many colons as keys kept means none repeated
    # (one bytes.count); a colon inside a string sends us to the exact count of key ends.
    if raw.count(b":") != keys and len(_KEY_END.findall(raw)) != keys:
        return _SLOW
    return value


def _countKeys(value: object, depth: int) -> int:
    """The keys of every object in ``value``; -1 for a float or nesting near the limit.

    orjson makes exact ``dict``/``list``/``float``, so ``type() is`` is enough (and cheaper)."""
    kind = type(value)
    if kind is float:
        return -1
    if kind is dict:
        total = len(value)  # type: ignore[arg-type]
        children = value.values()  # type: ignore[attr-defined]
    elif kind is list:
        total = 0
        children = value
    else:
        return 0
    if depth >= _ROAD_DEPTH:
        return -1
    for child in children:
        inner = type(child)
        if inner is dict or inner is list:
            found = _countKeys(child, depth + 1)
            if found < 0:
                return -1
            total += found
        elif inner is float:
            return -1
    return total


def classify(value: object) -> Message:
    """Match a parsed value against the reference's untagged enum, variant by variant.

    ``JSONRPCMessage`` tries Request, Notification, Response, Error in this order; the first
    whose derived ``Deserialize`` accepts the value wins (a struct also accepts a JSON array of
    its fields in order). Shapes that make the reference drop the session (a response, a request
    whose id serde cannot read, which it then takes for a notification) become ``Malformed``.
    """
    request = _asRequest(value)
    if request is not None:
        return request
    notification = _asNotification(value)
    if notification is not None:
        if isinstance(value, dict) and "id" in value:
            return _notificationWithId(value)
        return notification
    if _isResponse(value):
        return Malformed(-1, INVALID_REQUEST, RESPONSES_REFUSED)
    return Unparseable(NO_VARIANT)


def _jsonDumps(message: object) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _dumps(message: object) -> bytes:
    """Compact JSON: what ``json.dumps(separators=(",", ":"), ensure_ascii=False)`` writes, at
    a tenth of its cost (a reply is the hot path: about 9 µs with ``json`` for an
    ``fs/getMetadata`` result, under 1 µs with orjson).

    For strings, integers, booleans, null, objects and arrays orjson's bytes are ``json``'s
    (``tests/test_jsonrpc_orjson.py`` holds them together). Floats, which no reply of ours
    carries, it spells as serde_json does (shortest round trip, ``1e16``, ``NaN`` as ``null``)
    rather than as Python does (``1e+16``, ``NaN``). Anything orjson refuses (a non-string key, an
    integer beyond 64 bits, a lone surrogate, a type it does not know) goes to ``json``, which
    behaves as it always did.
    """
    try:
        return orjson.dumps(message)
    except (TypeError, orjson.JSONEncodeError):
        return _jsonDumps(message)


def encodeResult(requestId: RequestId, result: object) -> bytes:
    if isinstance(result, EncodedParams):  # a result that carries its own encoding (fs/readBlock)
        return b"".join((b'{"id":', _dumps(requestId), b',"result":', result.raw, b"}"))
    return _dumps({"id": requestId, "result": result})


def encodeError(requestId: RequestId, code: int, message: str, data: object = None) -> bytes:
    # The reference puts "error" before "id"; harmless to keep its order.
    error: dict[str, object] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return _dumps({"error": error, "id": requestId})


class EncodedParams(dict[str, Any]):
    """Notification params (or a result) that carry their own JSON encoding, ``raw``.

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
