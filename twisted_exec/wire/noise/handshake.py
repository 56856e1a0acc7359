"""The Noise handshake state machine, token by token, for Codex's ``hybridIK`` pattern.

Codex 0.171 runs clatter's ``HybridHandshake<X25519, MlKem768, MlKem768, AesGcm, Sha256>`` with
``noise_hybrid_ik`` (``noise_channel.rs``). As the 0.171 binary speaks it::

    <- s                                   (pre-message: responder X25519 and ML-KEM keys)
    ...
    -> skem, e, es, s, ss                  (harness -> executor)
    <- ekem, skem, e, ee, se               (executor -> harness)

Message 2's order is the binary's, checked against it (a harness built on the order in the
public clatter 2.1.0-rc.1 source, ``e, ee, se, ekem, skem``, fails to decrypt the executor's
reply; go-clatter has the order above). The byte sizes are the same either way.

Protocol name ``Noise_hybridIK_25519+MLKEM768_AESGCM_SHA256`` (clatter ``build_name``: the DH
names itself "25519"; one KEM name because the ephemeral and static KEMs are the same).

Hybrid token semantics (clatter ``handshakestate/hybrid.rs``):

- ``e``: the ephemeral X25519 key then the ephemeral ML-KEM key, in clear, MixHash each.
- ``s``: EncryptAndHash of the static X25519 key, then of the static ML-KEM key.
- ``ee``/``es``/``se``/``ss``: X25519, then MixKey.
- ``ekem``: encapsulate to the peer's ephemeral ML-KEM key; the ciphertext in clear;
  MixHash(ct) then MixKey(shared secret).
- ``skem``: encapsulate to the peer's static ML-KEM key; EncryptAndHash(ct) (clear while no
  key exists, as in message 1); then MixKeyAndHash(shared secret).

The same engine runs the classic (DH-only) ``IK`` pattern, so the published Noise test vectors
check the symmetric state, the DH tokens, the payload encryption and the split.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from twisted_exec.wire.noise.errors import NoiseError
from twisted_exec.wire.noise.keys import (
    MLKEM768_CIPHERTEXT_BYTES,
    MLKEM768_PUBLIC_KEY_BYTES,
    X25519_KEY_BYTES,
    NoiseIdentity,
    NoisePublicKey,
)
from twisted_exec.wire.noise.primitives import TAGLEN
from twisted_exec.wire.noise.symmetric import SymmetricState
from twisted_exec.wire.noise.transport import MAX_NOISE_MESSAGE_LEN, NoiseTransport

PROLOGUE_DOMAIN = b"codex-exec-server-relay-noise/v1"
# Width of each prologue part's big-endian length prefix: u64, as the 0.171 binary checks it
# (older source used u32; see docs/decisions.md).
PROLOGUE_LENGTH_PREFIX = struct.Struct(">Q")


def prologue(environmentId: str, executorRegistrationId: str, streamId: str) -> bytes:
    """Bind a handshake to one environment registration and one relay stream.

    Each part (domain, environment id, executor registration id, stream id) is written as a
    big-endian length then its UTF-8 bytes, so distinct tuples never give the same prologue.
    """
    out = bytearray()
    for part in (
        PROLOGUE_DOMAIN,
        environmentId.encode("utf-8"),
        executorRegistrationId.encode("utf-8"),
        streamId.encode("utf-8"),
    ):
        out += PROLOGUE_LENGTH_PREFIX.pack(len(part))
        out += part
    return bytes(out)


@dataclass(frozen=True)
class HandshakePattern:
    """An interactive pattern whose only pre-message is the responder's static key."""

    name: str
    hybrid: bool
    messages: tuple[tuple[str, ...], ...]

    @property
    def protocolName(self) -> bytes:
        dh = "25519+MLKEM768" if self.hybrid else "25519"
        return f"Noise_{self.name}_{dh}_AESGCM_SHA256".encode("ascii")


