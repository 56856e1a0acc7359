"""The seams between layers, as zope interfaces.

A JSON-RPC processor does not know whether it sits behind a local websocket, a relay stream or
stdio: it is handed an :class:`IMessageSink` and told when that sink goes away.
"""

from __future__ import annotations

from zope.interface import Interface


class IMessageSink(Interface):
    """Where a processor writes its outbound JSON-RPC messages: one connection or relay stream."""

    def sendMessage(payload: bytes) -> None:
        """Send one complete JSON-RPC message (UTF-8 JSON, no trailing newline)."""

    def loseConnection() -> None:
        """Close the underlying connection or stream (used by transports such as stdio)."""


class IJsonRpcProcessor(Interface):
    """One JSON-RPC session endpoint, fed one decoded message at a time by a transport."""

    def makeConnection(sink: IMessageSink) -> None:
        """The transport is ready; outbound messages go to ``sink`` from now on."""

    def messageReceived(payload: bytes) -> None:
        """One inbound message (the raw bytes of a text frame, relay payload or line)."""

    def connectionLost() -> None:
        """The transport went away; the session is detached (not killed) so it can be resumed."""

    def pauseProducing() -> None:
        """The transport cannot keep up: stop producing outbound messages at their source.

        The processor stops handling queued requests and pauses its session's producers (the
        process pipes stop being read, HTTP body streams stop reading), so nothing piles up in
        the transport's write buffer. Idempotent. See ``docs/flow-control.md``.
        """

    def resumeProducing() -> None:
        """The transport drained its write buffer: undo :meth:`pauseProducing`. Idempotent."""


class IProcessorFactory(Interface):
    """Builds one processor per connection or relay stream."""

    def buildProcessor(parseErrorContext: str | None) -> IJsonRpcProcessor:
        """A new processor.

        ``parseErrorContext`` is the text after ``failed to parse `` in the reply to a message that
        is not JSON (e.g. ``websocket JSON-RPC message from exec-server websocket 127.0.0.1:5``);
        ``None`` means such messages are dropped with a log line, as the relay does.
        """
