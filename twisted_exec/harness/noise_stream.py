"""Sans-IO harness side of one Noise relay stream (Codex 0.171 ``noise_relay/harness.rs``).

The harness picks a UUIDv4 stream id, sends ``resume{next_seq:0}`` then ``handshake{msg1}``
(message 1 carries the registry's ``harness_key_authorization`` and is bound by the prologue to
the environment, the executor registration and the stream), and waits for ``handshake{msg2}``
from the executor key it pinned from ``/connect``. During the handshake, frames of other
streams and control frames are ignored; a reset, data or an invalid frame on our stream fails
it. Afterwards JSON-RPC messages travel as Noise records in data frames; a reset ends the
stream and a second handshake is an error.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from twisted_exec.wire import frames, noise

#: What a harness reports when the executor or rendezvous resets the stream. The reset's own
#: reason is unauthenticated text and is not shown (as 0.171's harness).
RESET_DISCONNECT_REASON = "Noise relay stream reset"


class NoiseStreamError(Exception):
    """The stream failed; ``str()`` is fit for a log line."""


@dataclass(frozen=True)
class ConnectBundle:
    """What ``/connect`` returned: where to go and whom to expect; ``repr`` hides secrets."""

    environmentId: str
    url: str = field(repr=False)
    executorRegistrationId: str
    executorPublicKey: noise.NoisePublicKey = field(repr=False)
    harnessKeyAuthorization: str = field(repr=False)


class NoiseHarnessStream:
    """One stream: opening frames out, handshake in, then messages <-> data frames."""

    def __init__(
        self,
        identity: noise.NoiseIdentity,
        bundle: ConnectBundle,
        streamId: str | None = None,
    ) -> None:
        self.streamId = streamId if streamId is not None else str(uuid.uuid4())
        pro = noise.prologue(bundle.environmentId, bundle.executorRegistrationId, self.streamId)
        self._handshake: noise.InitiatorHandshake | None = noise.InitiatorHandshake(
            identity,
            bundle.executorPublicKey,
            pro,
            bundle.harnessKeyAuthorization.encode("utf-8"),
        )
        self._message1 = self._handshake.message1
        self._channel: noise.NoiseChannel | None = None
        self.failed: str | None = None

    @property
    def established(self) -> bool:
        return self._channel is not None

    def openingFrames(self) -> list[bytes]:
        """``resume{0}`` then ``handshake{msg1}``: send both, in order."""
        return [
            frames.encodeResume(self.streamId, 0),
            frames.encodeHandshake(self.streamId, self._message1),
        ]

    def _fail(self, reason: str) -> NoiseStreamError:
        self.failed = reason
        self._handshake = None
        self._channel = None
        return NoiseStreamError(reason)

    def frameReceived(self, raw: bytes) -> list[bytes]:
        """The JSON-RPC messages ``raw`` completed (none for frames of other streams)."""
        if self.failed is not None:
            return []
        event = frames.decodeFrame(raw, noise=True)
        if isinstance(event, frames.Invalid):
            if self._channel is None:
                raise self._fail(f"invalid Noise relay frame during handshake: {event.reason}")
            return []
        if event.streamId != self.streamId:
            return []
        if isinstance(event, frames.Ignored):
            return []
        if isinstance(event, frames.Reset):
            raise self._fail(RESET_DISCONNECT_REASON)
        if self._channel is None:
            if not isinstance(event, frames.Handshake):
                raise self._fail("Noise relay received data before handshake completion")
            assert self._handshake is not None
            try:
                self._channel = noise.NoiseChannel(self._handshake.finish(event.payload))
            except noise.NoiseError as e:
                raise self._fail(f"Noise relay handshake failed: {e}") from None
            self._handshake = None
            return []
        if isinstance(event, frames.Handshake):
            raise self._fail("unexpected Noise relay handshake after completion")
        assert isinstance(event, frames.Data)
        try:
            return self._channel.receiveRecord(event.seq, event.payload)
        except noise.NoiseError as e:
            raise self._fail(str(e)) from None

    def encodeMessage(self, payload: bytes) -> list[bytes]:
        """The data frames carrying one JSON-RPC message (only once established)."""
        if self._channel is None:
            raise NoiseStreamError("Noise relay stream is not established")
        try:
            records = self._channel.encodeMessage(payload)
        except noise.NoiseError as e:
            raise self._fail(str(e)) from None
        return [frames.encodeData(self.streamId, seq, ct) for seq, ct in records]
