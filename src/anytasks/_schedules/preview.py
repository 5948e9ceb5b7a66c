"""The next run times of a schedule, without running it: what ``Loop.preview()`` shows."""

from __future__ import annotations

import datetime

from .protocol import Schedule

_ONE_MICROSECOND = datetime.timedelta(microseconds=1)
_UTC = datetime.timezone.utc


def preview(
    wall_schedule: Schedule | None,
    interval: float | None,
    n: int,
    *,
    now: datetime.datetime,
    next_due: datetime.datetime | None,
    next_slot: datetime.datetime | None = None,
) -> list[datetime.datetime]:
    """The next ``n`` run times (aware UTC) of a loop that follows ``wall_schedule``, or, if
    that is None, an interval of ``interval`` seconds on the monotonic clock; the first is
    ``next_due``.

    ``next_slot`` is the grid's time of ``next_due`` when jitter moved it: later runs follow
    the grid, not the draw. For an interval without a known next due time, the first run is
    ``now`` (a loop runs at once when started); for a wall-clock schedule, its first time at
    or after ``now``.
    """
    times: list[datetime.datetime] = []
    if wall_schedule is None:
        assert interval is not None
        first = next_due if next_due is not None else now
        moment = next_slot if next_slot is not None else first
        for index in range(n):
            times.append((first if index == 0 else moment).astimezone(_UTC))
            try:
                # Made here: an interval that @loop accepts (hours=1e12) may be past what a
                # timedelta holds, and then no second run fits before datetime.max either.
                moment += datetime.timedelta(seconds=interval)
            except OverflowError:
                break
        return times
    moment_or_none = (
        next_due if next_due is not None else wall_schedule.next_after(now - _ONE_MICROSECOND)
    )
    while moment_or_none is not None and len(times) < n:
        times.append(moment_or_none.astimezone(_UTC))
        moment_or_none = wall_schedule.next_after(moment_or_none)
    return times
