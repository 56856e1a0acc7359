"""``statFollowing`` answers and fails exactly as ``os.stat`` + ``os.lstat`` did, with one
system call for an entry that is not a symlink."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from unittest import mock

from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.executor.resources.fs_stat import statFollowing


def _twoCalls(path: str) -> tuple[os.stat_result, bool]:
    st = os.stat(path)
    return st, stat.S_ISLNK(os.lstat(path).st_mode)


class StatFollowingTests(SynchronousTestCase):
    def setUp(self) -> None:
        root = Path(self.mktemp())
        root.mkdir()
        (root / "file").write_bytes(b"12345")
        (root / "dir").mkdir()
        (root / "to-file").symlink_to("file")
        (root / "to-dir").symlink_to("dir")
        (root / "dangling").symlink_to("missing")
        (root / "loop").symlink_to("loop")
        (root / "link-chain").symlink_to("to-file")
        self.root = root

    def test_sameAnswersAsStatThenLstat(self) -> None:
        for name in ("file", "dir", "to-file", "to-dir", "link-chain", "to-dir/.."):
            path = str(self.root / name)
            self.assertEqual(statFollowing(path), _twoCalls(path), name)

    def test_sameErrorsAsStat(self) -> None:
        for name in ("dangling", "loop", "missing", "file/below", "dangling/below"):
            path = str(self.root / name)
            with self.assertRaises(OSError) as ours:
                statFollowing(path)
            with self.assertRaises(OSError) as theirs:
                _twoCalls(path)
            self.assertEqual(ours.exception.errno, theirs.exception.errno, name)
            self.assertEqual(ours.exception.filename, theirs.exception.filename, name)

    def test_oneCallUnlessASymlink(self) -> None:
        with mock.patch.object(os, "stat", side_effect=AssertionError("stat")):
            st, isLink = statFollowing(str(self.root / "file"))
        self.assertEqual((st.st_size, isLink), (5, False))
        with mock.patch.object(os, "stat", wraps=os.stat) as follow:
            st, isLink = statFollowing(str(self.root / "to-file"))
        self.assertEqual((st.st_size, isLink, follow.call_count), (5, True, 1))
