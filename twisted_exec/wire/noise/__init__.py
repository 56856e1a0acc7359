"""Noise_hybridIK_25519+MLKEM768_AESGCM_SHA256 exactly as Codex 0.171 speaks it, sans-IO.

Every primitive comes from ``cryptography`` (X25519, ML-KEM-768, AES-256-GCM, SHA-256,
HKDF); the state machine, framing and reorder window are ours. See ``handshake`` for the
pattern and ``docs/decisions.md`` for what was checked against the 0.171 binary.
"""

from twisted_exec.wire.noise.channel import NoiseChannel
from twisted_exec.wire.noise.errors import NoiseError, NoiseKeyError
from twisted_exec.wire.noise.framing import (
    MAX_MESSAGE_LEN,
    RECORD_PLAINTEXT_LEN,
    MessageDecoder,
    frameMessage,
    splitRecords,
)
from twisted_exec.wire.noise.handshake import (
    CLASSIC_IK,
    HYBRID_IK,
    PROLOGUE_DOMAIN,
    HandshakePattern,
    HandshakeState,
    InitiatorHandshake,
    PendingResponderHandshake,
    prologue,
)
from twisted_exec.wire.noise.keys import SUITE, NoiseIdentity, NoisePublicKey
from twisted_exec.wire.noise.reorder import ReorderWindow
from twisted_exec.wire.noise.transport import MAX_NOISE_MESSAGE_LEN, NoiseTransport

SECURITY_PROFILE = "noise_hybrid_ik_v1"
RESET_REASON = "noise_relay_protocol_error"
MAX_AUTHORIZATION_BYTES = 4096

__all__ = [
    "CLASSIC_IK",
    "HYBRID_IK",
    "MAX_AUTHORIZATION_BYTES",
    "MAX_MESSAGE_LEN",
    "MAX_NOISE_MESSAGE_LEN",
    "PROLOGUE_DOMAIN",
    "RECORD_PLAINTEXT_LEN",
    "RESET_REASON",
    "SECURITY_PROFILE",
    "SUITE",
    "HandshakePattern",
    "HandshakeState",
    "InitiatorHandshake",
    "MessageDecoder",
    "NoiseChannel",
    "NoiseError",
    "NoiseIdentity",
    "NoiseKeyError",
    "NoisePublicKey",
    "NoiseTransport",
    "PendingResponderHandshake",
    "ReorderWindow",
    "frameMessage",
    "prologue",
    "splitRecords",
]
