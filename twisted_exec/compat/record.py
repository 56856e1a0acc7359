"""``@frozen``: an immutable record class, built without generating code.

``@dataclass(frozen=True)`` writes the source of ``__init__``, ``__eq__``, ``__hash__``,
``__repr__``, ``__setattr__`` and ``__delattr__`` for every class and ``exec``\\ s it: about
0.3 ms of CPU per class on Python 3.11. The executor declares dozens of parameter types, and a
client that spawns one stdio executor per session pays for all of them before ``initialize``.
Here every class shares the same few generic methods, parameterised by the field names read from
the class's annotations, so decorating a class costs a few microseconds. Construction is cheaper
too: a frozen dataclass's ``__init__`` calls ``object.__setattr__`` once per field, this one
stores one prepared dict.

What a caller sees is what the frozen dataclass gave: keyword or positional construction in
declaration order with the class-level defaults, ``TypeError`` for an unknown, missing or doubled
argument, equality and hash over the fields in order (only with the same class), the dataclass
``repr``, ``__match_args__``, and :class:`dataclasses.FrozenInstanceError` on assignment or
deletion. :func:`replace` stands in for :func:`dataclasses.replace`. Not supported (refused when
the class is decorated): ``dataclasses.field(...)`` defaults, which need a factory per instance;
the types here have none. mypy reads the decorator as a frozen dataclass (PEP 681).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")

_FIELDS = "__record_fields__"


def _fieldNames(cls: type) -> tuple[tuple[str, ...], dict[str, object]]:
    """The fields in declaration order (bases first) and their defaults."""
    names: list[str] = []
    defaults: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        for name, annotation in inspect.get_annotations(klass).items():
            if "ClassVar" in str(annotation):
                continue
            if name not in names:
                names.append(name)
            if name in klass.__dict__:
                default = klass.__dict__[name]
                if isinstance(default, dataclasses.Field):
                    raise TypeError(f"{cls.__qualname__}.{name}: field() is not supported")
                defaults[name] = default
            elif name in defaults and klass is cls:
                del defaults[name]
    return tuple(names), defaults


def _makeInit(names: tuple[str, ...], defaults: dict[str, object]) -> Callable[..., None]:
    count = len(names)
    required = [name for name in names if name not in defaults]

    def __init__(self: object, *args: object, **kwargs: object) -> None:  # noqa: N807
        if args:
            if len(args) > count:
                raise TypeError(
                    f"{type(self).__qualname__}() takes {count} arguments, {len(args)} given"
                )
            positional = dict(zip(names, args, strict=False))
            doubled = positional.keys() & kwargs.keys()
            if doubled:
                raise TypeError(
                    f"{type(self).__qualname__}() got multiple values for {sorted(doubled)}"
                )
            values = {**defaults, **positional, **kwargs}
        else:
            values = {**defaults, **kwargs}
        if len(values) != count:
            unknown = [key for key in values if key not in names]
            if unknown:
                raise TypeError(
                    f"{type(self).__qualname__}() got unexpected keyword arguments {unknown}"
                )
            missing = [name for name in required if name not in values]
            raise TypeError(f"{type(self).__qualname__}() missing arguments {missing}")
        object.__setattr__(self, "__dict__", values)

    return __init__


def _values(self: object) -> tuple[object, ...]:
    state = self.__dict__
    return tuple(state[name] for name in getattr(type(self), _FIELDS))


def _eq(self: object, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: object) -> int:
    return hash(_values(self))


def _repr(self: object) -> str:
    state = self.__dict__
    shown = ", ".join(f"{name}={state[name]!r}" for name in getattr(type(self), _FIELDS))
    return f"{type(self).__qualname__}({shown})"


def _setattr(self: object, name: str, value: object) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: object, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


#: Methods a class may define itself (a ``__repr__`` that hides a secret, say).
_KEPT = frozenset({"__repr__", "__eq__", "__hash__"})


@dataclass_transform(frozen_default=True)
def frozen(cls: type[T]) -> type[T]:
    """Make ``cls`` an immutable record of its annotated fields (see the module docstring)."""
    names, defaults = _fieldNames(cls)
    members: dict[str, object] = {
        _FIELDS: names,
        "__init__": _makeInit(names, defaults),
        "__eq__": _eq,
        "__hash__": _hash,
        "__repr__": _repr,
        "__setattr__": _setattr,
        "__delattr__": _delattr,
        "__match_args__": names,
    }
    for name, member in members.items():
        if name in _KEPT and name in cls.__dict__:
            continue  # the class's own, as dataclass keeps it
        setattr(cls, name, member)
    return cls


def recordFields(record: object) -> tuple[str, ...]:
    """The field names of a ``@frozen`` instance or class, in declaration order."""
    names: tuple[str, ...] = getattr(record, _FIELDS)
    return names


def replace(record: T, **changes: Any) -> T:
    """A copy of ``record`` with ``changes`` (:func:`dataclasses.replace` for ``@frozen``)."""
    names = recordFields(record)
    unknown = changes.keys() - set(names)
    if unknown:
        raise TypeError(f"{type(record).__qualname__} has no fields {sorted(unknown)}")
    state = record.__dict__
    return type(record)(**{name: changes.get(name, state[name]) for name in names})


__all__ = ["frozen", "recordFields", "replace"]
