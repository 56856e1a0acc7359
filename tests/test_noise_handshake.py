"""Noise core: the published IK vector through our engine, HKDF, hybridIK round trips, tampering.

The hybrid handshake cannot have a fixed vector (ML-KEM encapsulation draws its own randomness
inside ``cryptography``); its interoperability is shown against the real 0.171 executor in
``tests/test_noise_reference.py``. Here the classic IK vector (cacophony) checks everything the
two share: SymmetricState, the DH tokens, prologue, payload AEAD, split and transport nonces.
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as chmac
from cryptography.hazmat.primitives.asymmetric import x25519
from twisted.trial.unittest import TestCase

from twisted_exec.wire.noise import (
    CLASSIC_IK,
    HYBRID_IK,
    MAX_NOISE_MESSAGE_LEN,
    HandshakeState,
    InitiatorHandshake,
    NoiseError,
    NoiseIdentity,
    NoiseKeyError,
    NoisePublicKey,
    PendingResponderHandshake,
    prologue,
)
from twisted_exec.wire.noise.primitives import CipherState, hkdf, nonceBytes, sha256
from twisted_exec.wire.noise.symmetric import SymmetricState

# cacophony.txt, protocol Noise_IK_25519_AESGCM_SHA256 (public test vectors of the Noise spec).
IK_VECTOR = {
    "prologue": "4a6f686e2047616c74",
    "init_static": "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1",
    "init_ephemeral": "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a",
    "resp_static": "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893",
    "resp_ephemeral": "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b",
    "init_remote_static": "31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62",
    "handshake_hash": "669c8640d9e42a3cda2f232f78597ceefb01daa6e3df81181ccce6fc6b5026bf",
    "messages": [
        (
            "4c756477696720766f6e204d69736573",
            "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444e417bc55c7a8166c9"
            "93356c1be41ef67818a292426f301556c7f26b21d25ddb097153891a9a956cff47b83e63ad8d701c13"
            "42c209cff1ca5ecd43402762ac249e3bd3a4c0a145fe07cb5dae28ea13a3",
        ),
        (
            "4d757272617920526f746862617264",
            "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843af2ccf9972e22afc67"
            "aeafcd25162f7f98c363b7762e3e4cb7d272e39f27a5",
        ),
        ("462e20412e20486179656b", "66acfc92e3197de166809e6d4d5d003dcc819a84bc3522ca53c9d9"),
        ("4361726c204d656e676572", "71f89aa6533a6de70b0826864dd75f60806ee40170c16290189eb3"),
        (
            "4a65616e2d426170746973746520536179",
            "4795a3423550c8bf00386bd496a3e2c76c10669d2a75ab8f79b5094c5412a25705",
        ),
        (
            "457567656e2042f6686d20766f6e2042617765726b",
            "aa0bb39097555c918e40be82abc2b909eb79d9eb87adb07e268fc37323a6cf904fd01fb391",
        ),
    ],
}


def _key(hexKey: str) -> x25519.X25519PrivateKey:
    return x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(hexKey))


def _hmac(key: bytes, data: bytes) -> bytes:
    mac = chmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


class ClassicIKVectorTests(TestCase):
    def _pair(self) -> tuple[HandshakeState, HandshakeState]:
        v = IK_VECTOR
        pro = bytes.fromhex(str(v["prologue"]))
        initiator = HandshakeState(
            CLASSIC_IK,
            True,
            pro,
            _key(str(v["init_static"])),
            remoteStaticDh=bytes.fromhex(str(v["init_remote_static"])),
            ephemeralDh=_key(str(v["init_ephemeral"])),
        )
        responder = HandshakeState(
            CLASSIC_IK,
            False,
            pro,
            _key(str(v["resp_static"])),
            ephemeralDh=_key(str(v["resp_ephemeral"])),
        )
        return initiator, responder

    def test_vector(self) -> None:
        """Every byte of the cacophony IK vector, both directions, through the transport."""
        initiator, responder = self._pair()
        messages = [(bytes.fromhex(p), bytes.fromhex(c)) for p, c in IK_VECTOR["messages"]]
        (p1, c1), (p2, c2) = messages[:2]
        self.assertEqual(initiator.writeMessage(p1), c1)
        self.assertEqual(responder.readMessage(c1), p1)
        self.assertEqual(responder.writeMessage(p2), c2)
        self.assertEqual(initiator.readMessage(c2), p2)
        self.assertEqual(initiator.handshakeHash.hex(), IK_VECTOR["handshake_hash"])
        self.assertEqual(responder.handshakeHash, initiator.handshakeHash)
        sides = (initiator.split(), responder.split())
        for i, (payload, ciphertext) in enumerate(messages[2:]):
            sender, receiver = sides[i % 2], sides[1 - i % 2]
            self.assertEqual(sender.encrypt(payload), ciphertext)
            self.assertEqual(receiver.decrypt(ciphertext), payload)

    def test_wrongPrologueFails(self) -> None:
        initiator, _ = self._pair()
        responder = HandshakeState(CLASSIC_IK, False, b"other", _key(str(IK_VECTOR["resp_static"])))
        p1 = bytes.fromhex(IK_VECTOR["messages"][0][0])
        self.assertRaises(NoiseError, responder.readMessage, initiator.writeMessage(p1))


class PrimitiveTests(TestCase):
    def test_hkdfIsNoiseHkdf(self) -> None:
        """Noise's HKDF written out with HMAC (spec 4.3) equals what we derive."""
        ck, ikm = b"\x01" * 32, b"input key material"
        temp = _hmac(ck, ikm)
        out1 = _hmac(temp, b"\x01")
        out2 = _hmac(temp, out1 + b"\x02")
        out3 = _hmac(temp, out2 + b"\x03")
        self.assertEqual(hkdf(ck, ikm, 2), (out1, out2))
        self.assertEqual(hkdf(ck, ikm, 3), (out1, out2, out3))
        self.assertEqual(len(hkdf(ck, b"", 2)), 2)
        self.assertRaises(ValueError, hkdf, ck, ikm, 4)

    def test_nonce(self) -> None:
        """4 zero bytes then the counter big-endian (not little-endian as one Go doc says)."""
        self.assertEqual(nonceBytes(1), b"\x00" * 11 + b"\x01")
        self.assertEqual(nonceBytes(0x0102030405060708), b"\x00" * 4 + bytes(range(1, 9)))

    def test_nonceExhaustion(self) -> None:
        cipher = CipherState(b"k" * 32, n=2**64 - 2)
        cipher.encryptWithAd(b"", b"x")
        self.assertRaises(NoiseError, cipher.encryptWithAd, b"", b"x")

    def test_mixKeyAndHash(self) -> None:
        state = SymmetricState(b"Noise_hybridIK_25519+MLKEM768_AESGCM_SHA256")
        self.assertEqual(state.h, sha256(b"Noise_hybridIK_25519+MLKEM768_AESGCM_SHA256"))
        ck0, h0 = state.ck, state.h
        state.mixKeyAndHash(b"secret")
        ck, tempH, _ = hkdf(ck0, b"secret", 3)
        self.assertEqual(state.ck, ck)
        self.assertEqual(state.h, sha256(h0 + tempH))
        self.assertTrue(state.hasKey)

    def test_shortNameIsPadded(self) -> None:
        self.assertEqual(SymmetricState(b"Noise_NN").h, b"Noise_NN" + b"\x00" * 24)


