"""The two generations of the exec-server protocol one executor serves.

``V131`` is Codex CLI 0.131.0's dialect (bare absolute paths, ``{sessionId}`` from
``initialize``); ``V171`` is 0.171.0's (``file:`` URIs, ``environment/*``, ``writeId``,
``process/signal``). A session starts as ``V131`` (so a 0.131 client keeps every byte it got
before) and becomes ``V171`` for good once it sends anything only the newer dialect has; see
``executor/methods/registry.py`` for how a request's dialect is chosen.
"""

from __future__ import annotations

from enum import IntEnum


class Dialect(IntEnum):
    V131 = 131
    V171 = 171


__all__ = ["Dialect"]
