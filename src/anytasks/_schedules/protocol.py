"""The `Schedule` protocol: what a wall-clock schedule is, and the checks of its answers."""

from __future__ import annotations

import datetime
from typing import Protocol, runtime_checkable


@runtime_checkable
class Schedule(Protocol):
    """A wall-clock schedule: anything that can say when it runs next.

    ``next_after(after)`` receives an aware datetime and returns the first run time *strictly
    after* it as an aware datetime in UTC, or ``None`` when the schedule has no more runs. It must
    be pure (same answer for the same ``after``, no clock reads) and must answer quickly, since a
    loop may call it many times to count slots missed during a long suspend. Passing the previous
    result gives the next run, so a result equal to ``after`` would repeat a run.

    `daily`, `cron` and ``a | b`` of schedules implement it, and so can any user object; combine a
    user object with a built-in schedule with ``|`` in either order.

    Example::

        class Weekdays:  # 09:00 UTC, Monday to Friday
            def next_after(self, after):
                run = after.astimezone(datetime.timezone.utc)
                while True:
                    run = daily(datetime.time(9)).next_after(run)
                    if run.weekday() < 5:
                        return run

        @loop(schedule=Weekdays() | cron("0 12 * * SAT"))
        async def report(): ...

    .. versionadded:: 0.2
    """

    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        """Return the first run strictly after ``after`` (aware, in UTC), or ``None``."""
        ...


def require_aware(after: datetime.datetime) -> None:
    if not isinstance(after, datetime.datetime):
        raise TypeError(f"`after` must be a datetime.datetime, not {type(after).__name__!r}")
    if after.utcoffset() is None:
        raise ValueError(f"`after` must be an aware datetime, got {after!r}")


def check_run(schedule: object, after: datetime.datetime, run: object) -> datetime.datetime | None:
    """Return ``run``, what ``schedule.next_after(after)`` returned, if it keeps the protocol.

    :raises TypeError: if it is neither ``None`` nor an aware datetime
    :raises ValueError: if it is not after ``after`` (the loop would run one slot for ever)
    """
    if run is None:
        return None
    if not isinstance(run, datetime.datetime) or run.utcoffset() is None:
        raise TypeError(
            f"schedule {schedule!r}: next_after() must return an aware datetime or None, "
            f"but it returned {run!r}"
        )
    if run <= after:
        raise ValueError(
            f"schedule {schedule!r}: next_after({after.isoformat()}) returned "
            f"{run.isoformat()}, which is not after it"
        )
    return run