HYBRID_IK = HandshakePattern(
    "hybridIK",
    hybrid=True,
    messages=(("skem", "e", "es", "s", "ss"), ("ekem", "skem", "e", "ee", "se")),
)
CLASSIC_IK = HandshakePattern(
    "IK", hybrid=False, messages=(("e", "es", "s", "ss"), ("e", "ee", "se"))
)


def _dh(private: x25519.X25519PrivateKey | None, public: bytes | None) -> bytes:
    if private is None or public is None:
        raise NoiseError("Noise handshake is missing DH key material")
    try:
        return private.exchange(x25519.X25519PublicKey.from_public_bytes(public))
    except ValueError:
        # cryptography refuses an all-zero result (a low-order peer point).
        raise NoiseError("Noise X25519 exchange failed") from None


def _encapsulate(public: bytes | None) -> tuple[bytes, bytes]:
    if public is None:
        raise NoiseError("Noise handshake is missing KEM key material")
    try:
        sharedSecret, ciphertext = mlkem.MLKEM768PublicKey.from_public_bytes(public).encapsulate()
    except ValueError:
        raise NoiseError("Noise ML-KEM-768 public key is invalid") from None
    return ciphertext, sharedSecret


def _decapsulate(private: mlkem.MLKEM768PrivateKey | None, ciphertext: bytes) -> bytes:
    if private is None:
        raise NoiseError("Noise handshake is missing KEM key material")
    try:
        return private.decapsulate(ciphertext)
    except ValueError:
        raise NoiseError("Noise ML-KEM-768 ciphertext is invalid") from None


