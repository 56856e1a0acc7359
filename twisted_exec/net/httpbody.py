"""Reading HTTP response bodies within a byte budget, and the registries' error bodies.

Shared by the executor's registry client, the harness's listing and the rendezvous' tests: one
capped reader, so no caller ever buffers an unbounded body.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol as _TwistedProtocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import IResponse

ERROR_PREVIEW_CHARS = 4096


def statusText(status: int) -> str:
    """``401 Unauthorized``, as Rust's ``http::StatusCode`` displays it."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} <unknown status code>"


_DONE = Failure(ResponseDone())


class _CappedBody(_TwistedProtocol):
    """Collects a response body up to ``limit`` bytes, then stops the transfer."""

    def __init__(self, limit: int, done: Deferred[tuple[bytes, bool]]) -> None:
        self._limit = limit
        self._done = done
        self._chunks: list[bytes] = []
        self._size = 0
        self._truncated = False

    def dataReceived(self, data: bytes) -> None:
        if self._truncated:
            return
        room = self._limit - self._size
        if len(data) > room:
            self._chunks.append(data[:room])
            self._size = self._limit
            self._truncated = True
            if self.transport is not None:
                self.transport.stopProducing()  # type: ignore[attr-defined]
            self._finish()
            return
        self._chunks.append(data)
        self._size += len(data)

    def connectionLost(self, reason: Failure = _DONE) -> None:  # type: ignore[override]
        if self._truncated:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self._finish()
        elif not self._done.called:
            self._done.errback(reason)

    def _finish(self) -> None:
        if not self._done.called:
            self._done.callback((b"".join(self._chunks), self._truncated))


def readCapped(response: IResponse, limit: int) -> Deferred[tuple[bytes, bool]]:
    """``(body, truncated)`` with at most ``limit`` bytes of ``response``'s body."""

    def cancel(d: Deferred[tuple[bytes, bool]]) -> None:
        transport = reader.transport
        if transport is not None:
            transport.stopProducing()  # type: ignore[attr-defined]

    done: Deferred[tuple[bytes, bool]] = Deferred(cancel)
    reader = _CappedBody(limit, done)
    response.deliverBody(reader)
    return done


def parseErrorBody(body: bytes) -> tuple[str | None, str | None]:
    """``(error.code, error.message)`` from ``{"error": {...}}``, each ``None`` when absent."""
    try:
        data = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(data, dict) or not isinstance(data.get("error"), dict):
        return None, None
    error = data["error"]
    code = error.get("code")
    message = error.get("message")
    return (
        code if isinstance(code, str) else None,
        message if isinstance(message, str) else None,
    )


def bodyPreview(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return "empty or malformed error body"
    if len(text) > ERROR_PREVIEW_CHARS:
        return text[:ERROR_PREVIEW_CHARS]
    return text
