"""The log guard fails the very test that logged a secret, whatever order tests run in."""

from __future__ import annotations

from twisted.logger import Logger
from twisted.trial import reporter, unittest

from tests.logguard import GUARD

SECRET = "tok-GUARD-selftest-0123456789"


def _leakingCase() -> type[unittest.SynchronousTestCase]:
    """Made here, not at module level, so neither runner collects it on its own."""

    class LeaksASecret(unittest.SynchronousTestCase):
        def test_leak(self) -> None:
            Logger(namespace="tests.selftest").info("token is {t}", t=SECRET)

        def test_clean(self) -> None:
            Logger(namespace="tests.selftest").info("nothing to see")

    return LeaksASecret


class LogGuardTests(unittest.SynchronousTestCase):
    def test_theLeakingTestFails(self) -> None:
        case = _leakingCase()
        GUARD.learn(SECRET)
        before = list(GUARD.violations)
        result = reporter.TestResult()
        try:
            case("test_leak").run(result)
            case("test_clean").run(result)
        finally:
            # This test's own leak is deliberate: keep the suite-wide backstop green.
            GUARD.violations[:] = before
            GUARD.secrets.discard(SECRET)
        self.assertEqual(result.testsRun, 2)
        self.assertEqual(len(result.errors), 1)
        failedTest, failure = result.errors[0]
        self.assertEqual(failedTest.id(), case("test_leak").id())
        self.assertNotIn(SECRET, str(failure))
        self.assertIn("secret in a log line from tests.selftest", str(failure))
