"""The one style of the package's immutable values: schedules, events, outcomes, options, plans.

A value class lists its fields in ``__match_args__``, in the order of its constructor's
arguments, keeps them in public slots, and sets them in ``__init__`` with :meth:`Frozen._set`;
underscored slots may hold what is derived from them. Setting or deleting an attribute
afterwards raises :class:`AttributeError`. Two values are equal when they are of the same class
and their fields are equal; they hash and pickle by their fields, and `replace` makes a copy
with some fields changed.

Not :mod:`dataclasses`: ``@dataclass(frozen=True)`` generates a class's methods as source and
``exec``\\ s them, about 0.35 ms per class, paid by every ``import anytasks``
(``benchmarks/history/2026-11-30-issue8-performance-pass.md``).
"""

from __future__ import annotations

from typing import Any, TypeVar

_F = TypeVar("_F", bound="Frozen")


class Frozen:
    """Equality, hashing, pickling and immutability by the fields of ``__match_args__``."""

    # (``__match_args__`` is not declared here: each value class's own, a tuple of literal
    # names, is what type checkers read to check ``match`` patterns, and a declaration here
    # would widen it.)
    __slots__ = ()

    def _set(self, **fields: object) -> None:
        """Set fields (in ``__init__``, the one place where a value is written)."""
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _names(self))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Frozen)
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __reduce__(self) -> tuple[type[Frozen], tuple[Any, ...]]:
        return (self.__class__, self._fields())


def _names(value: Frozen) -> tuple[str, ...]:
    names: tuple[str, ...] = getattr(type(value), "__match_args__", ())
    return names


def replace(value: _F, **changes: object) -> _F:
    """A copy of ``value`` with ``changes`` to its fields, made by its constructor (so that it
    checks them as it checks new values)."""
    fields = {name: getattr(value, name) for name in _names(value)}
    unknown = set(changes) - set(fields)
    if unknown:
        raise TypeError(f"{type(value).__name__} has no field {sorted(unknown)[0]!r}")
    fields.update(changes)
    return type(value)(**fields)
