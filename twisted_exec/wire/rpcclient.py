"""The client side of JSON-RPC, sans IO: request ids, the pending table, reply matching.

The harness's :class:`~twisted_exec.harness.session.ExecSession` and the test doubles
(``testing/rendezvous.HarnessStream``, ``testing/wsclient.JsonRpcClient``) each wrap one
:class:`RpcClientCore` in their own transport and their own idea of a result (a Deferred of the
``result``, of the whole reply, ...): what each stores per request is its ``pending`` value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

P = TypeVar("P")


@dataclass(frozen=True)
class Reply(Generic[P]):
    """A response to one of our requests, with what the caller stored for it."""

    pending: P
    message: dict[str, Any]

    @property
    def error(self) -> dict[str, Any] | None:
        error = self.message.get("error")
        return error if isinstance(error, dict) else None


@dataclass(frozen=True)
class Notification:
    """A message with a ``method`` and no ``id``."""

    message: dict[str, Any]


@dataclass(frozen=True)
class Unmatched:
    """Anything else: a response to no pending request, a request from the peer, a non-object."""

    message: Any


class RpcClientCore(Generic[P]):
    """Numbers requests from 1 and matches replies to them by id."""

    def __init__(self) -> None:
        self._nextId = 1
        self._pending: dict[Any, P] = {}

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def nextId(self) -> int:
        """The id the next numbered request will get."""
        return self._nextId

    def request(self, method: str, params: Any, pending: P, *, id: Any = None) -> dict[str, Any]:
        """The request message to send; ``pending`` comes back with its reply. ``id`` overrides
        the next number (tests send odd ids on purpose)."""
        if id is None:
            id = self._nextId
            self._nextId += 1
        self._pending[id] = pending
        message: dict[str, Any] = {"id": id, "method": method}
        if params is not None:
            message["params"] = params
        return message

    @staticmethod
    def notification(method: str, params: Any = None) -> dict[str, Any]:
        message: dict[str, Any] = {"method": method}
        if params is not None:
            message["params"] = params
        return message

    def received(self, message: Any) -> Reply[P] | Notification | Unmatched:
        """Classify one decoded inbound message (and forget the request it answers)."""
        if not isinstance(message, dict):
            return Unmatched(message)
        if "method" in message:
            return Notification(message) if "id" not in message else Unmatched(message)
        ident = message.get("id")
        try:
            pending = self._pending.pop(ident)
        except (KeyError, TypeError):  # TypeError: an unhashable id
            return Unmatched(message)
        return Reply(pending, message)

    def takeAll(self) -> list[P]:
        """Every pending request's value, forgotten (the transport ended: fail them)."""
        pending = list(self._pending.values())
        self._pending.clear()
        return pending
