"""Sans-IO Noise demultiplexer: the executor side of Codex 0.171's encrypted relay.

One environment websocket carries many streams; each is its own Noise_hybridIK session with
the harness (we are the responder), and the rendezvous sees only ciphertext. Per stream:

1. ``handshake{msg1}`` on a new stream id: we read it (it authenticates the harness key and
   carries the registry's ``harness_key_authorization``), ask the registry to validate the
   pair, and only if it is valid answer ``handshake{msg2}``; the stream then exists.
2. ``data`` frames carry one Noise record each (seq per direction from 0): reordered within a
   bounded window, decrypted, reassembled into JSON-RPC messages for the stream's processor;
   what the processor writes is framed, split into 60 KiB records and encrypted back.
3. Every failure answers ``reset{noise_relay_protocol_error}`` (the one reason 0.171 sends) and
   never says why: the reason is unauthenticated on the wire and the detail stays in our log.

The rules and limits are 0.171's (``relay.rs`` ``run_multiplexed_environment``): at most 128
active streams and 32 validations in flight; a 10 s validation deadline; an authorization of
at most 4096 UTF-8 bytes; a duplicate handshake on an active stream is reset, one on a pending
stream cancels it; data for an unknown stream is reset; 8 failed handshakes (unreadable msg1,
bad authorization, refused or failed validation, a pending handshake cancelled by a duplicate
or by early data) end the whole websocket (``onExhausted``) so the connector dials again.
``ack``, ``resume`` and ``heartbeat`` frames are ignored; a stream's own reset (or the harness
going away) detaches its session as in clear mode, and a session that closes its sink gets its
stream reset, as 0.171 resets a stream whose connection ended. Once open, a stream lives the
same life as a clear one (``lifecycle.py``, ``streams.py``), without a window of its own.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_exec.executor.core.interfaces import IJsonRpcProcessor, IProcessorFactory
from twisted_exec.executor.transports.relay.noise_stream import (
    NoiseSink,
    NoiseStream,
    PendingHandshake,
    authorizationOf,
    failedValidation,
    isJsonObject,
)
from twisted_exec.executor.transports.relay.streams import StreamTable
from twisted_exec.wire import noise
from twisted_exec.wire.frames import (
    Data,
    Handshake,
    Ignored,
    Invalid,
    Reset,
    decodeFrame,
    encodeData,
    encodeHandshake,
    encodeReset,
)

log = Logger()

MAX_ACTIVE_STREAMS = 128
MAX_PENDING_VALIDATIONS = 32
MAX_FAILED_HANDSHAKES = 8
VALIDATION_TIMEOUT = 10.0


#: Asks the registry whether a harness key may use this executor with an authorization
#: ``(harnessKey, authorization, streamId)``: ``True`` only when the registry answered
#: ``{"valid": true}``; ``False`` or a failure rejects the stream.
HarnessKeyValidator = Callable[[noise.NoisePublicKey, str, str], Deferred[bool]]


class NoiseRelayDemux(StreamTable[NoiseStream]):
    """Routes one environment websocket's frames; ``send`` writes one binary message."""

    streamLabel = "Noise relay stream"

    def __init__(
        self,
        processorFactory: IProcessorFactory,
        send: Callable[[bytes], None],
        *,
        identity: noise.NoiseIdentity,
        environmentId: str,
        executorRegistrationId: str,
        validator: HarnessKeyValidator,
        clock: IReactorTime,
        onExhausted: Callable[[], None],
        maxActiveStreams: int = MAX_ACTIVE_STREAMS,
        maxPendingValidations: int = MAX_PENDING_VALIDATIONS,
        maxFailedHandshakes: int = MAX_FAILED_HANDSHAKES,
        validationTimeout: float = VALIDATION_TIMEOUT,
    ) -> None:
        super().__init__()
        self._factory = processorFactory
        self._send = send
        self._identity = identity
        self._environmentId = environmentId
        self._registrationId = executorRegistrationId
        self._validator = validator
        self._clock = clock
        self._onExhausted = onExhausted
        self.maxActiveStreams = maxActiveStreams
        self.maxPendingValidations = maxPendingValidations
        self.maxFailedHandshakes = maxFailedHandshakes
        self.validationTimeout = validationTimeout
        self._pending: dict[str, PendingHandshake] = {}
        self._inFlight: dict[int, Deferred[bool]] = {}
        self._nextValidationId = 0
        self.failedHandshakes = 0
        self.resetsSent = 0

    # -- introspection (tests, status) ---------------------------------------------------------

    @property
    def pendingStreamIds(self) -> frozenset[str]:
        return frozenset(self._pending)

    @property
    def validationsInFlight(self) -> int:
        return len(self._inFlight)

    @property
    def exhausted(self) -> bool:
        return self.failedHandshakes >= self.maxFailedHandshakes

    # -- inbound -------------------------------------------------------------------------------

    def frameReceived(self, raw: bytes) -> None:
        """One binary websocket message from the rendezvous."""
        if self._lost:
            return
        event = decodeFrame(raw, noise=True)
        if isinstance(event, Data):  # nearly every frame: tested first
            self._dataReceived(event)
        elif isinstance(event, Handshake):
            self._handshakeReceived(event)
        elif isinstance(event, Reset):
            # The reason is unauthenticated text: never logged.
            self._pending.pop(event.streamId, None)
            stream = self._streams.get(event.streamId)
            if stream is not None:
                self._endStream(stream, "reset by the harness", reset=False)
        elif isinstance(event, Ignored):
            pass
        else:
            assert isinstance(event, Invalid)
            log.warn("invalid Noise relay frame dropped: {reason}", reason=event.reason)

    def _reset(self, streamId: str) -> None:
        self.resetsSent += 1
        self._send(encodeReset(streamId, noise.RESET_REASON))

    def _chargeFailure(self) -> bool:
        """Count one failed handshake; ``True`` (and the websocket is ended) at the limit."""
        self.failedHandshakes += 1
        if self.failedHandshakes >= self.maxFailedHandshakes:
            log.warn(
                "closing the Noise relay after {count} failed handshakes",
                count=self.failedHandshakes,
            )
            self.connectionLost()
            self._onExhausted()
            return True
        return False

    def _refuse(self, streamId: str, *, failed: bool, why: str = "", **fields: object) -> None:
        """Reset a stream id that gets no stream; a ``failed`` handshake counts to the limit."""
        if why:
            log.warn(why, **fields)
        self._reset(streamId)
        if failed:
            self._chargeFailure()

    def _atStreamLimit(self, streamId: str) -> bool:
        """Refuse one more stream while ``maxActiveStreams`` are open (not a failed handshake)."""
        if len(self._streams) < self.maxActiveStreams:
            return False
        self._refuse(streamId, failed=False, why="Noise relay has too many active streams")
        return True

    def _handshakeReceived(self, event: Handshake) -> None:
        streamId = event.streamId
        if streamId in self._streams:
            self._refuse(streamId, failed=False)
            return
        if self._pending.pop(streamId, None) is not None:
            self._refuse(streamId, failed=True)
            return
        if self._atStreamLimit(streamId):
            return
        if len(self._inFlight) >= self.maxPendingValidations:
            why = "Noise relay has too many pending harness key validations"
            self._refuse(streamId, failed=False, why=why)
            return
        pro = noise.prologue(self._environmentId, self._registrationId, streamId)
        try:
            pending = noise.PendingResponderHandshake(self._identity, pro, event.payload)
        except noise.NoiseError as e:
            why = "failed to read Noise relay handshake request: {error}"
            self._refuse(streamId, failed=True, why=why, error=str(e))
            return
        authorization = authorizationOf(pending.payload)
        if authorization is None:
            self._refuse(streamId, failed=True)
            return
        validationId = self._nextValidationId
        self._nextValidationId += 1
        self._pending[streamId] = PendingHandshake(validationId, pending)
        self._validate(streamId, validationId, pending.initiatorPublicKey, authorization)

    def _validate(
        self, streamId: str, validationId: int, key: noise.NoisePublicKey, authorization: str
    ) -> None:
        try:
            d = self._validator(key, authorization, streamId)
        except Exception:
            d = failedValidation(Failure())
        self._inFlight[validationId] = d
        timer: IDelayedCall = self._clock.callLater(self.validationTimeout, d.cancel)

        def done(result: bool | Failure) -> None:
            if timer.active():
                timer.cancel()
            self._inFlight.pop(validationId, None)
            ok = result is True
            if isinstance(result, Failure):
                # Never log the failure's text: it may hold the authorization.
                log.debug("Noise harness key validation failed")
            self._validated(streamId, validationId, ok)

        d.addBoth(done)

    def _validated(self, streamId: str, validationId: int, ok: bool) -> None:
        if self._lost:
            return
        pending = self._pending.get(streamId)
        if pending is None or pending.validationId != validationId:
            return  # stale: the stream id was cancelled or reused meanwhile
        del self._pending[streamId]
        if not ok:
            self._refuse(streamId, failed=True, why="Noise harness authorization failed")
            return
        if self._atStreamLimit(streamId):
            return
        try:
            transport, message2 = pending.handshake.complete()
        except noise.NoiseError as e:
            why = "failed to complete Noise relay handshake: {error}"
            self._refuse(streamId, failed=True, why=why, error=str(e))
            return
        self._send(encodeHandshake(streamId, message2))
        processor = self._factory.buildProcessor(None)
        stream = NoiseStream(streamId, processor, noise.NoiseChannel(transport))
        self._streams[streamId] = stream
        log.info("Noise relay stream {streamId!r} opened", streamId=streamId)
        sink = NoiseSink(self, stream)
        self._opened(stream, lambda: processor.makeConnection(sink))

    def _dataReceived(self, event: Data) -> None:
        stream = self._streams.get(event.streamId)
        if stream is None:
            cancelled = self._pending.pop(event.streamId, None) is not None
            self._refuse(event.streamId, failed=cancelled)
            return
        try:
            messages = stream.channel.receiveRecord(event.seq, event.payload)
        except noise.NoiseError as e:
            self._recordFailed(stream, " failed:", e, "record error")
            return
        for message in messages:
            if not stream.live:
                return
            if not isJsonObject(message):
                # 0.171 decodes every message as JSON-RPC before queueing it; a failure ends
                # the stream rather than reaching the session.
                log.warn(
                    "Noise relay stream {streamId!r}: message is not a JSON-RPC object",
                    streamId=stream.streamId,
                )
                self._endStream(stream, "undecodable message", reset=True)
                return
            self._deliver(stream, stream.processor, message)

    def _deliver(self, stream: NoiseStream, processor: IJsonRpcProcessor, message: bytes) -> None:
        self._call(stream, lambda: processor.messageReceived(message))

    # -- outbound ------------------------------------------------------------------------------

    def _sendMessage(self, stream: NoiseStream, payload: bytes) -> None:
        if not stream.live or self._lost:
            return
        try:
            records = stream.channel.encodeMessage(payload)
        except noise.NoiseError as e:
            self._recordFailed(stream, ": cannot send:", e, "send error")
            return
        for seq, ciphertext in records:
            self._send(encodeData(stream.streamId, seq, ciphertext))

    def _recordFailed(self, stream: NoiseStream, what: str, error: Exception, why: str) -> None:
        """The record layer failed (a bad record in, or none can be sealed): reset the stream."""
        log.warn(
            "Noise relay stream {streamId!r}{what} {error}",
            streamId=stream.streamId,
            what=what,
            error=str(error),
        )
        self._endStream(stream, why, reset=True)

    # -- lifecycle -----------------------------------------------------------------------------

    def connectionLost(self) -> None:
        """The websocket is gone: every session detaches, pending handshakes are dropped."""
        if self._lost:
            return
        self._lost = True
        self._pending.clear()
        for d in list(self._inFlight.values()):
            d.cancel()
        for stream in list(self._streams.values()):
            self._endStream(stream, "websocket lost", reset=False)

    def _endStream(self, stream: NoiseStream, why: str, *, reset: bool) -> None:
        if not self._retire(stream):
            return
        if reset and not self._lost:
            self._reset(stream.streamId)
        log.debug("Noise relay stream {streamId!r} ended: {why}", streamId=stream.streamId, why=why)
        if not stream.delivering:
            self._drained(stream)
