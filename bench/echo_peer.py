"""The stack's ceiling: a bare autobahn peer in the executor's seat that does no real work.

Usage (bench/relay.py starts it)::

    python bench/echo_peer.py WS_URL

It dials the rendezvous like an executor and answers every request at once with a canned reply
of the same shape and size as a real executor's, so that the harness, the rendezvous and
autobahn are measured on their own, with the same frames as the real runs:

- ``initialize`` → ``{"sessionId": ...}``; notifications are ignored;
- ``process/start`` of ``head -c N /dev/zero`` → the reply, then N bytes of zeros as
  ``process/output`` notifications of 8 KiB (``stream`` ``pty`` when ``tty``), then
  ``process/exited`` and ``process/closed``; any other ``process/start`` (``true``) → the reply,
  ``exited`` and ``closed`` (no child is spawned);
- anything else → an ``fs/getMetadata``-shaped result.

Output is sent as a push producer on the TCP transport, so a slow harness pauses it instead of
filling memory. The peer exits when its websocket closes.
"""

from __future__ import annotations

import base64
import json
import sys
import uuid
from collections import deque
from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol, connectWS
from twisted.internet import defer, task
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from twisted_exec.wire.frames import Data, FrameCodec

CHUNK = 8192
_ZEROS_B64 = base64.b64encode(bytes(CHUNK)).decode()
METADATA = {
    "isDirectory": True,
    "isFile": False,
    "isSymlink": False,
    "createdAtMs": 1764000000000,
    "modifiedAtMs": 1764000000000,
}


class _Blast:
    """The notifications of one fake ``head -c N /dev/zero``, produced lazily."""

    def __init__(self, streamId: str, processId: str, size: int, stream: str) -> None:
        self.streamId = streamId
        self.processId = processId
        self.left = size
        self.stream = stream
        self.seq = 0
        self.done = False

    def next(self) -> bytes:
        self.seq += 1
        if self.left > 0:
            n = min(CHUNK, self.left)
            self.left -= n
            chunk = _ZEROS_B64 if n == CHUNK else base64.b64encode(bytes(n)).decode()
            params: dict[str, Any] = {
                "processId": self.processId,
                "seq": self.seq,
                "stream": self.stream,
                "chunk": chunk,
            }
            return json.dumps({"method": "process/output", "params": params}).encode()
        if self.left == 0:
            self.left = -1
            params = {"processId": self.processId, "seq": self.seq, "exitCode": 0}
            return json.dumps({"method": "process/exited", "params": params}).encode()
        self.done = True
        params = {"processId": self.processId, "seq": self.seq}
        return json.dumps({"method": "process/closed", "params": params}).encode()


@implementer(IPushProducer)
class EchoPeer(WebSocketClientProtocol):  # type: ignore[misc]
    """Canned replies; fake process output as fast as the transport takes it."""

    factory: EchoFactory

    def __init__(self) -> None:
        super().__init__()
        self.codec = FrameCodec()
        self.blasts: deque[_Blast] = deque()
        self.paused = False

    def onOpen(self) -> None:
        transport: Any = self.transport
        transport.registerProducer(self, True)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.ended.callback(None)

    def send(self, streamId: str, message: bytes) -> None:
        self.sendMessage(self.codec.encode(streamId, message), isBinary=True)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        event = self.codec.decode(payload)
        if not isinstance(event, Data):
            return
        msg = json.loads(event.payload)
        if "id" not in msg:
            return
        method = msg.get("method")
        params = msg.get("params") or {}
        result: Any = METADATA
        if method == "initialize":
            result = {"sessionId": str(uuid.uuid4())}
        elif method == "process/start":
            result = {"processId": params["processId"]}
        self.send(event.streamId, json.dumps({"id": msg["id"], "result": result}).encode())
        if method == "process/start":
            argv = params.get("argv") or []
            size = int(argv[2]) if argv[:2] == ["head", "-c"] else 0
            stream = "pty" if params.get("tty") else "stdout"
            self.blasts.append(_Blast(event.streamId, params["processId"], size, stream))
            self.resumeProducing()

    # -- IPushProducer ---------------------------------------------------------------------------

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        while self.blasts and not self.paused:
            blast = self.blasts[0]
            self.send(blast.streamId, blast.next())
            if blast.done:
                self.blasts.popleft()

    def stopProducing(self) -> None:
        self.blasts.clear()


class EchoFactory(WebSocketClientFactory):  # type: ignore[misc]
    """One connection; ``ended`` fires when it closes (or could not be made)."""

    protocol = EchoPeer  # type: ignore[assignment]

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.ended: defer.Deferred[None] = defer.Deferred()
        self.setProtocolOptions(maxMessagePayloadSize=0, maxFramePayloadSize=0)

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        self.ended.callback(None)


async def main(reactor: Any, url: str) -> None:
    factory = EchoFactory(url)
    connectWS(factory)
    await factory.ended


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, sys.argv[1])))
