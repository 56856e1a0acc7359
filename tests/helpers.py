"""Shared test helpers (not tests themselves)."""

from __future__ import annotations

import json
from typing import Any

from zope.interface import implementer

from twisted_exec.executor.core.interfaces import IMessageSink


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


def meterWriteBuffer(case: Any, transport: Any) -> list[int]:
    """Wrap a TCP transport's ``write`` to record the peak of its user-space write buffer.

    Returns a one-element list holding the peak bytes buffered so far; ``case``'s cleanup puts
    the original ``write`` back.
    """
    peak = [0]
    write = transport.write

    def measuringWrite(data: bytes) -> None:
        write(data)
        buffered = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
        peak[0] = max(peak[0], buffered)

    transport.write = measuringWrite
    case.addCleanup(setattr, transport, "write", write)
    return peak
