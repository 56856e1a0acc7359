"""The seams between layers, as zope interfaces.

A JSON-RPC processor does not know whether it sits behind a local websocket, a relay stream or
stdio: it is handed an :class:`IMessageSink` and told when that sink goes away.
"""

from __future__ import annotations

from typing import Any

from zope.interface import Attribute, Interface


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

    def closeSession() -> None:
        """The transport ended for good (stdio's EOF): end the session now, not detach it."""


class IProcessorFactory(Interface):
    """Builds one processor per connection or relay stream."""

    def buildProcessor(parseErrorContext: str | None) -> IJsonRpcProcessor:
        """A new processor.

        ``parseErrorContext`` is the text after ``failed to parse `` in the reply to a message that
        is not JSON (e.g. ``websocket JSON-RPC message from exec-server websocket 127.0.0.1:5``);
        ``None`` means such messages are dropped with a log line, as the relay does.
        """


class IProcessTable(Interface):
    """A session's processes (``process/*``); see ``executor/resources/processes.py``."""

    def start(p: Any, dialect: Any = None) -> Any:
        """``process/start``: a result dict, or a Deferred/coroutine of one. A process started
        in the 0.171 ``dialect`` reports a signal's death as 128 + signal and ``exited`` with
        ``sandboxDenied``."""

    def read(p: Any, dialect: Any = None) -> Any:
        """``process/read`` (may long-poll with ``waitMs``), in the dialect's shape."""

    def write(p: Any, writeId: Any = None) -> Any:
        """``process/write``; a repeated ``writeId`` (0.171) is accepted and not written."""

    def interrupt(processId: str) -> None:
        """0.171's ``process/signal interrupt``: SIGINT to the process group."""

    def terminate(p: Any) -> Any:
        """``process/terminate``."""

    def closeStdin(p: Any) -> Any:
        """``process/closeStdin`` (our extension): end a piped stdin."""

    def resize(p: Any) -> Any:
        """``process/resize`` (our extension): set a pty's size."""

    def pauseAll() -> None:
        """Stop reading every process's output (the transport is full)."""

    def resumeAll() -> None:
        """Read again."""

    def killAll() -> None:
        """SIGKILL every process group of the session now (it ended)."""


class IHttpRequester(Interface):
    """A session's ``http/request`` exchanges; see ``executor/resources/http_request.py``."""

    def request(p: Any) -> Any:
        """``http/request``: a Deferred of the result."""

    def cancelAll() -> None:
        """Abort every exchange (the session ended)."""

    def pauseProducing() -> None:
        """Stop reading streamed response bodies (the transport is full)."""

    def resumeProducing() -> None:
        """Read again."""


class ISessionResources(Interface):
    """What one session owns; the processor pauses it with its transport and the session
    registry closes it when the session ends."""

    processes = Attribute("The session's IProcessTable.")
    http = Attribute("The session's IHttpRequester.")

    def close() -> None:
        """The session ended: kill its processes, abort its requests."""

    def pauseProducing() -> None:
        """The session's transport is full: stop its producers at their source."""

    def resumeProducing() -> None:
        """The transport drained: undo :meth:`pauseProducing`."""


class IConnectionResource(Interface):
    """Something one connection owns, not its session (0.171's fs handles and missing-path
    watch: the reference forgets them when the connection goes, even on a resume); made by
    ``ExecProcessor.connectionResource`` on first use."""

    def close() -> None:
        """The connection ended: release everything (descriptors, kernel watches)."""
