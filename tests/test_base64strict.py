"""base64strict: accepts and rejects exactly what the reference does, with the same messages.

REFERENCE_CASES were recorded from Codex CLI 0.131.0 (``fs/writeFile`` to /dev/null; the message
after ``requires valid base64 dataBase64: ``), a sample of 8,040 probed inputs that all agree.
"""

from __future__ import annotations

import base64
import binascii

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.compat import base64strict
from twisted_exec.compat.base64strict import decodeBase64Strict, encodeBase64

REFERENCE_CASES: list[tuple[str, str | None]] = [
    ("", None),
    ("aGVsbG8K", None),
    ("aGVsbG8", "Invalid padding"),
    ("aGVsbG8=", None),
    ("aGVsbA=", "Invalid padding"),
    ("aGVsbA", "Invalid padding"),
    ("!!", "Invalid symbol 33, offset 0."),
    ("aGVs bG8K", "Invalid symbol 32, offset 4."),
    ("aGVsbG8K\n", "Invalid symbol 10, offset 8."),
    (" aGVsbG8K", "Invalid symbol 32, offset 0."),
    ("aGVsbG9=", "Invalid last symbol 57, offset 6."),
    ("QQ==", None),
    ("QR==", "Invalid last symbol 82, offset 1."),
    ("QQ", "Invalid padding"),
    ("QQ=", "Invalid padding"),
    ("Q", "Invalid input length: 1"),
    ("QQ===", "Invalid symbol 61, offset 2."),
    ("=", "Invalid symbol 61, offset 0."),
    ("==", "Invalid symbol 61, offset 0."),
    ("===", "Invalid symbol 61, offset 0."),
    ("====", "Invalid symbol 61, offset 0."),
    ("QUJD=", "Invalid symbol 61, offset 4."),
    ("QUJDRA=", "Invalid padding"),
    ("QUJDRA==", None),
    ("QUJDRA===", "Invalid symbol 61, offset 6."),
    ("QUJDRA=x", "Invalid symbol 61, offset 6."),
    ("QU=D", "Invalid symbol 61, offset 2."),
    ("-_", "Invalid symbol 45, offset 0."),
    ("QUJD\r\n", "Invalid symbol 13, offset 4."),
    ("é", "Invalid symbol 195, offset 0."),
    ("QUJDé", "Invalid symbol 195, offset 4."),
    ("QUJDRA==QUJD", "Invalid symbol 61, offset 6."),
    ("QUJ=RA==", "Invalid symbol 61, offset 3."),
    ("QQ==QQ==", "Invalid symbol 61, offset 2."),
    ("Q===", "Invalid symbol 61, offset 1."),
    ("QUI=", None),
    ("QUJ=", "Invalid last symbol 74, offset 2."),
    ("QUK=", "Invalid last symbol 75, offset 2."),
    ("QUJE", None),
    ("AAAA====", "Invalid symbol 61, offset 4."),
    ("A", "Invalid input length: 1"),
    ("AA", "Invalid padding"),
    ("AAA", "Invalid padding"),
    ("AAAAA", "Invalid input length: 5"),
    ("AA=A", "Invalid symbol 61, offset 2."),
    ("A=AA", "Invalid symbol 61, offset 1."),
    ("=AAA", "Invalid symbol 61, offset 0."),
    ("AAA=A", "Invalid symbol 61, offset 3."),
    ("A\u0000", "Invalid symbol 0, offset 1."),
    ("QUJDRA=!", "Invalid symbol 61, offset 6."),
    ("QUJDR!==", "Invalid symbol 33, offset 5."),
    ("QUJDRA=\n", "Invalid symbol 61, offset 6."),
    ("/QQ/\n+_Q_B", "Invalid symbol 10, offset 4."),
    ("BB/\n=Q é _", "Invalid symbol 10, offset 3."),
    ("BQ\n", "Invalid symbol 10, offset 2."),
    ("\né!", "Invalid symbol 10, offset 0."),
    ("+\n_a-!a+=a", "Invalid symbol 10, offset 1."),
    ("\n_Q\n_!++B", "Invalid symbol 10, offset 0."),
    ("-+_QaQ =a", "Invalid symbol 45, offset 0."),
    ("-Q+a", "Invalid symbol 45, offset 0."),
    ("-__ /", "Invalid symbol 45, offset 0."),
    ("a-!!\n+A-AA", "Invalid symbol 45, offset 1."),
    ("-+Qé/\n ", "Invalid symbol 45, offset 0."),
    ("-=AQQaé_ ", "Invalid symbol 45, offset 0."),
    ("A_a", "Invalid symbol 95, offset 1."),
    ("_ é___=", "Invalid symbol 95, offset 0."),
    ("/__-/+", "Invalid symbol 95, offset 1."),
    ("Q_AB__!!", "Invalid symbol 95, offset 1."),
    ("Q_ ===", "Invalid symbol 95, offset 1."),
    ("__A= a_", "Invalid symbol 95, offset 0."),
    ("!- ", "Invalid symbol 33, offset 0."),
    ("+!_a=a= A", "Invalid symbol 33, offset 1."),
    ("a!__", "Invalid symbol 33, offset 1."),
    ("/Q!A", "Invalid symbol 33, offset 2."),
    ("!-", "Invalid symbol 33, offset 0."),
    (" A_=!", "Invalid symbol 33, offset 4."),
    (" +\n +\na_A ", "Invalid symbol 32, offset 0."),
    ("Q -/ é", "Invalid symbol 32, offset 1."),
    ("A +Q", "Invalid symbol 32, offset 1."),
    ("AQ +", "Invalid symbol 32, offset 2."),
    ("Q =-", "Invalid symbol 32, offset 1."),
    ("/ Q-Q-AA=", "Invalid symbol 32, offset 1."),
    ("Q-_é", "Invalid symbol 169, offset 4."),
    ("aQAé", "Invalid symbol 169, offset 4."),
    ("/\nBé", "Invalid symbol 169, offset 4."),
    ("Q--!+_Qé", "Invalid symbol 169, offset 8."),
    ("/-Qé", "Invalid symbol 169, offset 4."),
    ("\nQAé", "Invalid symbol 169, offset 4."),
    ("w", "Invalid input length: 1"),
    ("zwQQg", "Invalid input length: 5"),
    ("//9gAAAZ+", "Invalid input length: 9"),
    ("w/zQg", "Invalid input length: 5"),
    ("//Q+Q", "Invalid input length: 5"),
    ("g/w9/", "Invalid input length: 5"),
    ("g=/ZzAg", "Invalid symbol 61, offset 1."),
    ("w=Z/9Aw", "Invalid symbol 61, offset 1."),
    ("Z=wZwA+wAz=9gAQz=Q+wAZZ=ZQ=/wAAAwZzz=ZA9", "Invalid symbol 61, offset 1."),
    ("ZAQz=+", "Invalid symbol 61, offset 4."),
    ("A9//A+gA==+AA", "Invalid symbol 61, offset 8."),
    ("A9g=gwAg", "Invalid symbol 61, offset 3."),
    ("QQQé+", "Invalid symbol 195, offset 3."),
    ("Qé_", "Invalid symbol 195, offset 1."),
    ("éBAQa\n_!a", "Invalid symbol 195, offset 0."),
    ("éQQ_-", "Invalid symbol 195, offset 0."),
    ("zé+AA9ZZ", "Invalid symbol 195, offset 1."),
    ("Z9é99", "Invalid symbol 195, offset 2."),
    ("//A", "Invalid padding"),
    ("QAQAZ9ZA9g+AAA/A+/9/g/wA99/99z9wAZw9gzQQA+", "Invalid padding"),
    ("zzAzwA/", "Invalid padding"),
    ("+wgZAgA", "Invalid padding"),
    ("QAw", "Invalid padding"),
    ("zg/zZw", "Invalid padding"),
    ("AwggwAwA+zggA+zA", None),
    ("+AAQZg/Q", None),
    ("AAgg", None),
    ("Aw++AzzZ", None),
    ("QBaa", None),
    ("zZw+g9Az", None),
    ("/AB=", "Invalid last symbol 66, offset 2."),
    ("QQB=", "Invalid last symbol 66, offset 2."),
    ("Q+AggA+=", "Invalid last symbol 43, offset 6."),
    ("ZzZQQz+=", "Invalid last symbol 43, offset 6."),
    ("A+A/9gAQ/AzAz/+=", "Invalid last symbol 43, offset 14."),
    ("+A+Q9z+=", "Invalid last symbol 43, offset 6."),
    ("B++=", "Invalid last symbol 43, offset 2."),
    ("aQa=", "Invalid last symbol 97, offset 2."),
    ("/QzQgZ/=", "Invalid last symbol 47, offset 6."),
    ("w//=", "Invalid last symbol 47, offset 2."),
    ("A++9Qg/AzZ/=", "Invalid last symbol 47, offset 10."),
    ("gAz=", "Invalid last symbol 122, offset 2."),
    ("Qzz=", "Invalid last symbol 122, offset 2."),
    ("AQggA9AAQZz=", "Invalid last symbol 122, offset 10."),
    ("w9Z=", "Invalid last symbol 90, offset 2."),
    ("Aw9/+zA9zggzQQZ=", "Invalid last symbol 90, offset 14."),
    ("QZ9=", "Invalid last symbol 57, offset 2."),
]


