"""The harness connection's words for a websocket that closed before it opened."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.harness.connection import HarnessConnection

DROPPED = "peer dropped the TCP connection without previous WebSocket closing handshake"


class HandshakeErrorTests(SynchronousTestCase):
    def test_secureUrlDroppedNamesPlainHttp(self) -> None:
        """https:// against a plain-http rendezvous ends as a dropped connection once the
        server gives up on the TLS hello: the error says what is probably wrong."""
        connection = HarnessConnection(Clock(), "https://127.0.0.1:9", "box")
        text = str(connection._handshakeError(DROPPED))
        self.assertIn(DROPPED, text)
        self.assertIn("plain http", text)

    def test_plainUrlDroppedHasNoTlsHint(self) -> None:
        connection = HarnessConnection(Clock(), "http://127.0.0.1:9", "box")
        text = str(connection._handshakeError(DROPPED))
        self.assertIn(DROPPED, text)
        self.assertNotIn("TLS", text)