class HandshakeState:
    """One side of a handshake. Sans-IO: bytes in, bytes out; every failure is fatal.

    ``ephemeralDh`` / ``ephemeralKem`` exist for test vectors; normally they are generated.
    """

    def __init__(
        self,
        pattern: HandshakePattern,
        initiator: bool,
        prologueBytes: bytes,
        staticDh: x25519.X25519PrivateKey,
        staticKem: mlkem.MLKEM768PrivateKey | None = None,
        remoteStaticDh: bytes | None = None,
        remoteStaticKem: bytes | None = None,
        ephemeralDh: x25519.X25519PrivateKey | None = None,
        ephemeralKem: mlkem.MLKEM768PrivateKey | None = None,
        staticPublic: NoisePublicKey | None = None,
    ) -> None:
        if pattern.hybrid and staticKem is None:
            raise NoiseError("a hybrid pattern needs a static KEM key")
        self.pattern = pattern
        self.initiator = initiator
        self._s = staticDh
        self._sKem = staticKem
        self._e = ephemeralDh
        self._eKem = ephemeralKem
        self.remoteStaticDh = remoteStaticDh
        self.remoteStaticKem = remoteStaticKem
        self._re: bytes | None = None
        self._reKem: bytes | None = None
        self._index = 0
        self._failed = False
        # Our public keys, computed once (deriving an ML-KEM public key is not free).
        if staticPublic is not None:
            self._sPub, self._sKemPub = staticPublic.x25519, staticPublic.mlkem768
        else:
            self._sPub = staticDh.public_key().public_bytes_raw()
            self._sKemPub = staticKem.public_key().public_bytes_raw() if staticKem else b""
        self._sym = SymmetricState(pattern.protocolName)
        self._sym.mixHash(prologueBytes)
        # Pre-message "<- s": the responder's static key(s), both parts when hybrid.
        if initiator:
            responderDh, responderKem = remoteStaticDh, remoteStaticKem
        else:
            responderDh = self._sPub
            responderKem = self._sKemPub if staticKem else None
        if responderDh is None or (pattern.hybrid and responderKem is None):
            raise NoiseError("Noise IK needs the responder's static key")
        self._sym.mixHash(responderDh)
        if pattern.hybrid:
            assert responderKem is not None
            self._sym.mixHash(responderKem)

    @property
    def finished(self) -> bool:
        return self._index == len(self.pattern.messages)

    @property
    def handshakeHash(self) -> bytes:
        return self._sym.h

    def _ourTurnToWrite(self) -> bool:
        return (self._index % 2 == 0) == self.initiator

    def messageOverhead(self) -> int:
        """Bytes of the next message beyond its payload (clatter ``get_next_message_overhead``)."""
        hasKey = self._sym.hasKey
        overhead = 0
        hybrid = self.pattern.hybrid
        for token in self.pattern.messages[self._index]:
            if token == "e":
                overhead += X25519_KEY_BYTES + (MLKEM768_PUBLIC_KEY_BYTES if hybrid else 0)
            elif token == "s":
                overhead += X25519_KEY_BYTES + (MLKEM768_PUBLIC_KEY_BYTES if hybrid else 0)
                if hasKey:
                    overhead += TAGLEN * (2 if hybrid else 1)
            elif token == "ekem":
                overhead += MLKEM768_CIPHERTEXT_BYTES
                hasKey = True
            elif token == "skem":
                overhead += MLKEM768_CIPHERTEXT_BYTES + (TAGLEN if hasKey else 0)
                hasKey = True
            else:
                hasKey = True
        return overhead + (TAGLEN if hasKey else 0)

    def _dhToken(self, token: str) -> bytes:
        if token == "ee":
            return _dh(self._e, self._re)
        if token == "ss":
            return _dh(self._s, self.remoteStaticDh)
        # "es": initiator's ephemeral with responder's static; "se" the other way round.
        if (token == "es") == self.initiator:
            return _dh(self._e, self.remoteStaticDh)
        return _dh(self._s, self._re)

    def _checkState(self, writing: bool) -> None:
        if self._failed:
            raise NoiseError("Noise handshake already failed")
        if self.finished:
            raise NoiseError("Noise handshake already finished")
        if self._ourTurnToWrite() != writing:
            raise NoiseError("Noise handshake message out of turn")

    def writeMessage(self, payload: bytes) -> bytes:
        self._checkState(writing=True)
        if len(payload) + self.messageOverhead() > MAX_NOISE_MESSAGE_LEN:
            raise NoiseError("Noise handshake payload is too large")
        try:
            out = self._write(payload)
        except BaseException:
            self._failed = True
            raise
        self._index += 1
        return out

    def _write(self, payload: bytes) -> bytes:
        sym = self._sym
        hybrid = self.pattern.hybrid
        out = bytearray()
        for token in self.pattern.messages[self._index]:
            if token == "e":
                if self._e is None:
                    self._e = x25519.X25519PrivateKey.generate()
                ePub = self._e.public_key().public_bytes_raw()
                sym.mixHash(ePub)
                out += ePub
                if hybrid:
                    if self._eKem is None:
                        self._eKem = mlkem.MLKEM768PrivateKey.generate()
                    eKemPub = self._eKem.public_key().public_bytes_raw()
                    sym.mixHash(eKemPub)
                    out += eKemPub
            elif token == "s":
                out += sym.encryptAndHash(self._sPub)
                if hybrid:
                    out += sym.encryptAndHash(self._sKemPub)
            elif token == "ekem":
                ciphertext, sharedSecret = _encapsulate(self._reKem)
                sym.mixHash(ciphertext)
                sym.mixKey(sharedSecret)
                out += ciphertext
            elif token == "skem":
                ciphertext, sharedSecret = _encapsulate(self.remoteStaticKem)
                out += sym.encryptAndHash(ciphertext)
                sym.mixKeyAndHash(sharedSecret)
            else:
                sym.mixKey(self._dhToken(token))
        out += sym.encryptAndHash(payload)
        return bytes(out)

    def readMessage(self, message: bytes) -> bytes:
        """The payload of the peer's next message; :class:`NoiseError` if it is not valid."""
        self._checkState(writing=False)
        if len(message) > MAX_NOISE_MESSAGE_LEN:
            raise NoiseError("Noise handshake message is too large")
        if len(message) < self.messageOverhead():
            raise NoiseError("Noise handshake message is too short")
        try:
            payload = self._read(memoryview(message))
        except BaseException:
            self._failed = True
            raise
        self._index += 1
        return payload

    def _read(self, message: memoryview) -> bytes:
        sym = self._sym
        hybrid = self.pattern.hybrid
        cursor = 0

        def take(size: int) -> bytes:
            nonlocal cursor
            chunk = bytes(message[cursor : cursor + size])
            cursor += size
            return chunk

        for token in self.pattern.messages[self._index]:
            if token == "e":
                self._re = take(X25519_KEY_BYTES)
                sym.mixHash(self._re)
                if hybrid:
                    self._reKem = take(MLKEM768_PUBLIC_KEY_BYTES)
                    sym.mixHash(self._reKem)
            elif token == "s":
                tag = TAGLEN if sym.hasKey else 0
                self.remoteStaticDh = sym.decryptAndHash(take(X25519_KEY_BYTES + tag))
                if hybrid:
                    self.remoteStaticKem = sym.decryptAndHash(take(MLKEM768_PUBLIC_KEY_BYTES + tag))
            elif token == "ekem":
                ciphertext = take(MLKEM768_CIPHERTEXT_BYTES)
                sym.mixHash(ciphertext)
                sym.mixKey(_decapsulate(self._eKem, ciphertext))
            elif token == "skem":
                tag = TAGLEN if sym.hasKey else 0
                ciphertext = sym.decryptAndHash(take(MLKEM768_CIPHERTEXT_BYTES + tag))
                sym.mixKeyAndHash(_decapsulate(self._sKem, ciphertext))
            else:
                sym.mixKey(self._dhToken(token))
        return sym.decryptAndHash(bytes(message[cursor:]))

    def split(self) -> NoiseTransport:
        """The transport once both messages are done: k1 sends initiator -> responder."""
        if not self.finished or self._failed:
            raise NoiseError("Noise handshake is not finished")
        toResponder, toInitiator = self._sym.split()
        if self.initiator:
            return NoiseTransport(send=toResponder, receive=toInitiator)
        return NoiseTransport(send=toInitiator, receive=toResponder)