class PrologueTests(TestCase):
    def test_bytes(self) -> None:
        """u64 big-endian lengths (the 0.171 binary refuses u32, checked on it)."""
        domain = b"codex-exec-server-relay-noise/v1"
        expected = b"".join(
            struct.pack(">Q", len(part)) + part for part in (domain, b"env", b"reg-1", b"s\xc3\xa9")
        )
        self.assertEqual(prologue("env", "reg-1", "s\u00e9"), expected)
        self.assertTrue(prologue("a", "b", "c").startswith(b"\x00" * 7 + b"\x20codex-exec"))

    def test_unambiguous(self) -> None:
        self.assertNotEqual(prologue("ab", "c", "d"), prologue("a", "bc", "d"))


class HybridIKTests(TestCase):
    def setUp(self) -> None:
        self.harness = NoiseIdentity.generate()
        self.executor = NoiseIdentity.generate()
        self.prologue = prologue("env-1", "reg-1", "stream-1")

    def _handshake(
        self, payload: bytes = b"authorization"
    ) -> tuple[InitiatorHandshake, PendingResponderHandshake, bytes]:
        initiator = InitiatorHandshake(
            self.harness, self.executor.publicKey, self.prologue, payload
        )
        pending = PendingResponderHandshake(self.executor, self.prologue, initiator.message1)
        return initiator, pending, initiator.message1

    def test_protocolName(self) -> None:
        self.assertEqual(HYBRID_IK.protocolName, b"Noise_hybridIK_25519+MLKEM768_AESGCM_SHA256")
        self.assertEqual(
            HYBRID_IK.messages, (("skem", "e", "es", "s", "ss"), ("ekem", "skem", "e", "ee", "se"))
        )

    def test_roundTrip(self) -> None:
        initiator, pending, message1 = self._handshake()
        self.assertEqual(len(message1), 3568 + len(b"authorization"))
        self.assertEqual(pending.payload, b"authorization")
        self.assertEqual(pending.initiatorPublicKey, self.harness.publicKey)
        responderTransport, message2 = pending.complete()
        self.assertEqual(len(message2), 3424)
        initiatorTransport = initiator.finish(message2)
        for _ in range(3):
            ct = initiatorTransport.encrypt(b"ping")
            self.assertEqual(responderTransport.decrypt(ct), b"ping")
            ct = responderTransport.encrypt(b"pong")
            self.assertEqual(initiatorTransport.decrypt(ct), b"pong")

    def test_message1Layout(self) -> None:
        """skem ciphertext (1088) and e (32 + 1184) are in clear; the statics are encrypted."""
        _, _, message1 = self._handshake(b"")
        self.assertEqual(len(message1), 1088 + 32 + 1184 + 48 + 1200 + 16)
        self.assertNotIn(self.harness.publicKey.x25519, message1)
        self.assertNotIn(self.harness.publicKey.mlkem768[:64], message1)

    def test_everyFlippedByteOfMessage1Fails(self) -> None:
        """A sample of single-bit flips across message 1: each makes the responder refuse it."""
        _, _, message1 = self._handshake()
        for index in range(0, len(message1), 97):
            tampered = bytearray(message1)
            tampered[index] ^= 0x01
            with self.assertRaises(NoiseError, msg=f"byte {index}"):
                PendingResponderHandshake(self.executor, self.prologue, bytes(tampered))

    def test_tamperedMessage2Fails(self) -> None:
        """Flips in ekem ct, encrypted skem ct, e, and the final tag: each makes finish() refuse."""
        for index in (0, 1088, 1088 + 1104, 1088 + 1104 + 40, 3423, None):
            initiator, pending, _ = self._handshake()
            _, message2 = pending.complete()
            if index is None:
                initiator.finish(message2)  # the control: untouched, it completes
                continue
            tampered = bytearray(message2)
            tampered[index] ^= 0x80
            self.assertRaises(NoiseError, initiator.finish, bytes(tampered))

    def test_truncatedAndOversizedFail(self) -> None:
        _, _, message1 = self._handshake()
        for bad in (
            b"",
            message1[:100],
            message1[:-1][: 3568 - 1],
            b"\x00" * (MAX_NOISE_MESSAGE_LEN + 1),
        ):
            self.assertRaises(
                NoiseError, PendingResponderHandshake, self.executor, self.prologue, bad
            )

    def test_wrongExecutorKeyFails(self) -> None:
        other = NoiseIdentity.generate()
        initiator = InitiatorHandshake(self.harness, other.publicKey, self.prologue, b"a")
        self.assertRaises(
            NoiseError, PendingResponderHandshake, self.executor, self.prologue, initiator.message1
        )

    def test_otherStreamPrologueFails(self) -> None:
        initiator = InitiatorHandshake(
            self.harness, self.executor.publicKey, prologue("env-1", "reg-1", "stream-2"), b"a"
        )
        self.assertRaises(
            NoiseError, PendingResponderHandshake, self.executor, self.prologue, initiator.message1
        )

    def test_nonEmptyMessage2PayloadRefused(self) -> None:
        initiator = InitiatorHandshake(self.harness, self.executor.publicKey, self.prologue, b"a")
        state = HandshakeState(
            HYBRID_IK, False, self.prologue, self.executor.dh, staticKem=self.executor.kem
        )
        state.readMessage(initiator.message1)
        self.assertRaises(NoiseError, initiator.finish, state.writeMessage(b"extra"))

    def test_replayedMessage2Refused(self) -> None:
        """Message 2 of one handshake does not complete another (fresh ephemerals)."""
        _, pending, _ = self._handshake()
        _, message2 = pending.complete()
        other, _, _ = self._handshake()
        self.assertRaises(NoiseError, other.finish, message2)

    def test_outOfTurnAndReuse(self) -> None:
        initiator, pending, _ = self._handshake()
        _, message2 = pending.complete()
        self.assertRaises(NoiseError, pending.complete)
        initiator.finish(message2)
        self.assertRaises(NoiseError, initiator.finish, message2)

    def test_transportTamperAndReorder(self) -> None:
        initiator, pending, _ = self._handshake()
        responder, message2 = pending.complete()
        sender = initiator.finish(message2)
        sender.encrypt(b"one")
        second = sender.encrypt(b"two")
        self.assertRaises(NoiseError, responder.decrypt, second)  # implicit nonce: order matters
        initiator2, pending2, _ = self._handshake()
        responder2, message2b = pending2.complete()
        sender2 = initiator2.finish(message2b)
        record = bytearray(sender2.encrypt(b"one"))
        record[0] ^= 1
        self.assertRaises(NoiseError, responder2.decrypt, bytes(record))
        self.assertRaises(NoiseError, responder2.decrypt, b"short")
        self.assertRaises(NoiseError, sender2.encrypt, b"x" * (MAX_NOISE_MESSAGE_LEN - 15))

    def test_oversizedPayloadRefusedBeforeSending(self) -> None:
        self.assertRaises(
            NoiseError,
            InitiatorHandshake,
            self.harness,
            self.executor.publicKey,
            self.prologue,
            b"x" * (MAX_NOISE_MESSAGE_LEN - 3568 + 1),
        )


