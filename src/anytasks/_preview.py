"""The next run times of a schedule, without running it: what ``Loop.preview()`` shows."""

from __future__ import annotations

import datetime

from ._options import AnySchedule
from ._schedules import Every

_ONE_MICROSECOND = datetime.timedelta(microseconds=1)
_UTC = datetime.timezone.utc


def preview(
    schedule: AnySchedule,
    n: int,
    *,
    now: datetime.datetime,
    next_due: datetime.datetime | None,
    next_slot: datetime.datetime | None = None,
    aligned: bool = False,
) -> list[datetime.datetime]:
    """The next ``n`` run times of ``schedule`` (aware UTC), the first being ``next_due``.

    ``next_slot`` is the grid's time of ``next_due`` when jitter moved it: later runs follow
    the grid, not the draw. For an interval without a known next due time, the first run is
    ``now`` (a loop runs at once when started); for a wall-clock schedule, its first time at
    or after ``now``. ``aligned``: an interval on the grid aligned to the Unix epoch, as an
    exclusive loop runs it.
    """
    times: list[datetime.datetime] = []
    if isinstance(schedule, Every) and not aligned:
        step = datetime.timedelta(seconds=schedule.interval)
        first = next_due if next_due is not None else now
        moment = next_slot if next_slot is not None else first
        for index in range(n):
            times.append((first if index == 0 else moment).astimezone(_UTC))
            try:
                moment += step
            except OverflowError:
                break
        return times
    moment_or_none = (
        next_due if next_due is not None else schedule.next_after(now - _ONE_MICROSECOND)
    )
    while moment_or_none is not None and len(times) < n:
        times.append(moment_or_none.astimezone(_UTC))
        moment_or_none = schedule.next_after(moment_or_none)
    return times