class InitiatorHandshake:
    """Harness side: message 1 out at construction, message 2 in via :meth:`finish`.

    The executor key is pinned before any byte is sent; message 1's payload carries the
    registry's ``harness_key_authorization``.
    """

    def __init__(
        self,
        identity: NoiseIdentity,
        responderKey: NoisePublicKey,
        prologueBytes: bytes,
        payload: bytes,
    ) -> None:
        self._state = HandshakeState(
            HYBRID_IK,
            initiator=True,
            prologueBytes=prologueBytes,
            staticDh=identity.dh,
            staticKem=identity.kem,
            remoteStaticDh=responderKey.x25519,
            remoteStaticKem=responderKey.mlkem768,
            staticPublic=identity.publicKey,
        )
        self.message1 = self._state.writeMessage(payload)

    def finish(self, message2: bytes) -> NoiseTransport:
        """Read the executor's reply; its payload must be empty (as Codex's ``finish``)."""
        if self._state.readMessage(message2):
            raise NoiseError("Noise handshake response payload must be empty")
        return self._state.split()


class PendingResponderHandshake:
    """Executor side after message 1: the harness key is known and authenticated, not authorized.

    The relay validates ``initiatorPublicKey`` and ``payload`` with the registry, then calls
    :meth:`complete`; until then no transport exists.
    """

    def __init__(self, identity: NoiseIdentity, prologueBytes: bytes, message1: bytes) -> None:
        self._state = HandshakeState(
            HYBRID_IK,
            initiator=False,
            prologueBytes=prologueBytes,
            staticDh=identity.dh,
            staticKem=identity.kem,
            staticPublic=identity.publicKey,
        )
        self.payload = self._state.readMessage(message1)
        assert self._state.remoteStaticDh is not None
        assert self._state.remoteStaticKem is not None
        self.initiatorPublicKey = NoisePublicKey(
            self._state.remoteStaticDh, self._state.remoteStaticKem
        )

    def complete(self) -> tuple[NoiseTransport, bytes]:
        """(transport, message 2 with an empty payload)."""
        message2 = self._state.writeMessage(b"")
        return self._state.split(), message2
