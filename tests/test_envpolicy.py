"""envPolicy → child environment, with the cases probed on the reference binary."""

from __future__ import annotations

from twisted.trial import unittest

from twisted_exec.compat.envpolicy import childEnvironment
from twisted_exec.compat.params import ExecEnvPolicy

ENVIRON = {
    "HOME": "/root",
    "PATH": "/usr/bin:/bin",
    "MY_KEY": "1",
    "my_secret": "2",
    "TOKENX": "3",
    "PASSWORD": "4",
    "KEYBOARD": "5",
    "FOOBAR": "6",
    "foobaz": "7",
    "BAR1": "8",
    "BARX": "9",
    "ABC": "10",
    "ACC": "11",
}


def policy(inherit="all", ignore=False, exclude=(), set=None, includeOnly=()):
    return ExecEnvPolicy(inherit, ignore, list(exclude), dict(set or {}), list(includeOnly))


class EnvPolicyTests(unittest.TestCase):
    def test_noPolicyIsExactEnv(self) -> None:
        self.assertEqual(childEnvironment({"A": "1"}, None, ENVIRON), {"A": "1"})
        self.assertEqual(childEnvironment({}, None, ENVIRON), {})

    def test_defaultExcludesCaseInsensitive(self) -> None:
        got = childEnvironment({}, policy(), ENVIRON)
        self.assertEqual(
            sorted(got),
            ["ABC", "ACC", "BAR1", "BARX", "FOOBAR", "HOME", "PASSWORD", "PATH", "foobaz"],
        )

    def test_excludeGlobs(self) -> None:
        """``*`` and ``?`` are wildcards; brackets are literal, as the reference's matcher."""
        got = childEnvironment({}, policy(ignore=True, exclude=["foo*", "BAR?", "A[B]C"]), ENVIRON)
        self.assertEqual(
            sorted(got),
            ["ABC", "ACC", "HOME", "KEYBOARD", "MY_KEY", "PASSWORD", "PATH", "TOKENX", "my_secret"],
        )
        literal = childEnvironment({}, policy(ignore=True, exclude=["[*"]), {"[X": "1", "X": "2"})
        self.assertEqual(literal, {"X": "2"})

    def test_sortedByName(self) -> None:
        """The child's environment is sorted by name, with or without a policy (probed)."""
        self.assertEqual(
            list(childEnvironment({"ZZ": "1", "AA": "2", "B": "3"}, None, {})), ["AA", "B", "ZZ"]
        )
        got = childEnvironment({"ZZ": "1"}, policy(set={"MM": "3"}), {"PATH": "/p", "AA": "2"})
        self.assertEqual(list(got), ["AA", "MM", "PATH", "ZZ"])

    def test_setThenIncludeOnlyThenEnv(self) -> None:
        got = childEnvironment(
            {"ENVKEY": "e", "ZZZ": "z"},
            policy(set={"NEW_KEY": "s", "HOME": "sethome"}, includeOnly=["*key*", "home", "bar*"]),
            ENVIRON,
        )
        self.assertEqual(
            got,
            {
                "BAR1": "8",
                "BARX": "9",
                "ENVKEY": "e",
                "HOME": "sethome",
                "NEW_KEY": "s",
                "ZZZ": "z",
            },
        )

    def test_setIsNotExcluded(self) -> None:
        got = childEnvironment(
            {"E_TOKEN": "e"}, policy("none", exclude=["X"], set={"X": "1", "S_TOKEN": "t"}), ENVIRON
        )
        self.assertEqual(got, {"E_TOKEN": "e", "S_TOKEN": "t", "X": "1"})

    def test_excludeEverything(self) -> None:
        self.assertEqual(childEnvironment({}, policy(ignore=True, exclude=["*"]), ENVIRON), {})

    def test_none(self) -> None:
        self.assertEqual(childEnvironment({"A": "x"}, policy("none"), ENVIRON), {"A": "x"})

    def test_coreSetCaseInsensitive(self) -> None:
        # what ``inherit: core`` keeps, as probed (any case), and names it drops; each listed
        # once here, independently of ``CORE_VARS``
        kept = {
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "LC_ALL": "C",
            "LC_CTYPE": "C",
            "LOGNAME": "root",
            "PATH": "/bin",
            "SHELL": "/bin/bash",
            "TEMP": "/t",
            "TMP": "/t",
            "TMPDIR": "/nope",
            "USER": "root",
            "home": "lower",
            "path": "lower",
        }
        dropped = {
            "USERNAME": "u",
            "LC_MESSAGES": "C",
            "TERM": "xterm",
            "TZ": "UTC",
            "PWD": "/x",
            "SystemRoot": "y",
        }
        got = childEnvironment({}, policy("core", ignore=True), {**kept, **dropped})
        self.assertEqual(got, kept)

    def test_envWinsOverInherited(self) -> None:
        got = childEnvironment({"PATH": "/mine"}, policy(), ENVIRON)
        self.assertEqual(got["PATH"], "/mine")
