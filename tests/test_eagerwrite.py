"""net/eagerwrite: a reply leaves at once when nothing waits, never ahead of buffered bytes."""

from __future__ import annotations

import socket

from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.tcp import Connection
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.net.eagerwrite import writeNow


class _Reactor(MemoryReactor, Clock):
    def __init__(self) -> None:
        MemoryReactor.__init__(self)
        Clock.__init__(self)


class WriteNowTests(SynchronousTestCase):
    def setUp(self) -> None:
        ours, self.peer = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(self.peer.close)
        self.peer.setblocking(False)
        self.reactor = _Reactor()
        self.transport = Connection(ours, Protocol(), self.reactor)
        self.transport.connected = True

    def buffered(self) -> bytes:
        t = self.transport
        return t.dataBuffer[t.offset :] + b"".join(t._tempDataBuffer)

    def received(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self.peer.recv(1 << 20)
            except BlockingIOError:
                return b"".join(chunks)
            chunks.append(chunk)

    def test_sentAtOnceWhenNothingWaits(self) -> None:
        writeNow(self.transport, b"reply")
        self.assertEqual(self.received(), b"reply")
        self.assertEqual(self.buffered(), b"")
        self.assertNotIn(self.transport, self.reactor.getWriters())

    def test_neverAheadOfBufferedBytes(self) -> None:
        self.transport.write(b"first ")
        writeNow(self.transport, b"second")
        self.assertEqual(self.received(), b"")
        self.assertEqual(self.buffered(), b"first second")

    def test_whatTheSocketDidNotTakeIsBuffered(self) -> None:
        data = bytes(range(256)) * 16384  # 4 MiB: more than one send and the socket buffer
        writeNow(self.transport, data)
        sent = self.received()
        self.assertLess(len(sent), len(data))
        self.assertEqual(sent + self.buffered(), data)
        self.assertIn(self.transport, self.reactor.getWriters())

    def test_notWhileDisconnecting(self) -> None:
        self.transport.disconnecting = True
        writeNow(self.transport, b"late")
        self.assertEqual(self.received(), b"")

    def test_otherTransportsJustWrite(self) -> None:
        transport = StringTransport()
        writeNow(transport, b"x")
        self.assertEqual(transport.value(), b"x")