def outcome(text: str) -> tuple[str, bytes | str]:
    try:
        return ("ok", decodeBase64Strict(text))
    except ValueError as e:
        return ("error", str(e))


def slowOutcome(text: str) -> tuple[str, bytes | str]:
    """The exact walk alone, without binascii's strict fast path."""
    data = text.encode("utf-8", "surrogatepass")
    try:
        base64strict._explain(data)
    except ValueError as e:
        return ("error", str(e))
    return ("ok", binascii.a2b_base64(data))


class ReferenceCasesTests(SynchronousTestCase):
    def test_referenceMessages(self) -> None:
        for text, expected in REFERENCE_CASES:
            kind, value = outcome(text)
            if expected is None:
                self.assertEqual(kind, "ok", text)
                self.assertEqual(value, base64.b64decode(text), text)
            else:
                self.assertEqual((kind, value), ("error", expected), text)

    def test_specExample(self) -> None:
        self.assertEqual(outcome("!!"), ("error", "Invalid symbol 33, offset 0."))

    def test_offsetsCountUtf8Bytes(self) -> None:
        self.assertEqual(outcome("QUJDé"), ("error", "Invalid symbol 195, offset 4."))

    def test_emptyIsEmpty(self) -> None:
        self.assertEqual(decodeBase64Strict(""), b"")

    def test_nonCanonicalPaddingGroupsRejected(self) -> None:
        # binascii's strict mode accepts these; the reference does not.
        self.assertEqual(outcome("AAAA===="), ("error", "Invalid symbol 61, offset 4."))
        self.assertEqual(outcome("QR=="), ("error", "Invalid last symbol 82, offset 1."))
        self.assertEqual(outcome("QUJ="), ("error", "Invalid last symbol 74, offset 2."))

    def test_encodeIsPaddedStandard(self) -> None:
        self.assertEqual(encodeBase64(b"\xfb\xff"), "+/8=")
        self.assertEqual(encodeBase64(b""), "")
        self.assertEqual(encodeBase64(b"x" * 100), base64.b64encode(b"x" * 100).decode())


