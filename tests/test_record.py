"""``compat/record.frozen`` behaves as ``@dataclass(frozen=True)`` did for the param types, and
``executor/core/lazymachine`` builds a machine once, on its first use."""

from __future__ import annotations

import dataclasses
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from twisted_exec.compat.record import frozen, recordFields, replace
from twisted_exec.executor.core.lazymachine import LAZY_MACHINES, LazyMachine, builtMachines


@frozen
class Record:
    name: str
    items: list[int]
    count: int | None = None
    flag: bool = True


@dataclasses.dataclass(frozen=True)
class Record_:  # noqa: N801 (the same class as a dataclass, to compare with)
    name: str
    items: list[int]
    count: int | None = None
    flag: bool = True


class Sub(Record):
    """A subclass with no annotations of its own keeps the fields."""


def both(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    return Record(*args, **kwargs), Record_(*args, **kwargs)


class FrozenTests(SynchronousTestCase):
    def test_constructionAndDefaults(self) -> None:
        ours, theirs = both("a", [1], count=3)
        self.assertEqual((ours.name, ours.items, ours.count, ours.flag), ("a", [1], 3, True))
        self.assertEqual(repr(ours), repr(theirs).replace("Record_", "Record"))
        self.assertEqual(Record.__match_args__, Record_.__match_args__)
        self.assertEqual(recordFields(ours), ("name", "items", "count", "flag"))
        self.assertEqual(
            Record("a", [1], 3, False), Record(name="a", items=[1], count=3, flag=False)
        )

    def test_badArgumentsAreTypeErrors(self) -> None:
        cases: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
            ((), {"name": "a"}),  # missing
            (("a", []), {"nope": 1}),  # unknown
            (("a", []), {"name": "b"}),  # doubled
            (("a", [], 1, True, 5), {}),  # too many
        ]
        for args, kwargs in cases:
            self.assertRaises(TypeError, Record, *args, **kwargs)
            self.assertRaises(TypeError, Record_, *args, **kwargs)

    def test_equalityAndHash(self) -> None:
        self.assertEqual(Record("a", []), Record("a", []))
        self.assertNotEqual(Record("a", []), Record("b", []))
        self.assertNotEqual(Record("a", [], 1), Record("a", [], None))
        self.assertNotEqual(Record("a", []), Sub("a", []))  # another class is never equal
        self.assertNotEqual(Record("a", []), ("a", [], None, True))
        self.assertEqual(hash(Record("a", ())), hash(Record("a", ())))  # type: ignore[arg-type]
        self.assertRaises(TypeError, hash, Record("a", []))  # a list field: as a dataclass
        self.assertRaises(TypeError, hash, Record_("a", []))

    def test_immutable(self) -> None:
        ours, theirs = both("a", [])
        for record in (ours, theirs):
            with self.assertRaises(dataclasses.FrozenInstanceError):
                record.name = "b"
            with self.assertRaises(dataclasses.FrozenInstanceError):
                del record.name
            with self.assertRaises(dataclasses.FrozenInstanceError):
                record.other = 1
        self.assertEqual(ours.name, "a")

    def test_replace(self) -> None:
        record = Record("a", [1], count=2)
        changed = replace(record, count=None, flag=False)
        self.assertEqual(changed, Record("a", [1], None, False))
        self.assertEqual(record, Record("a", [1], 2, True))
        self.assertRaises(TypeError, replace, record, nope=1)

    def test_subclassKeepsFields(self) -> None:
        self.assertEqual(recordFields(Sub("a", [])), ("name", "items", "count", "flag"))
        self.assertEqual(Sub("a", []).flag, True)

    def test_fieldDefaultsRefused(self) -> None:
        class WithField:
            items: list[int] = dataclasses.field(default_factory=list)

        self.assertRaises(TypeError, frozen, WithField)


class LazyMachineTests(SynchronousTestCase):
    def test_builtOnceOnFirstCall(self) -> None:
        builds: list[int] = []

        def build() -> Any:
            builds.append(1)
            return lambda core: ("machine", core)

        lazy: LazyMachine[int, tuple[str, int]] = LazyMachine("test", build)
        self.addCleanup(LAZY_MACHINES.remove, lazy)
        self.assertIn(lazy, LAZY_MACHINES)
        self.assertFalse(lazy.built)
        self.assertNotIn("test", builtMachines())
        self.assertEqual(builds, [])
        self.assertEqual(lazy(1), ("machine", 1))
        self.assertEqual(lazy(2), ("machine", 2))
        self.assertEqual(builds, [1])
        self.assertTrue(lazy.built)
        self.assertIn("test", builtMachines())
