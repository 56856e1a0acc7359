"""An Automat machine factory built on its first use rather than at import.

``TypeMachineBuilder(...).build()`` inspects the input protocol, wraps every transition and
checks the table: one to several milliseconds of CPU per machine. A stdio executor imports the
process, HTTP and relay modules before ``initialize``, yet many sessions never start a process or
send ``http/request``, and none of them needs the machine before the first one. So each module
wraps its ``_buildMachine`` in a :class:`LazyMachine`, which is called exactly like the built
factory (``Machine(core)``) and builds it once, on the first call.

Every instance is listed in :data:`LAZY_MACHINES`, so a test can check that importing the
start-up path built none of them (tests/test_startup_imports.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

Core = TypeVar("Core")
Events = TypeVar("Events")


class LazyMachine(Generic[Core, Events]):
    """``build()``'s result, made on the first call and kept for the life of the process."""

    def __init__(self, name: str, build: Callable[[], Callable[[Core], Events]]):
        self.name = name
        self._build = build
        self._factory: Callable[[Core], Events] | None = None
        LAZY_MACHINES.append(self)

    @property
    def built(self) -> bool:
        return self._factory is not None

    def __call__(self, core: Core) -> Events:
        factory = self._factory
        if factory is None:
            factory = self._factory = self._build()
        return factory(core)


#: Every :class:`LazyMachine` created so far (one per machine module imported).
LAZY_MACHINES: list[LazyMachine[Any, Any]] = []


def builtMachines() -> list[str]:
    """The names of the machines built so far in this process."""
    return [machine.name for machine in LAZY_MACHINES if machine.built]


__all__ = ["LAZY_MACHINES", "LazyMachine", "builtMachines"]
