"""The ``file:`` URI shortcuts give what the full parser and decoder give, for any input.

``parseUri`` skips the URL parser for a URI it would hand back unchanged, and
``FileUri.hostPath`` skips percent-decoding when there is nothing to decode: both are checked
here against the long road (``_parseFull``, and the per-segment decode written out below) on
generated text made mostly of the characters where the two could part (dots, slashes, drive
letters, percent signs, the encode set, non-ASCII).
"""

from __future__ import annotations

import os

from hypothesis import example, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.compat.fileuri import (
    _SCHEME_RE,
    FileUri,
    ForeignUriError,
    UriParseError,
    _parseFull,
    hasScheme,
    normalizePath,
    parseUri,
    percentDecode,
)
from twisted_exec.compat.percent import trimInput

_TRICKY = "/./..\\%2eC:|?# \"<>`{}~!$&'()*+,;=@[]^_azAZ09\t\n\x00\x7f\u00e9\u65e5"
_PREFIXES = ["file:///", "file://", "file:/", "file:", "FILE:///", "file:////", " file:///", ""]


def _outcome(parse: object, text: str) -> tuple[str, str]:
    try:
        uri = parse(text)  # type: ignore[operator]
    except UriParseError as e:
        return ("error", e.message)
    assert isinstance(uri, FileUri)
    return ("uri", repr((uri.text, uri.host, uri.path)))


def _decodedHostPath(uri: FileUri) -> str:
    """``hostPath`` without its shortcut: every segment percent-decoded, then normalised."""
    raw = b"".join(b"/" + percentDecode(s) for s in uri.path.split("/")[1:])
    return normalizePath(os.fsdecode(raw or b"/"))


class ParseShortcutTests(SynchronousTestCase):
    @settings(max_examples=3000, deadline=None)
    @given(st.sampled_from(_PREFIXES), st.text(alphabet=_TRICKY, max_size=24))
    @example("file:///", "")
    @example("file:///", ".")
    @example("file:///", "a/..")
    @example("file:///", "a/./b")
    @example("file:///", "C|/x")
    @example("file:///", "C:/x")
    @example("file:///", "a/.../b")
    def test_sameAsTheFullParser(self, prefix: str, rest: str) -> None:
        text = prefix + rest
        self.assertEqual(_outcome(parseUri, text), _outcome(_parseFull, text))

    def test_plainUriIsItsOwnCanonicalText(self) -> None:
        uri = parseUri("file:///work/scratch/a-b_c~d")
        self.assertEqual((uri.text, uri.host, uri.path), (uri.text, "", "/work/scratch/a-b_c~d"))


class HostPathShortcutTests(SynchronousTestCase):
    @settings(max_examples=2000, deadline=None)
    @given(st.sampled_from(_PREFIXES[:4]), st.text(alphabet=_TRICKY, max_size=24))
    def test_sameAsDecodingEverySegment(self, prefix: str, rest: str) -> None:
        try:
            uri = parseUri(prefix + rest)
        except UriParseError:
            return
        try:
            expected = _decodedHostPath(uri)
        except UnicodeError:
            return
        try:
            self.assertEqual(uri.hostPath(), expected)
        except ForeignUriError:
            self.assertTrue(uri.isWindows or uri.text.startswith("file:///%00"))


class HasSchemeShortcutTests(SynchronousTestCase):
    @settings(max_examples=500, deadline=None)
    @given(st.sampled_from(["file:", "file", "fil:", "FILE:", " file:", ""]), st.text(max_size=8))
    def test_sameAsTheSchemePattern(self, prefix: str, rest: str) -> None:
        text = prefix + rest
        self.assertEqual(hasScheme(text), _SCHEME_RE.match(trimInput(text)) is not None)
