"""``--listen stdio``: newline-delimited JSON-RPC on stdin/stdout, as a harness's child process.

As the reference (probed on Codex CLI 0.131.0):

- one message per ``\\n``-terminated line; ``\\r\\n`` is accepted; blank lines (spaces, tabs, a
  lone ``\\r``) are skipped; every reply or notification is one line;
- a line that is not JSON-RPC gets ``{"id":-1,"error":{"code":-32600,"message":"failed to parse
  JSON-RPC message from exec-server stdio: <serde error>"}}`` (built by the processor);
- stdin EOF ends the session at once (its processes are killed, no detach window) and the
  executor exits 0; stdout carries nothing but protocol, logs go to stderr.

Unlike the reference, whose answer to an unterminated last line before EOF is racy, such a line is
handled as if it had ended with a newline.

``python -m twisted_exec.executor.stdio_main`` runs a stdio executor without twistd (harnesses and
tests spawn it); ``twistd -n codex-executor --listen stdio`` wires :func:`makeStdioService` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import IService, Service
from twisted.internet.defer import maybeDeferred, succeed
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer, ITransport
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.stdio import StandardIO
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_exec.executor.core.interfaces import IJsonRpcProcessor, IMessageSink, IProcessorFactory
from twisted_exec.executor.core.limits import DEFAULT_LIMITS

log = Logger()

PARSE_ERROR_CONTEXT = "JSON-RPC message from exec-server stdio"
DEFAULT_MAX_LINE_BYTES = DEFAULT_LIMITS.maxMessageBytes  # 64 MiB: core/limits.py
_BLANK = b" \t\r"


@implementer(IMessageSink)
class _StdoutSink:
    """One JSON message per line on stdout."""

    def __init__(self, transport: ITransport) -> None:
        self._transport = transport

    def sendMessage(self, payload: bytes) -> None:
        self._transport.writeSequence([payload, b"\n"])

    def loseConnection(self) -> None:
        self._transport.loseConnection()


@implementer(IPushProducer)
class _StdoutFlowControl:
    """Registered with stdout: when the harness reads slower than we write, pause the processor
    (its process pipes and HTTP body streams) instead of piling output up in stdout's buffer,
    and stop reading stdin too: a paused processor queues requests, so they must not pile up
    unread either (the same rule as ``net.backpressure`` for websockets)."""

    def __init__(self, processor: IJsonRpcProcessor, transport: Any = None) -> None:
        self.processor = processor
        self.transport = transport

    def pauseProducing(self) -> None:
        self.processor.pauseProducing()
        pause = getattr(self.transport, "pauseProducing", None)
        if pause is not None:
            pause()

    def resumeProducing(self) -> None:
        resume = getattr(self.transport, "resumeProducing", None)
        if resume is not None:
            resume()
        self.processor.resumeProducing()

    def stopProducing(self) -> None:
        pass  # stdout is gone: writeConnectionLost/connectionLost end the session


@implementer(IHalfCloseableProtocol)
class StdioJsonRpcProtocol(Protocol):
    """Splits stdin into lines for one processor; EOF on stdin ends the session for good."""

    def __init__(
        self,
        processor: IJsonRpcProcessor,
        onEnd: Callable[[], object] | None = None,
        maxLineBytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        self.processor = processor
        self.onEnd = onEnd
        self.maxLineBytes = maxLineBytes
        self._buffer = bytearray()
        self._discarding = False
        self._ended = False

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.processor.makeConnection(_StdoutSink(self.transport))
        registerProducer = getattr(self.transport, "registerProducer", None)
        if registerProducer is not None:
            registerProducer(_StdoutFlowControl(self.processor, self.transport), True)

    def dataReceived(self, data: bytes) -> None:
        if self._ended:
            return
        start = 0
        while True:
            newline = data.find(b"\n", start)
            if newline == -1:
                break
            self._takeLine(data[start:newline])
            start = newline + 1
            if self._ended:
                return
        rest = data[start:]
        if self._discarding:
            return
        self._buffer += rest
        if len(self._buffer) > self.maxLineBytes:
            log.warn("stdin line longer than {limit} bytes: dropped", limit=self.maxLineBytes)
            self._buffer.clear()
            self._discarding = True

    def _takeLine(self, tail: bytes) -> None:
        if self._discarding:
            self._discarding = False
            self._buffer.clear()
            return
        if self._buffer:
            self._buffer += tail
            line = bytes(self._buffer)
            self._buffer.clear()
        else:
            line = tail
        if len(line) > self.maxLineBytes:
            log.warn("stdin line longer than {limit} bytes: dropped", limit=self.maxLineBytes)
            return
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip(_BLANK):
            return
        self.processor.messageReceived(line)

    # -- the end ------------------------------------------------------------------------------

    def readConnectionLost(self) -> None:
        """stdin EOF: answer a final unterminated line, kill the session, flush and close."""
        if self._buffer and not self._discarding:
            self._takeLine(b"")
        self._end()
        if self.transport is not None:
            self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        """stdout closed by the reader: nobody can hear us, end as for EOF."""
        self._end()
        if self.transport is not None:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._end()
        onEnd, self.onEnd = self.onEnd, None
        if onEnd is not None:
            onEnd()

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        self._buffer.clear()
        self.processor.closeSession()


class StdioService(Service):
    """Serves one processor on stdin/stdout; when stdin ends, ``onEnd`` runs (default: stop)."""

    def __init__(
        self,
        reactor: Any,
        processorFactory: IProcessorFactory,
        *,
        onEnd: Callable[[], object] | None = None,
        stdin: int = 0,
        stdout: int = 1,
        maxLineBytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        self.reactor = reactor
        self.processorFactory = processorFactory
        self.onEnd = onEnd if onEnd is not None else self._stopReactor
        self.stdin = stdin
        self.stdout = stdout
        self.maxLineBytes = maxLineBytes
        self.protocol: StdioJsonRpcProtocol | None = None

    def _stopReactor(self) -> None:
        if self.reactor.running:
            self.reactor.stop()

    def startService(self) -> None:
        super().startService()
        processor = self.processorFactory.buildProcessor(PARSE_ERROR_CONTEXT)
        self.protocol = StdioJsonRpcProtocol(processor, self._ended, self.maxLineBytes)
        StandardIO(  # type: ignore[call-arg]  # mypy sees the win32 signature
            self.protocol, stdin=self.stdin, stdout=self.stdout, reactor=self.reactor
        )

    def _ended(self) -> None:
        log.info("stdin closed: exec-server stdio session ended")
        self.onEnd()

    def stopService(self) -> Any:
        super().stopService()
        protocol, self.protocol = self.protocol, None
        if protocol is not None and not protocol._ended:
            protocol.onEnd = None  # we are stopping already
            protocol._end()
            if protocol.transport is not None:
                protocol.transport.loseConnection()
        return None


def makeStdioService(
    reactor: Any,
    processorFactory: IProcessorFactory,
    owner: IService | None = None,
    **kwargs: Any,
) -> StdioService:
    """The stdio transport as a service; stdin EOF stops ``owner`` (if given) and the reactor."""
    service = StdioService(reactor, processorFactory, **kwargs)
    if owner is not None and "onEnd" not in kwargs:

        def end() -> None:
            # The reactor stops only once the owner has (its killed children reaped).
            stopped = maybeDeferred(owner.stopService) if owner.running else succeed(None)
            stopped.addBoth(lambda _: service._stopReactor())

        service.onEnd = end
    return service
