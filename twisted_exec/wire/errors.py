"""JSON-RPC error codes and the exception handlers raise to produce an error reply.

The codes and the exact message strings are the reference's (Codex CLI 0.131.0): harnesses match on
them, so they are part of the wire contract.
"""

from __future__ import annotations

INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_FOUND = -32004


class RpcError(Exception):
    """Raised by a method handler; the processor turns it into ``{"error": {code, message}}``."""

    def __init__(self, code: int, message: str, data: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        #: The error's ``data`` member (0.171 spawn failures carry ``{"kind": ...}``), or None.
        self.data = data

    def __repr__(self) -> str:
        return f"RpcError({self.code}, {self.message!r})"


def invalidParams(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message)


def invalidRequest(message: str) -> RpcError:
    return RpcError(INVALID_REQUEST, message)


def internalError(message: str) -> RpcError:
    return RpcError(INTERNAL_ERROR, message)
