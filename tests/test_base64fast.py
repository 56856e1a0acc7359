"""``wire.base64fast``: the same bytes as the standard library's encoder, whichever is used."""

from __future__ import annotations

import binascii
import os
import sys

from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.wire import base64fast


class EncodeBase64Tests(SynchronousTestCase):
    def test_sameBytesAsBinascii(self) -> None:
        for data in (b"", b"a", b"ab", b"abc", b"\0" * 8192, os.urandom(4095), os.urandom(8193)):
            with self.subTest(size=len(data)):
                self.assertEqual(
                    base64fast.encodeBase64(data), binascii.b2a_base64(data, newline=False)
                )

    def test_returnsBytes(self) -> None:
        self.assertIsInstance(base64fast.encodeBase64(b"xyz"), bytes)

    def test_fallbackWithoutPybase64(self) -> None:
        """Without the package the standard encoder is chosen, and it is the same encoding."""
        saved = sys.modules.get("pybase64", _ABSENT)
        sys.modules["pybase64"] = None  # type: ignore[assignment]  # makes the import fail
        try:
            encode, accelerated = base64fast._load()
        finally:
            if saved is _ABSENT:
                del sys.modules["pybase64"]
            else:
                sys.modules["pybase64"] = saved  # type: ignore[assignment]
        self.assertFalse(accelerated)
        self.assertIs(encode, base64fast._standardEncode)
        self.assertEqual(encode(b"\xff\x00"), b"/wA=")


_ABSENT = object()
