"""``a | b`` of wall-clock schedules (`AnyOf`), and the base that gives schedules ``|``."""

from __future__ import annotations

import datetime
from typing import final

from .._frozen import Frozen
from .every import Every, refuse_union
from .protocol import Schedule, check_run, require_aware

_UTC = datetime.timezone.utc


class WallClock(Frozen):
    """``|`` for wall-clock schedules; user objects take part through ``__ror__``."""

    __slots__ = ()

    def __or__(self, other: Schedule) -> AnyOf:
        return _union(self, other)

    def __ror__(self, other: Schedule) -> AnyOf:
        return _union(other, self)


def _union(left: object, right: object) -> AnyOf:
    parts: list[Schedule] = []
    for side in (left, right):
        if isinstance(side, Every):
            refuse_union(side)
        if isinstance(side, AnyOf):
            parts.extend(side.schedules)
        elif isinstance(side, Schedule):
            parts.append(side)
        else:
            raise TypeError(
                "a schedule can only be combined with another schedule (an object with "
                f"`next_after`), not {type(side).__name__!r}"
            )
    return AnyOf(tuple(parts))


@final
class AnyOf(WallClock):
    """Runs whenever any of `schedules` runs: the result of ``a | b``.

    Made by ``|`` on wall-clock schedules; nested unions are flattened and equal parts kept once.
    A time at which several parts run is one run. The union ends (`next_after` returns ``None``)
    only when every part has ended.

    Example::

        daily(datetime.time(9)) | cron("0 */4 * * SAT,SUN")

    .. versionadded:: 0.2
    """

    __slots__ = ("schedules",)
    __match_args__ = ("schedules",)

    schedules: tuple[Schedule, ...]
    """The parts, in the order given, each once."""

    def __init__(self, schedules: tuple[Schedule, ...]) -> None:
        unique: list[Schedule] = []
        for part in schedules:
            if part not in unique:
                unique.append(part)
        self._set(schedules=tuple(unique))

    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        """Return the earliest of the parts' next runs strictly after ``after``, in UTC.

        :raises ValueError: if ``after`` is naive
        """
        require_aware(after)
        runs: list[datetime.datetime] = []
        for part in self.schedules:
            run = part.next_after(after)
            if not isinstance(part, WallClock):
                # A part of the user's own could return anything: say which part did.
                run = check_run(part, after, run)
            if run is not None:
                runs.append(run)
        return min(runs).astimezone(_UTC) if runs else None

    def __repr__(self) -> str:
        return " | ".join(map(repr, self.schedules))


@final
class Checked(WallClock):
    """A schedule of the user's own, as a loop follows it: each answer is checked
    (`check_run`), so that a wrong one names the schedule rather than failing somewhere in
    the loop's arithmetic."""

    __slots__ = ("schedule",)
    __match_args__ = ("schedule",)

    schedule: Schedule

    def __init__(self, schedule: Schedule) -> None:
        self._set(schedule=schedule)

    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        return check_run(self.schedule, after, self.schedule.next_after(after))

    def __repr__(self) -> str:
        return repr(self.schedule)
