"""The lean NVX classes (net/autobahn_nvx.py) behave as autobahn's, and the executor's import
of autobahn's websocket protocol uses them without loading cffi's builder or pycparser."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from autobahn.nvx._utf8validator import Utf8Validator as AutobahnValidator
from autobahn.nvx._xormasker import create_xor_masker as autobahn_masker
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.support.twistd import SOURCE_ROOT
from twisted_exec.net import autobahn_nvx

_CHUNKS = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.text(max_size=20).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.sampled_from([b"\xe2\x82", b"\xac", b"\xf0\x9f", b"\x98\x80", b"\xc0\xaf"]),
    ),
    max_size=8,
)


class ValidatorTests(SynchronousTestCase):
    @settings(max_examples=300, deadline=None)
    @given(messages=st.lists(_CHUNKS, min_size=1, max_size=3))
    def test_sameVerdictsChunkByChunk(self, messages: list[list[bytes]]) -> None:
        ours, theirs = autobahn_nvx.Utf8Validator(), AutobahnValidator()
        for chunks in messages:
            ours.reset()
            theirs.reset()
            for chunk in chunks:
                self.assertEqual(ours.validate(chunk), theirs.validate(chunk), chunks)

    def test_aSplitCodePointAndAnInvalidByte(self) -> None:
        v = autobahn_nvx.Utf8Validator()
        self.assertEqual(v.validate(b"ab\xe2\x82"), (True, False, 4, 4))
        self.assertEqual(v.validate(b"\xac"), (True, True, 1, 5))
        self.assertFalse(v.validate(b"\xff")[0])


class MaskerTests(SynchronousTestCase):
    @settings(max_examples=200, deadline=None)
    @given(
        key=st.binary(min_size=4, max_size=4),
        length=st.one_of(st.none(), st.integers(0, 300)),
        pieces=st.lists(st.binary(max_size=300), max_size=5),
        resetAt=st.integers(0, 5),
    )
    def test_sameBytesAndPointerAcrossCalls(
        self, key: bytes, length: int | None, pieces: list[bytes], resetAt: int
    ) -> None:
        ours, theirs = autobahn_nvx.create_xor_masker(key, length), autobahn_masker(key, length)
        for i, piece in enumerate(pieces):
            if i == resetAt:
                ours.reset()
                theirs.reset()
            self.assertEqual(ours.process(piece), theirs.process(piece))
            self.assertEqual(ours.pointer(), theirs.pointer())

    def test_nullMaskerPassesThrough(self) -> None:
        null = autobahn_nvx.XorMaskerNull(b"abcd")
        self.assertEqual(null.process(b"xyz"), b"xyz")
        self.assertEqual(null.pointer(), 3)
        null.reset()
        self.assertEqual(null.pointer(), 0)

    def test_badKey(self) -> None:
        self.assertRaises(ValueError, autobahn_nvx.XorMasker, b"abc")


_PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:  # a module, or module:attribute.path to look up
    module, _, path = name.partition(":")
    value = importlib.import_module(module)
    for attribute in filter(None, path.split(".")):
        value = getattr(value, attribute)
from autobahn.websocket import protocol
from twisted_exec.net import autobahn_nvx
print(json.dumps({
    "validator": protocol.Utf8Validator is autobahn_nvx.Utf8Validator,
    "masker": protocol.create_xor_masker is autobahn_nvx.create_xor_masker,
    "null": protocol.XorMaskerNull is autobahn_nvx.XorMaskerNull,
    "again": autobahn_nvx.installLeanAccelerators(),
    "loaded": sorted(m for m in sys.modules
                     if m.split(".")[0] == "pycparser" or m.startswith("autobahn.nvx.")),
}))
"""


class InstallTests(SynchronousTestCase):
    def probe(self, *modules: str, **env: str) -> dict[str, object]:
        """What a fresh interpreter has after importing ``modules`` in order."""
        # this tree, also under trial (whose cwd is _trial_temp)
        environ = {**os.environ, "PYTHONPATH": SOURCE_ROOT, **env}
        out = subprocess.run(
            [sys.executable, "-c", _PROBE, *(modules or ("twisted_exec.net.autobahn_ws",))],
            capture_output=True,
            check=True,
            timeout=60,
            env=environ,
        )
        result: dict[str, object] = json.loads(out.stdout)
        return result

    def test_theExecutorsImportUsesTheLeanClasses(self) -> None:
        self.assertEqual(
            self.probe(),
            {"validator": True, "masker": True, "null": True, "again": True, "loaded": []},
        )

    def test_everyWayInUsesTheLeanClasses(self) -> None:
        """Whichever of our modules imports autobahn first (the local listener imports
        ``autobahn_compat`` before ``autobahn_ws``; the rendezvous' plugin goes its own way)."""
        lean = {"validator": True, "masker": True, "null": True, "again": True, "loaded": []}
        for first in (
            "twisted_exec.net.autobahn_compat",
            "twisted_exec.executor.transports.local_ws",
            "twisted_exec.executor.transports.relay.protocol",
            "twisted_exec.harness.connection",
        ):
            self.assertEqual(self.probe(first), lean, first)
        plugin = "twistd_plugins.codex_rendezvous:codexRendezvous.options"  # twistd's first step
        rendezvous = self.probe(plugin, "twisted_exec.rendezvous.server")
        self.assertEqual(rendezvous, lean)

    def test_autobahnWithoutNvxIsLeftAlone(self) -> None:
        result = self.probe(AUTOBAHN_USE_NVX="0")
        self.assertEqual(
            (result["validator"], result["masker"], result["again"]), (False, False, False)
        )

    def test_alreadyImportedAutobahnIsLeftAlone(self) -> None:
        """An application that imported autobahn's protocol first keeps autobahn's classes."""
        result = self.probe("autobahn.websocket.protocol", "twisted_exec.net.autobahn_ws")
        self.assertEqual(
            (result["validator"], result["masker"], result["again"]), (False, False, False)
        )
        self.assertIn("pycparser", result["loaded"])
