"""A flooding harness cannot hold the rendezvous's loop: counted in reactor turns, not timed.

The property behind ``test_rendezvous_flood`` (whose timing moved to ``bench/flood.py``): the
rendezvous reads each websocket a slice per reactor turn (``net/pacedreader``), so a quiet
peer's frame that arrives while another harness floods is handled after at most one turn's
slice of the flood, :data:`~twisted_exec.net.pacedreader.FRAMES_PER_TURN` frames, however much
of it is waiting. The real rendezvous server (site, upgrade, router) runs on in-memory
transports and a clock whose :meth:`TurnClock.turn` is one reactor turn: the calls due when it
starts, then one read (up to 64 KiB, as Twisted reads) for every connection not paused.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from bench.floodpeer import frame as masked
from twisted_exec.net import pacedreader
from twisted_exec.rendezvous.server import RendezvousServer
from twisted_exec.wire.frames import encodeData, encodeResume

READ_BYTES = 65536  # what Twisted's TCP transport reads per turn
#: Tiny data frames on one stream (~26 bytes each: 2,500 in one 64 KiB read).
FLOOD_FRAMES = 30_000


class TurnClock(Clock):
    """``turn()`` runs only the calls due when it starts: a ``callLater(0)`` made during a turn
    waits for the next one, as on a real reactor (``Clock.advance`` would run it at once)."""

    def turn(self) -> None:
        due = [call for call in self.calls if call.getTime() <= self.seconds()]
        for call in due:
            if call in self.calls:
                self.calls.remove(call)
                call.called = 1
                call.func(*call.args, **call.kw)


class Peer:
    """One TCP connection to the rendezvous: bytes queued as if on the wire, read a 64 KiB
    read per turn while the rendezvous is not pausing the transport."""

    def __init__(self, site: Any, port: int) -> None:
        transport: Any = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
        transport.protocol = site.buildProtocol(transport.getPeer())
        transport.protocol.makeConnection(transport)
        self.transport = transport
        self.wire: deque[bytes] = deque()

    def upgrade(self, path: str) -> None:
        self.transport.protocol.dataReceived(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        assert b" 101 " in self.transport.value().split(b"\r\n")[0], self.transport.value()[:200]
        self.transport.clear()

    def send(self, data: bytes) -> None:
        self.wire.append(data)

    def read(self) -> None:
        if not self.wire or self.transport.producerState == "paused":
            return
        data = b""
        while self.wire and len(data) < READ_BYTES:
            data += self.wire.popleft()
        if len(data) > READ_BYTES:
            self.wire.appendleft(data[READ_BYTES:])
            data = data[:READ_BYTES]
        self.transport.protocol.dataReceived(data)


class PacingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = TurnClock()
        self.server = RendezvousServer(self.clock, None, pingInterval=None, idleTimeout=None)
        self.server.checkSignature = False
        self.site = self.server.site()
        self.peers: list[Peer] = []
        self.routed: list[tuple[Any, bytes]] = []
        router = self.server.router
        fromHarness = router.fromHarness

        def counting(link: Any, executorId: str, raw: bytes) -> None:
            self.routed.append((link, raw))
            fromHarness(link, executorId, raw)

        router.fromHarness = counting  # type: ignore[method-assign,assignment]

    def connect(self, path: str) -> Peer:
        peer = Peer(self.site, 40000 + len(self.peers))
        peer.upgrade(path)
        self.peers.append(peer)
        return peer

    def turn(self) -> None:
        self.clock.turn()
        for peer in self.peers:
            peer.read()

    def test_quietHarnessServedAfterOneSliceOfTheFlood(self) -> None:
        executor = self.connect("/executor/box")
        flooder = self.connect("/harness/box")
        quiet = self.connect("/harness/box")
        flood = masked(encodeResume("flood")) + b"".join(
            masked(encodeData("flood", seq, b"{}")) for seq in range(FLOOD_FRAMES)
        )
        self.assertGreater(len(flood), 8 * READ_BYTES)  # many reads' worth waiting
        flooder.send(flood)
        for _ in range(5):  # the flood is under way: its backlog is being paced
            self.turn()
        floodLink = flooder.transport.protocol.link
        quietLink = quiet.transport.protocol.link
        before = sum(1 for link, _ in self.routed if link is floodLink)
        quiet.send(masked(encodeData("quiet", 0, b'{"id":1,"method":"initialize"}')))
        turns = 0
        while not any(link is quietLink for link, _ in self.routed):
            self.turn()
            turns += 1
            self.assertLess(turns, 1000, "the quiet harness's frame was never routed")
        ahead = sum(1 for link, _ in self.routed if link is floodLink) - before
        self.assertLessEqual(turns, 1)
        self.assertLessEqual(ahead, pacedreader.FRAMES_PER_TURN, (turns, ahead))
        self.assertLessEqual(before, 5 * pacedreader.FRAMES_PER_TURN + 1)  # paced all along
        # The flood is still waiting, paced: the quiet frame did not wait for it to drain.
        self.assertTrue(flooder.wire or flooder.transport.protocol.reader.backlog)
        self.assertIsNotNone(executor.transport.protocol.link)
