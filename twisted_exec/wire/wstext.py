"""Whole text websocket messages of the local listener, parsed and built in one step.

The local websocket carries one JSON-RPC message per text frame, unfragmented and
uncompressed. autobahn handles each inbound frame in four callbacks (frame begin, data, end,
message end), builds a native masker object and a UTF-8 validator object per frame and formats a
debug line per read; its ``sendMessage`` re-checks its arguments and counts traffic before
writing. Together that was about a quarter of our server's time per small call
(bench/results/local-ws-2026-12-04.md). These two functions do the common case directly and
say ``None`` for everything else, which stays autobahn's to handle (and to refuse with its own
close codes: 1002, 1007, 1009).
"""

from __future__ import annotations

from twisted_exec.wire.wsframe import frameHeader, wholeFrameAt


def nextClientTextMessage(data: bytes, offset: int, limit: int = 0) -> tuple[bytes, int] | None:
    """The unmasked payload of the text message that is one whole frame at ``data[offset:]``,
    and the offset after it; ``None`` when what starts there is anything else.

    Taken: a masked frame (client to server) with FIN, opcode 1, no RSV bit, its length in the
    shortest encoding, at most ``limit`` bytes (0: no limit), whole in ``data``, whose payload
    is valid UTF-8. Everything else (control frames, fragments, binary, unmasked frames, a frame
    not whole yet, invalid UTF-8, a length a websocket library must refuse) is ``None``.
    """
    found = wholeFrameAt(data, offset, limit, 0x81, masked=True)
    if found is None:
        return None
    payload, end = found
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return payload, end


def serverTextFrame(payload: bytes) -> bytes:
    """FIN + opcode 1 (text), unmasked (server to client), the length in its shortest encoding:
    the bytes autobahn's ``sendMessage(payload, isBinary=False)`` writes for one frame."""
    return frameHeader(0x81, len(payload)) + payload
