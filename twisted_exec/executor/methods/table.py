"""The executor's method table: every domain module's registrar, in one place.

Apart from :mod:`registry` so that the domain modules, which import the registry's types, are
not imported back by it (no import cycle).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from twisted_exec.executor.methods import environment, fs, http, process
from twisted_exec.executor.methods.registry import MethodRegistry


def buildRegistry(extra: Iterable[Callable[[MethodRegistry], None]] = ()) -> MethodRegistry:
    """The executor's table: every domain module's methods, then ``extra`` registrars."""
    registry = MethodRegistry()
    for register in (environment.register, process.register, fs.register, http.register, *extra):
        register(registry)
    return registry


__all__ = ["buildRegistry"]
