"""Schedules as values: `every`, `daily`, their union, and the `Schedule` protocol.

A schedule is a small immutable value with one pure method, ``next_after(after)``: nothing here
reads a clock or sleeps, so DST changes and long gaps are tested without waiting. The calendar
arithmetic for times of day lives in `anytasks._schedule`; `cron` schedules, the one kind that
needs a library, are in `anytasks._cron`.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any, NoReturn, Protocol, cast, final, runtime_checkable

from ._frozen import Frozen
from ._schedule import next_time_of_day, normalize_times, validate_interval

_UTC = datetime.timezone.utc
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=_UTC)
_MICROSECOND = datetime.timedelta(microseconds=1)


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
            _refuse_union(side)
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


def _refuse_union(interval: Every) -> NoReturn:
    raise TypeError(
        f"{interval!r} is an interval on the monotonic clock and cannot be combined with "
        "wall-clock schedules: use `daily()` or `cron()` for runs at fixed times"
    )


@final
class Every(Frozen):
    """A run every ``interval`` seconds on the monotonic clock: the grid of ``@loop(seconds=)``.

    Made by `every`. The fields keep the components as given (``every(minutes=1)`` and
    ``every(seconds=60)`` have the same `interval` but are not equal). An interval loop counts
    from its own start on the event loop's monotonic clock, so it is not a wall-clock `Schedule`
    and cannot be combined with one with ``|``.

    `next_after` is still offered for loops that must agree across processes (a grid aligned to
    the Unix epoch: slot *k* is *k* times `interval` seconds after 1970-01-01 00:00 UTC).

    .. versionadded:: 0.2
    """

    __slots__ = ("_hours", "_interval", "_minutes", "_seconds")
    __match_args__ = ("seconds", "minutes", "hours")

    def __init__(self, seconds: float = 0, minutes: float = 0, hours: float = 0) -> None:
        # Kept: every start of a loop reads it.
        self._interval = validate_interval(seconds, minutes, hours)
        self._seconds = seconds
        self._minutes = minutes
        self._hours = hours

    @property
    def seconds(self) -> float:
        """The seconds component, as given."""
        return self._seconds

    @property
    def minutes(self) -> float:
        """The minutes component, as given."""
        return self._minutes

    @property
    def hours(self) -> float:
        """The hours component, as given."""
        return self._hours

    def _fields(self) -> tuple[Any, ...]:
        return (self._seconds, self._minutes, self._hours)

    @property
    def interval(self) -> float:
        """The total interval in seconds."""
        return self._interval

    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        """Return the first slot of the epoch-aligned grid strictly after ``after``, in UTC.

        The grid is computed in whole microseconds (the resolution of `datetime.datetime`), so it
        does not drift however far from the epoch ``after`` is.

        :return: the next slot, or ``None`` when it is past `datetime.datetime.max`
        :raises ValueError: if ``after`` is naive, or the interval rounds to zero microseconds (a
            zero interval means "as fast as possible" and has no wall-clock slots)
        """
        require_aware(after)
        step = round(self.interval * 1_000_000)
        if step == 0:
            raise ValueError(f"{self!r} has no wall-clock slots: its interval is zero")
        elapsed = (after - _EPOCH) // _MICROSECOND
        try:
            return _EPOCH + (elapsed // step + 1) * step * _MICROSECOND
        except OverflowError:
            return None

    def __or__(self, other: object) -> NoReturn:
        _refuse_union(self)

    def __ror__(self, other: object) -> NoReturn:
        _refuse_union(self)

    def __repr__(self) -> str:
        given = [
            f"{name}={value!r}"
            for name, value in (
                ("seconds", self.seconds),
                ("minutes", self.minutes),
                ("hours", self.hours),
            )
            if value != 0
        ]
        return f"every({', '.join(given) or 'seconds=0'})"


def every(seconds: float = 0, minutes: float = 0, hours: float = 0) -> Every:
    """Run every ``seconds + 60 * minutes + 3600 * hours`` seconds, on the monotonic clock.

    The same interval as ``@loop(seconds=..., minutes=..., hours=...)``: slots are counted from
    the loop's start and do not drift. Only the total must be non-negative; zero runs the loop as
    fast as possible.

    Example::

        every(minutes=5)  # every(minutes=5), interval 300.0

    :raises TypeError: if a component is not an ``int`` or ``float``
    :raises ValueError: if a component is NaN or infinite, or the total is negative

    .. versionadded:: 0.2
    """
    return Every(seconds, minutes, hours)


@final
class Daily(WallClock):
    """Runs at the same times of day, each on the wall clock of its own zone.

    Made by `daily`. `times` is sorted, without duplicates, naive times read as UTC. A time
    skipped by a DST gap runs shifted by the size of the gap (02:30 on a spring-forward day in
    America/New_York runs at 03:30 EDT); a time that happens twice at a fall-back runs once, at
    its second occurrence.

    .. versionadded:: 0.2
    """

    __slots__ = ("_times",)
    __match_args__ = ("times",)

    def __init__(self, times: tuple[datetime.time, ...]) -> None:
        self._times = normalize_times(times)

    @property
    def times(self) -> tuple[datetime.time, ...]:
        """The times of day: sorted, without duplicates, aware (naive ones read as UTC)."""
        return self._times

    def _fields(self) -> tuple[Any, ...]:
        return (self._times,)

    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        """Return the first of `times` strictly after ``after``, in UTC.

        :return: the next run, or ``None`` when it is past `datetime.datetime.max`
        :raises ValueError: if ``after`` is naive
        """
        require_aware(after)
        try:
            return next_time_of_day(self._times, after)
        except OverflowError:
            return None

    def __repr__(self) -> str:
        return f"daily({', '.join(map(repr, self._times))})"


def daily(*times: datetime.time | Sequence[datetime.time]) -> Daily:
    """Run every day at each of ``times``: the schedule of ``@loop(time=...)``.

    Takes the times as arguments or, like ``time=``, one sequence of them. Each time is read on
    the wall clock of its ``tzinfo`` (naive means UTC), so a 09:00 America/New_York run stays at
    09:00 local across DST changes; see `Daily` for gaps and folds.

    Example::

        daily(datetime.time(9), datetime.time(21))
        daily([datetime.time(9, tzinfo=ZoneInfo("Asia/Seoul"))])

    :raises TypeError: if an element is not a `datetime.time`
    :raises ValueError: if no time is given

    .. versionadded:: 0.2
    """
    given = times[0] if len(times) == 1 and not isinstance(times[0], datetime.time) else times
    if isinstance(given, (tuple, list)) and not given:
        raise ValueError("`daily()` needs at least one time")
    return Daily(normalize_times(cast("Sequence[datetime.time]", given)))


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

    __slots__ = ("_schedules",)
    __match_args__ = ("schedules",)

    def __init__(self, schedules: tuple[Schedule, ...]) -> None:
        unique: list[Schedule] = []
        for part in schedules:
            if part not in unique:
                unique.append(part)
        self._schedules = tuple(unique)

    @property
    def schedules(self) -> tuple[Schedule, ...]:
        """The parts, in the order given, each once."""
        return self._schedules

    def _fields(self) -> tuple[Any, ...]:
        return (self._schedules,)

    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        """Return the earliest of the parts' next runs strictly after ``after``, in UTC.

        :raises ValueError: if ``after`` is naive
        """
        require_aware(after)
        runs: list[datetime.datetime] = []
        for part in self._schedules:
            run = part.next_after(after)
            if not isinstance(part, WallClock):
                # A part of the user's own could return anything: say which part did.
                run = check_run(part, after, run)
            if run is not None:
                runs.append(run)
        return min(runs).astimezone(_UTC) if runs else None

    def __repr__(self) -> str:
        return " | ".join(map(repr, self._schedules))


@final
class Checked(WallClock):
    """A schedule of the user's own, as a loop follows it: each answer is checked
    (`check_run`), so that a wrong one names the schedule rather than failing somewhere in
    the loop's arithmetic."""

    __slots__ = ("_schedule",)

    def __init__(self, schedule: Schedule) -> None:
        self._schedule = schedule

    def _fields(self) -> tuple[Any, ...]:
        return (self._schedule,)

    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        return check_run(self._schedule, after, self._schedule.next_after(after))

    def __repr__(self) -> str:
        return repr(self._schedule)
