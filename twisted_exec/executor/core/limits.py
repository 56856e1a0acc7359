"""Every byte budget of the executor in one place (README "Limits", docs/flow-control.md).

Round 1 bounded counts; its byte limits disagreed (64 MiB relay, 128 MiB local, 512 MiB
``fs/readFile``, none for ``process/write`` or buffered HTTP bodies), so a 50 MiB ``fs/readFile``
through a relay produced a reply the rendezvous refused, and the rendezvous dropped the websocket
with every other stream on it. :class:`Limits` is the single source: transports take the message
size from it, resources take their budgets from it, and :meth:`Limits.replyProblem` is the check
that no reply the peer would refuse ever leaves (it becomes a JSON-RPC error naming the limit).

Sans-IO: a frozen dataclass and pure functions. Other helpers adopt it by taking a ``Limits``
(or one of its fields) in their constructor; the twistd options build one
(:func:`Limits.fromOptions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

MiB = 1024 * 1024

#: Bytes a relay frame adds around a JSON-RPC payload (protobuf envelope: version, stream id of
#: at most 128 bytes, seq, segment fields). Generous: the exact figure is below 200 bytes.
RELAY_FRAME_OVERHEAD = 512

#: Bytes of JSON around the base64 of an ``fs/readFile`` reply (``{"id":...,"result":
#: {"dataBase64":"..."}}`` with an id of any length the processor accepts).
READ_FILE_REPLY_OVERHEAD = 4096

#: The reference's ``fs/readFile`` size limit (its -32600 "file is too large to read").
REFERENCE_READ_FILE_BYTES = 512 * MiB

#: Default of ``--max-processes``: live processes per session (the reference has no limit).
MAX_PROCESSES = 128
#: Closed processes per session kept whole (output readable) before older ones are tombstoned.
RETAIN_CLOSED = 32


@dataclass(frozen=True)
class Limits:
    """Byte budgets (``None``: unbounded, where the reference is) shared by every layer.

    - ``maxMessageBytes``: the largest websocket message (or stdio line) we accept *and* send,
      on every transport. 64 MiB is the rendezvous' limit and tungstenite's default (the
      reference harness refuses larger messages), so one value serves every peer.
    - ``maxReadFileBytes``: ``fs/readFile`` refuses larger files (the reference's 512 MiB); the
      effective limit is :meth:`readFileLimit`, which also keeps the reply under the message size.
    - ``retainBytes``: output retained per process for ``process/read`` (the reference's 1 MiB),
      counted with :data:`CHUNK_OVERHEAD` per chunk (``output_buffer``).
    - ``maxReadBytes``: output bytes in one ``process/read`` reply (``None``: ``retainBytes``).
    - ``maxStdinBacklogBytes``: bytes written with ``process/write`` that the child has not read
      yet; a write beyond it is an error (the child is not reading its stdin).
    - ``maxHttpBodyBytes``: a buffered ``http/request`` body (streamed bodies are flow
      controlled instead); also bounded by the reply size.
    - ``maxQueuedBytes``: bytes of the messages waiting behind the request in progress on one
      session (their count is bounded by the processor's ``MAX_QUEUED``, 1,024).
    - ``maxFsInFlight``: ``fs/*`` calls of one session on the thread pool at once, so one session
      cannot take the pool (``fsThreads``) from the others.
    - ``relayStreamWindowBytes`` / ``relayStallSeconds``: per-stream flow control on a relay:
      unacknowledged bytes a stream may have in flight, and how long it may stay stalled before
      it is reset (docs/flow-control.md "Relay").
    - ``maxProcesses`` (ours; the reference lets one session fork without bound) and
      ``retainClosed`` (closed processes per session whose output stays readable) are counts,
      kept here so that one object configures the executor core.
    """

    maxMessageBytes: int = 64 * MiB
    maxReadFileBytes: int | None = REFERENCE_READ_FILE_BYTES
    retainBytes: int = 1 * MiB
    maxReadBytes: int | None = None
    maxStdinBacklogBytes: int = 4 * MiB
    maxHttpBodyBytes: int = 32 * MiB
    maxQueuedBytes: int = 64 * MiB
    maxFsInFlight: int = 4
    fsThreads: int = 10
    relayStreamWindowBytes: int = 4 * MiB
    relayStallSeconds: float = 60.0
    maxProcesses: int | None = MAX_PROCESSES
    retainClosed: int = RETAIN_CLOSED
    #: Requests of one connection (or relay stream) in flight at once (``--concurrent-requests``).
    concurrentRequests: int = 1

    def __post_init__(self) -> None:
        for name in (
            "maxMessageBytes",
            "retainBytes",
            "maxStdinBacklogBytes",
            "maxHttpBodyBytes",
            "maxQueuedBytes",
            "maxFsInFlight",
            "fsThreads",
            "relayStreamWindowBytes",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be more than 0")
        if self.maxFsInFlight > self.fsThreads:
            raise ValueError("maxFsInFlight must not exceed fsThreads")

    # -- derived budgets ------------------------------------------------------------------------

    @property
    def maxReplyBytes(self) -> int:
        """The largest JSON-RPC message we send: it fits a websocket message and a relay frame."""
        return self.maxMessageBytes - min(RELAY_FRAME_OVERHEAD, self.maxMessageBytes // 2)

    def readFileLimit(self) -> int:
        """Largest file ``fs/readFile`` returns: the configured limit, or what fits in a reply.

        Base64 is 4/3 of the data, so a 64 MiB message carries a file of about 48 MiB.
        """
        fits = max(self.maxReplyBytes - READ_FILE_REPLY_OVERHEAD, 0) // 4 * 3
        if self.maxReadFileBytes is None:
            return fits
        return min(self.maxReadFileBytes, fits)

    def httpBodyLimit(self) -> int:
        """Largest buffered ``http/request`` body: the configured budget, or what fits a reply."""
        fits = max(self.maxReplyBytes - READ_FILE_REPLY_OVERHEAD, 0) // 4 * 3
        return min(self.maxHttpBodyBytes, fits)

    def replyProblem(self, size: int) -> str | None:
        """Why a reply of ``size`` bytes must not be sent (a JSON-RPC error message), or None."""
        if size <= self.maxReplyBytes:
            return None
        return (
            f"reply of {size} bytes exceeds the message limit of {self.maxReplyBytes} bytes "
            "(see --max-message-bytes)"
        )

    def queueProblem(self, queuedMessages: int, queuedBytes: int, incoming: int) -> str | None:
        """Why one more inbound message of ``incoming`` bytes may not wait in a session's queue.

        An empty queue always takes a message (one message is at most ``maxMessageBytes``).
        """
        if queuedMessages and queuedBytes + incoming > self.maxQueuedBytes:
            return (
                f"too many pending bytes on this session (limit {self.maxQueuedBytes} bytes "
                "of messages waiting)"
            )
        return None

    def stdinProblem(self, backlog: int, incoming: int) -> str | None:
        """Why ``incoming`` more bytes may not be queued for a child's stdin, or None."""
        if incoming and backlog + incoming > self.maxStdinBacklogBytes:
            return (
                f"process stdin backlog would exceed {self.maxStdinBacklogBytes} bytes "
                f"({backlog} bytes not yet read by the process)"
            )
        return None

    # -- construction --------------------------------------------------------------------------

    def withOverrides(self, **changes: Any) -> Limits:
        return replace(self, **changes)

    @classmethod
    def fromOptions(cls, options: Mapping[str, Any]) -> Limits:
        """From the twistd options that exist (``0`` means unlimited where the option says so)."""
        changes: dict[str, Any] = {}
        if options.get("max-message-bytes"):
            changes["maxMessageBytes"] = int(options["max-message-bytes"])
        if "max-read-file-bytes" in options:
            changes["maxReadFileBytes"] = int(options["max-read-file-bytes"]) or None
        if "max-read-bytes" in options:
            changes["maxReadBytes"] = int(options["max-read-bytes"]) or None
        return cls(**changes)


DEFAULT_LIMITS = Limits()

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_PROCESSES",
    "READ_FILE_REPLY_OVERHEAD",
    "REFERENCE_READ_FILE_BYTES",
    "RELAY_FRAME_OVERHEAD",
    "RETAIN_CLOSED",
    "Limits",
]