class PropertyTests(SynchronousTestCase):
    @given(st.binary(max_size=200))
    def test_roundTrip(self, data: bytes) -> None:
        self.assertEqual(decodeBase64Strict(encodeBase64(data)), data)

    @given(st.text(alphabet="AQgw/+=9z!\n é", max_size=24))
    def test_fastPathAgreesWithExactWalk(self, text: str) -> None:
        self.assertEqual(outcome(text), slowOutcome(text))

    @given(st.binary(min_size=1, max_size=30), st.integers(min_value=0, max_value=29))
    def test_corruptedEncodingAgrees(self, data: bytes, where: int) -> None:
        text = encodeBase64(data)
        index = where % len(text)
        for replacement in "=A!":
            mutated = text[:index] + replacement + text[index + 1 :]
            self.assertEqual(outcome(mutated), slowOutcome(mutated))


class LargeInputTests(SynchronousTestCase):
    """Inputs over one 1 MiB slice take the sliced paths; offsets stay absolute."""

    size = 3 << 20

    def test_valid(self) -> None:
        data = bytes(range(256)) * (self.size // 256) + b"xy"
        self.assertEqual(decodeBase64Strict(encodeBase64(data)), data)

    def test_badSymbolFarIn(self) -> None:
        text = "A" * self.size
        text = text[:2_000_001] + "!" + text[2_000_002:]
        self.assertEqual(outcome(text), ("error", "Invalid symbol 33, offset 2000001."))

    def test_paddingAtASliceBoundary(self) -> None:
        text = "A" * ((1 << 20) - 2) + "==" + "A" * self.size
        self.assertEqual(outcome(text), ("error", f"Invalid symbol 61, offset {(1 << 20) - 2}."))

    def test_nonCanonicalTail(self) -> None:
        self.assertEqual(
            outcome("A" * self.size + "QR=="),
            ("error", f"Invalid last symbol 82, offset {self.size + 1}."),
        )
