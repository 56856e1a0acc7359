"""Noise record layer: framing split/reassembly and the reorder window, with property tests."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from twisted_exec.wire.noise import (
    MAX_MESSAGE_LEN,
    RECORD_PLAINTEXT_LEN,
    InitiatorHandshake,
    MessageDecoder,
    NoiseChannel,
    NoiseError,
    NoiseIdentity,
    PendingResponderHandshake,
    ReorderWindow,
    frameMessage,
    prologue,
    splitRecords,
)
from twisted_exec.wire.noise.framing import messageRecords
from twisted_exec.wire.noise.reorder import MAX_PENDING_BYTES, MAX_PENDING_RECORDS

_HARNESS = NoiseIdentity.generate()
_EXECUTOR = NoiseIdentity.generate()


def channelPair() -> tuple[NoiseChannel, NoiseChannel]:
    """(harness, executor) channels over one fresh handshake."""
    pro = prologue("e", "r", "s")
    initiator = InitiatorHandshake(_HARNESS, _EXECUTOR.publicKey, pro, b"auth")
    responder, message2 = PendingResponderHandshake(_EXECUTOR, pro, initiator.message1).complete()
    return NoiseChannel(initiator.finish(message2)), NoiseChannel(responder)


messages = st.lists(st.binary(min_size=1, max_size=3 * RECORD_PLAINTEXT_LEN), max_size=6)


class FramingTests(TestCase):
    def test_prefix(self) -> None:
        self.assertEqual(frameMessage(b"{}"), b"\x00\x00\x00\x02{}")
        self.assertRaises(NoiseError, frameMessage, b"")

    def test_recordSizes(self) -> None:
        records = splitRecords(frameMessage(b"x" * (2 * RECORD_PLAINTEXT_LEN)))
        self.assertEqual([len(r) for r in records], [61440, 61440, 4])

    def test_invalidLengthPrefix(self) -> None:
        self.assertRaises(NoiseError, MessageDecoder().push, b"\x00\x00\x00\x00")
        too_long = (MAX_MESSAGE_LEN + 1).to_bytes(4, "big")
        self.assertRaises(NoiseError, MessageDecoder().push, too_long)
        self.assertRaises(NoiseError, MessageDecoder().push, b"x" * (RECORD_PLAINTEXT_LEN + 1))

    def test_partialPrefixWaits(self) -> None:
        decoder = MessageDecoder()
        self.assertEqual(decoder.push(b"\x00\x00"), [])
        self.assertEqual(decoder.push(b"\x00\x01"), [])
        self.assertEqual(decoder.push(b"!\x00\x00\x00\x01?"), [b"!", b"?"])
        self.assertEqual(decoder.bufferedBytes, 0)

    @settings(max_examples=60, deadline=None)
    @given(messages, st.integers(min_value=2000, max_value=70000), st.randoms())
    def test_anyCutReassembles(self, msgs: list[bytes], cut: int, rnd: random.Random) -> None:
        """However the concatenated framed stream is cut into records, the messages come back."""
        stream = b"".join(frameMessage(m) for m in msgs)
        decoder = MessageDecoder()
        out: list[bytes] = []
        pos = 0
        while pos < len(stream):
            size = min(rnd.randint(1, cut), RECORD_PLAINTEXT_LEN)
            out.extend(decoder.push(stream[pos : pos + size]))
            pos += size
        self.assertEqual(out, msgs)
        self.assertEqual(decoder.bufferedBytes, 0)


class ReorderTests(TestCase):
    def test_inOrder(self) -> None:
        window = ReorderWindow()
        self.assertEqual(window.push(0, b"a"), [b"a"])
        self.assertEqual(window.push(1, b"b"), [b"b"])

    def test_takeInOrderOnlyTheNextWithNothingWaiting(self) -> None:
        window = ReorderWindow()
        self.assertFalse(window.takeInOrder(1))
        self.assertTrue(window.takeInOrder(0))
        self.assertEqual(window.nextSeq, 1)
        self.assertFalse(window.takeInOrder(0))  # a duplicate
        self.assertEqual(window.push(2, b"c"), [])
        self.assertFalse(window.takeInOrder(1))  # 2 waits: push must release both
        self.assertEqual((window.nextSeq, window.pendingRecords), (1, 1))
        self.assertEqual(window.push(1, b"b"), [b"b", b"c"])

    def test_gapThenFill(self) -> None:
        window = ReorderWindow()
        self.assertEqual(window.push(2, b"c"), [])
        self.assertEqual(window.push(1, b"b"), [])
        self.assertEqual(window.push(0, b"a"), [b"a", b"b", b"c"])
        self.assertEqual((window.pendingRecords, window.pendingBytes), (0, 0))

    def test_duplicatesDroppedFirstWins(self) -> None:
        window = ReorderWindow()
        window.push(1, b"first")
        self.assertEqual(window.push(1, b"second"), [])
        self.assertEqual(window.push(0, b"a"), [b"a", b"first"])
        self.assertEqual(window.push(0, b"again"), [])
        self.assertEqual(window.push(1, b"again"), [])

    def test_distanceLimit(self) -> None:
        window = ReorderWindow()
        self.assertEqual(window.push(64, b"x"), [])
        self.assertRaises(NoiseError, ReorderWindow().push, 65, b"x")

    def test_recordLimit(self) -> None:
        window = ReorderWindow()
        for seq in range(1, MAX_PENDING_RECORDS + 1):
            window.push(seq, b"x")
        # 64 pending: a 65th out-of-order record overflows even within the distance.
        window2 = ReorderWindow()
        window2.nextSeq = 10
        for seq in range(11, 11 + MAX_PENDING_RECORDS):
            window2.push(seq, b"x")
        self.assertEqual(window2.pendingRecords, MAX_PENDING_RECORDS)
        self.assertEqual(len(window.push(0, b"x")), MAX_PENDING_RECORDS + 1)

    def test_byteLimit(self) -> None:
        window = ReorderWindow()
        big = b"x" * (MAX_PENDING_BYTES // 16)
        for seq in range(1, 17):
            window.push(seq, big)
        self.assertRaises(NoiseError, window.push, 17, b"y")

    @settings(max_examples=80, deadline=None)
    @given(st.integers(min_value=1, max_value=200), st.randoms(), st.integers(0, 3))
    def test_permutationWithinWindow(self, count: int, rnd: random.Random, dups: int) -> None:
        """Any delivery order that stays within the window, with duplicates, yields seq order."""
        order = list(range(count))
        # Shuffle in blocks of 32 so no record is more than 64 ahead of the next expected.
        shuffled: list[int] = []
        for start in range(0, count, 32):
            block = order[start : start + 32]
            rnd.shuffle(block)
            shuffled.extend(block)
        for _ in range(dups):
            # A duplicate of some record, delivered again later than its first copy.
            at = rnd.randrange(len(shuffled))
            shuffled.insert(rnd.randrange(at, len(shuffled)) + 1, shuffled[at])
        window = ReorderWindow()
        released: list[bytes] = []
        for seq in shuffled:
            released.extend(window.push(seq, seq.to_bytes(2, "big")))
        self.assertEqual(released, [s.to_bytes(2, "big") for s in range(count)])


class ChannelTests(TestCase):
    def test_largeMessageOutOfOrder(self) -> None:
        harness, executor = channelPair()
        big = bytes(range(256)) * 1000
        records = harness.encodeMessage(big) + harness.encodeMessage(b'{"id":2}')
        self.assertEqual([seq for seq, _ in records], list(range(len(records))))
        self.assertTrue(all(len(ct) <= RECORD_PLAINTEXT_LEN + 16 for _, ct in records))
        out: list[bytes] = []
        for seq, ct in reversed(records):
            out.extend(executor.receiveRecord(seq, ct))
        self.assertEqual(out, [big, b'{"id":2}'])

    def test_bothDirectionsIndependentSeqs(self) -> None:
        harness, executor = channelPair()
        ((seq, ct),) = harness.encodeMessage(b"a")
        self.assertEqual(executor.receiveRecord(seq, ct), [b"a"])
        ((seq2, ct2),) = executor.encodeMessage(b"b")
        self.assertEqual(seq2, 0)
        self.assertEqual(harness.receiveRecord(seq2, ct2), [b"b"])

    def test_duplicateRecordIgnored(self) -> None:
        harness, executor = channelPair()
        ((seq, ct),) = harness.encodeMessage(b"a")
        self.assertEqual(executor.receiveRecord(seq, ct), [b"a"])
        self.assertEqual(executor.receiveRecord(seq, ct), [])

    def test_tamperFailsAndSticks(self) -> None:
        harness, executor = channelPair()
        ((seq, ct),) = harness.encodeMessage(b"a")
        self.assertRaises(NoiseError, executor.receiveRecord, seq, ct[:-1] + bytes([ct[-1] ^ 1]))
        self.assertTrue(executor.failed)
        self.assertRaises(NoiseError, executor.receiveRecord, seq, ct)

    def test_recordFromOtherStreamFails(self) -> None:
        harness, _ = channelPair()
        _, executor = channelPair()
        ((seq, ct),) = harness.encodeMessage(b"a")
        self.assertRaises(NoiseError, executor.receiveRecord, seq, ct)

    def test_recordsAtTheOneRecordBoundary(self) -> None:
        """A message that just fits one record (the shortcut) and one that just does not (the
        split) are cut as ``splitRecords`` cuts them, numbered on from each other."""
        harness, executor = channelPair()
        one = RECORD_PLAINTEXT_LEN - 4
        sizes = [1, 200, one - 1, one, one + 1, 2 * RECORD_PLAINTEXT_LEN, 3]
        seq = 0
        for size in sizes:
            message = bytes([size % 251]) * size
            records = harness.encodeMessage(message)
            expected = splitRecords(frameMessage(message))
            self.assertEqual([s for s, _ in records], list(range(seq, seq + len(expected))))
            self.assertEqual([len(ct) for _, ct in records], [len(r) + 16 for r in expected])
            out = [m for s, ct in records for m in executor.receiveRecord(s, ct)]
            self.assertEqual(out, [message])
            seq += len(expected)

    def test_emptyMessageFailsTheChannel(self) -> None:
        harness, _ = channelPair()
        self.assertRaises(NoiseError, harness.encodeMessage, b"")
        self.assertTrue(harness.failed)
        self.assertRaises(NoiseError, harness.encodeMessage, b"a")


class MessageRecordsTests(TestCase):
    @settings(max_examples=80, deadline=None)
    @given(st.integers(min_value=1, max_value=4 * RECORD_PLAINTEXT_LEN + 9))
    def test_sameRecordsAsSplittingTheFramedMessage(self, size: int) -> None:
        message = bytes(i % 253 for i in range(size))
        self.assertEqual(
            [bytes(r) for r in messageRecords(message)], splitRecords(frameMessage(message))
        )

    def test_boundaries(self) -> None:
        for size in (RECORD_PLAINTEXT_LEN - 4, RECORD_PLAINTEXT_LEN - 3, 2 * RECORD_PLAINTEXT_LEN):
            message = b"m" * size
            records = [bytes(r) for r in messageRecords(message)]
            self.assertEqual(records, splitRecords(frameMessage(message)))

    def test_emptyRefused(self) -> None:
        self.assertRaises(NoiseError, messageRecords, b"")
