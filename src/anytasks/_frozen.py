"""Small immutable values, built without :mod:`dataclasses`: the schedules and :class:`Tick`.

``@dataclasses.dataclass(frozen=True)`` generates a class's methods as source and ``exec``\\ s
them: about 0.35 ms per class, paid by every ``import anytasks`` for each value class (five of
them were about a twentieth of the import;
``benchmarks/history/2026-11-30-issue8-performance-pass.md``). The value classes instead keep
their fields in private slots behind read-only properties, and share the methods below, written
once.
"""

from __future__ import annotations

from typing import Any


class Frozen:
    """Equality, hashing and pickling by the fields that :meth:`_fields` returns.

    ``_fields()`` returns the constructor's arguments, in order: two values are equal when they
    are of the same class and their fields are equal, as with a frozen dataclass.
    """

    __slots__ = ()

    def _fields(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Frozen)
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __reduce__(self) -> tuple[type[Frozen], tuple[Any, ...]]:
        return (self.__class__, self._fields())
