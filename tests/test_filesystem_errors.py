"""fs/* error mapping: OS errors as the reference words them (Rust error kinds, musl's texts),
permission errors, and path normalisation.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

from twisted.trial.unittest import SynchronousTestCase

from tests.support.filesystem import FsTestCase
from twisted_exec.compat.fileuri import normalizePath
from twisted_exec.compat.oserror import fromOSError, osErrorMessage


class NotRootTests(FsTestCase):
    """EACCES needs an unprivileged user; root bypasses permission bits."""

    def setUp(self) -> None:
        if os.geteuid() == 0:
            raise self.skipTest("running as root: permission bits are not enforced")
        super().setUp()

    async def test_permissionDenied(self) -> None:
        path = self.make("secret", b"x")
        os.chmod(path, 0)
        self.assertEqual(
            await self.err("readFile", path=path),
            {"code": -32600, "message": "Permission denied (os error 13)"},
        )


class ErrorMappingTests(SynchronousTestCase):
    def check(self, code: int, expected: tuple[int, str]) -> None:
        error = fromOSError(OSError(code, os.strerror(code)))
        self.assertEqual((error.code, error.message), expected)

    def test_codesFollowRustErrorKinds(self) -> None:
        self.check(errno.ENOENT, (-32004, "No such file or directory (os error 2)"))
        self.check(errno.EACCES, (-32600, "Permission denied (os error 13)"))
        self.check(errno.EPERM, (-32600, "Operation not permitted (os error 1)"))
        self.check(errno.EINVAL, (-32600, "Invalid argument (os error 22)"))
        self.check(errno.ENOTDIR, (-32603, "Not a directory (os error 20)"))
        self.check(errno.ENAMETOOLONG, (-32603, "Filename too long (os error 36)"))

    def test_muslWording(self) -> None:
        def musl(code: int) -> str:
            return osErrorMessage(OSError(code, "glibc text"))

        """The reference links musl; glibc words these differently."""
        self.assertEqual(
            osErrorMessage(OSError(errno.ELOOP, "")), "Symbolic link loop (os error 40)"
        )
        self.assertEqual(osErrorMessage(OSError(errno.EBUSY, "")), "Resource busy (os error 16)")
        self.assertEqual(musl(errno.EXDEV), "Cross-device link (os error 18)")
        self.assertEqual(musl(errno.EIO), "I/O error (os error 5)")
        self.assertEqual(musl(errno.EDQUOT), "Quota exceeded (os error 122)")
        self.assertEqual(musl(4000), "No error information (os error 4000)")


class NormalizePathTests(SynchronousTestCase):
    def test_cases(self) -> None:
        cases: list[tuple[str, str]] = [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b"),
            ("//a//b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/b/../c", "/a/c"),
            ("/..", "/"),
            ("/../tmp", "/tmp"),
            ("/a/b/../../..", "/"),
        ]
        normalize: Callable[[str], str] = normalizePath
        self.assertEqual([(p, normalize(p)) for p, _ in cases], cases)