class PublicKeyJsonTests(TestCase):
    def setUp(self) -> None:
        self.key = NoiseIdentity.generate().publicKey

    def test_roundTrip(self) -> None:
        obj = self.key.toJson()
        self.assertEqual(list(obj), ["suite", "x25519_public_key", "mlkem768_public_key"])
        self.assertEqual(obj["suite"], "Noise_hybridIK_X25519+MLKEM768_AESGCM_SHA256")
        self.assertEqual(NoisePublicKey.fromJson(obj), self.key)

    def test_refusals(self) -> None:
        good = self.key.toJson()
        x = good["x25519_public_key"]
        bad: list[object] = [
            None,
            [],
            {**good, "extra": 1},
            {k: v for k, v in good.items() if k != "suite"},
            {**good, "suite": "Noise_IK_25519_AESGCM_SHA256"},
            {**good, "x25519_public_key": x.rstrip("=")},
            {**good, "x25519_public_key": x[:-2] + "B="},
            {**good, "x25519_public_key": "AAAA"},
            {**good, "x25519_public_key": 5},
            {**good, "mlkem768_public_key": x},
            {**good, "x25519_public_key": x[:-1] + "\u00e9"},
        ]
        for obj in bad:
            self.assertRaises(NoiseKeyError, NoisePublicKey.fromJson, obj)

    def test_reprRedacts(self) -> None:
        identity = NoiseIdentity.generate()
        self.assertEqual(repr(identity.publicKey), "NoisePublicKey()")
        self.assertEqual(repr(identity), "NoiseIdentity(<redacted>)")
