"""Shared test helpers (not tests themselves)."""

from __future__ import annotations

import json
from typing import Any

from zope.interface import implementer

from twisted_exec.interfaces import IMessageSink


@implementer(IMessageSink)
class RecordingSink:
    """An IMessageSink that keeps every message, decoded."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.closed = False

    def sendMessage(self, payload: bytes) -> None:
        self.raw.append(payload)

    def loseConnection(self) -> None:
        self.closed = True

    @property
    def messages(self) -> list[Any]:
        return [json.loads(m) for m in self.raw]

    def take(self) -> list[Any]:
        out = self.messages
        self.raw.clear()
        return out
