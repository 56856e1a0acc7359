"""The rendezvous's tenancy rules, sans IO."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from twisted_exec.rendezvous.tenancy import (
    ENVIRONMENT,
    EXECUTOR,
    Denial,
    Tenancy,
    TokensFileError,
    authenticate,
    parsePrincipal,
    parseTokensFile,
)

FILE = """
# comment
tok-alpha-0001 name=alpha register=box,box-*
tok-beta-00002
tok-ci-000003 name=ci reach=box,build-* register=
tok-ops-000004 name=ops reach=* max-executors=1
"""


class TokensFileTests(TestCase):
    def test_format(self) -> None:
        entries = parseTokensFile(FILE)
        self.assertEqual(
            [t for t, _ in entries],
            ["tok-alpha-0001", "tok-beta-00002", "tok-ci-000003", "tok-ops-000004"],
        )
        alpha, beta, ci, ops = (p for _, p in entries)
        self.assertEqual((alpha.name, alpha.register, alpha.reach), ("alpha", ("box", "box-*"), ()))
        self.assertEqual((beta.name, beta.register), ("token#2", None))
        self.assertEqual((ci.register, ci.reach), ((), ("box", "build-*")))
        self.assertEqual(ops.maxExecutors, 1)
        self.assertNotIn("tok-", repr(alpha))

    def test_errorsNameTheLineNotTheToken(self) -> None:
        for line in (
            "tok-x-123456 bogus",
            "tok-x-123456 color=red",
            "tok-x-123456 max-executors=x",
        ):
            with self.assertRaises(TokensFileError) as caught:
                parsePrincipal(line, 3)
            self.assertNotIn("tok-x", str(caught.exception))
            self.assertIn("token#3", str(caught.exception))

    def test_authenticate(self) -> None:
        principals = [p for _, p in parseTokensFile(FILE)]
        found = authenticate(principals, "tok-beta-00002")
        assert found is not None
        self.assertEqual(found.name, "token#2")
        self.assertIsNone(authenticate(principals, "tok-beta-0000"))
        self.assertIsNone(authenticate(principals, None))


class TenancyTests(TestCase):
    def setUp(self) -> None:
        self.alpha, self.beta, self.ci, self.ops = (p for _, p in parseTokensFile(FILE))
        self.tenancy = Tenancy(maxExecutors=2)

    def test_firstRegistrationOwns(self) -> None:
        t = self.tenancy
        self.assertIsNone(t.claim(self.beta, EXECUTOR, "shared"))
        self.assertIsNone(t.claim(self.beta, EXECUTOR, "shared"))  # the holder again
        self.assertEqual(t.claim(self.alpha, EXECUTOR, "box"), None)
        denial = t.claim(self.beta, EXECUTOR, "box")
        self.assertEqual(
            denial,
            Denial(
                409, "executor_id_taken", "executor id 'box' is registered by another credential"
            ),
        )
        self.assertIs(t.owner(EXECUTOR, "box"), self.alpha)
        # Environments are a separate namespace of ids with the same rule.
        self.assertIsNone(t.claim(self.beta, ENVIRONMENT, "box"))
        self.assertEqual(t.claim(self.alpha, ENVIRONMENT, "box").status, 409)  # type: ignore[union-attr]

    def test_registerScopeAndCaps(self) -> None:
        t = self.tenancy
        self.assertEqual(t.claim(self.alpha, EXECUTOR, "other").status, 403)  # type: ignore[union-attr]
        self.assertEqual(t.claim(self.ci, EXECUTOR, "box").status, 403)  # type: ignore[union-attr]
        self.assertIsNone(t.claim(self.beta, EXECUTOR, "b1"))
        self.assertIsNone(t.claim(self.beta, EXECUTOR, "b2"))
        denial = t.claim(self.beta, EXECUTOR, "b3")
        assert denial is not None
        self.assertEqual((denial.status, denial.code), (429, "too_many_executors"))
        self.assertIsNone(t.claim(self.ops, EXECUTOR, "o1"))
        self.assertEqual(t.claim(self.ops, EXECUTOR, "o2").status, 429)  # type: ignore[union-attr]

    def test_reach(self) -> None:
        t = self.tenancy
        t.claim(self.alpha, EXECUTOR, "box")
        t.claim(self.beta, EXECUTOR, "beta-box")
        self.assertTrue(t.mayReach(self.alpha, EXECUTOR, "box"))
        self.assertFalse(t.mayReach(self.alpha, EXECUTOR, "beta-box"))
        self.assertFalse(t.mayReach(self.beta, EXECUTOR, "box"))
        self.assertFalse(t.mayReach(self.beta, EXECUTOR, "never-registered"))
        self.assertTrue(t.mayReach(self.ci, EXECUTOR, "box"))
        self.assertTrue(t.mayReach(self.ci, EXECUTOR, "build-7"))
        self.assertFalse(t.mayReach(self.ci, EXECUTOR, "beta-box"))
        self.assertTrue(t.mayReach(self.ops, EXECUTOR, "anything"))
        self.assertTrue(t.mayReach(None, EXECUTOR, "anything"))  # an open test rendezvous
        self.assertEqual(
            t.reachDenial(self.beta, EXECUTOR, "box"),
            Denial(403, "forbidden", "this token may not reach executor 'box'"),
        )
