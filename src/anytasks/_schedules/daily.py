"""`daily`: times of day, each on the wall clock of its own zone, correct across DST changes.

The calendar arithmetic is pure, with ``after`` always passed in, so DST gaps and folds and
midnight wrap-around are tested without waiting.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import cast, final

from .protocol import require_aware
from .union import WallClock

_UTC = datetime.timezone.utc

_ONE_DAY = datetime.timedelta(days=1)

# Local dates tried, relative to the local date of ``after``. The day before is needed when the
# clock crossed midnight in a transition: a gap ending at midnight (America/Nuuk springs from
# 23:00 to 00:00) pushes yesterday's 23:30 into today, and a fall-back across midnight
# (America/St_Johns went from 00:01 back to 23:01 until 2011) repeats yesterday's 23:45 after
# today has begun. The day after is always late enough: its occurrence is the last instant the
# clock shows that date and time, while the clock at ``after`` still shows an earlier date.
_DAY_OFFSETS = (-1, 0, 1)


def normalize_times(time: datetime.time | Sequence[datetime.time]) -> tuple[datetime.time, ...]:
    """Return the times of day as a sorted tuple of aware times without duplicates.

    Naive times mean UTC. Two times are duplicates when they have the same clock time and the
    same ``tzinfo``; the same clock time in two zones is kept twice. The order is by clock time,
    then by ``str(tzinfo)``, so it does not depend on the order given.

    :param time: one time of day, or a non-empty sequence of them
    :raises TypeError: if ``time`` is neither a time nor a sequence (a ``str`` or ``bytes`` is
        not accepted as one), or an element is not a time
    :raises ValueError: if the sequence is empty
    """
    if isinstance(time, datetime.time):
        given: Sequence[datetime.time] = (time,)
    elif isinstance(time, Sequence) and not isinstance(time, (str, bytes)):
        if not time:
            raise ValueError("`time` must not be empty")
        given = time
    else:
        raise TypeError(
            f"`time` must be a datetime.time or a sequence of them, not {type(time).__name__!r}"
        )

    unique: dict[tuple[int, int, int, int, datetime.tzinfo], datetime.time] = {}
    for index, item in enumerate(given):
        # datetime.datetime is not a datetime.time subclass, so it is rejected here too.
        if not isinstance(item, datetime.time):
            raise TypeError(
                f"`time[{index}]` must be a datetime.time, not {type(item).__name__!r}"
            )
        # fold is dropped: resolve_local picks the occurrence of an ambiguous time itself.
        tz = _UTC if item.tzinfo is None else item.tzinfo
        key = (item.hour, item.minute, item.second, item.microsecond, tz)
        unique.setdefault(key, item.replace(tzinfo=tz, fold=0))
    return tuple(
        sorted(
            unique.values(),
            key=lambda t: (t.hour, t.minute, t.second, t.microsecond, str(t.tzinfo)),
        )
    )


def resolve_local(day: datetime.date, at: datetime.time) -> datetime.datetime:
    """Return the aware datetime at which the wall clock of ``at``'s zone shows ``at`` on ``day``.

    A time skipped by a DST gap is moved forward by the size of the gap (02:30 on a
    spring-forward day in America/New_York becomes 03:30 EDT). A time that happens twice at a
    fall-back resolves to the second occurrence (``fold=1``), so a loop never runs twice.

    :param day: the local calendar date
    :param at: an aware time of day; its ``tzinfo`` is the zone of the wall clock
    :raises ValueError: if ``at`` is naive
    """
    tz = at.tzinfo
    if tz is None:
        raise ValueError(f"`at` must be an aware datetime.time, got {at!r}")
    local = datetime.datetime.combine(day, at.replace(fold=0))
    # A fixed offset has neither gaps nor folds: skip the probes on the common UTC path.
    if isinstance(tz, datetime.timezone):
        return local

    wall = local.replace(tzinfo=None)
    if local.astimezone(_UTC).astimezone(tz).replace(tzinfo=None) != wall:
        # The wall time does not exist. Wall-clock arithmetic on an aware datetime keeps the
        # zone, so adding the gap lands on the same reading of the clock after the jump.
        gap = _utcoffset(local + _ONE_DAY) - _utcoffset(local - _ONE_DAY)
        return local + gap
    second = local.replace(fold=1)
    if _utcoffset(second) != _utcoffset(local):
        return second
    return local


def next_time_of_day(
    times: Sequence[datetime.time], after: datetime.datetime
) -> datetime.datetime:
    """Return the earliest occurrence of any of ``times`` strictly later than ``after``, in UTC.

    Each time is read on the wall clock of its own zone and resolved with `resolve_local`, so a
    daily 09:00 America/New_York loop stays at 09:00 local across DST changes. A result equal to
    ``after`` is skipped, so passing the previous result gives the next run.

    :param times: aware times of day, as returned by `normalize_times`
    :param after: an aware datetime in any zone
    :return: an aware datetime with ``tzinfo`` set to `datetime.timezone.utc`
    :raises ValueError: if ``after`` is naive
    :raises OverflowError: if no time has an occurrence after ``after`` before
        `datetime.datetime.max`
    """
    if after.utcoffset() is None:
        raise ValueError("`after` must be an aware datetime")
    candidates = [
        occurrence for at in times if (occurrence := _next_occurrence(at, after)) is not None
    ]
    if not candidates:
        raise OverflowError(f"no time of day follows {after!r} before datetime.max")
    return min(candidates)


def _next_occurrence(at: datetime.time, after: datetime.datetime) -> datetime.datetime | None:
    """The first occurrence of ``at`` strictly later than ``after``, in UTC, or ``None`` if it is
    past `datetime.datetime.max`."""
    try:
        today = after.astimezone(at.tzinfo).date()
    except OverflowError:
        if after.year > 1:
            return None  # the clock of `at` reads past datetime.max: no later date
        # It reads before datetime.min: the first date there is comes later.
        today = datetime.date.min
    for offset in _DAY_OFFSETS:
        try:
            occurrence = resolve_local(today + offset * _ONE_DAY, at).astimezone(_UTC)
        except OverflowError:
            # The date, or the instant, is out of datetime's range: before datetime.min (then
            # a later date may fit) or past datetime.max (then no later one does either).
            continue
        # Occurrences grow with the date, so the first one past `after` is this time's next;
        # `occurrence` is in UTC, so this compares instants even when `after` is in a fold.
        if occurrence > after:
            return occurrence
    return None


def _utcoffset(moment: datetime.datetime) -> datetime.timedelta:
    offset = moment.utcoffset()
    # Only reachable with a tzinfo whose utcoffset() breaks the tzinfo contract.
    assert offset is not None
    return offset


@final
class Daily(WallClock):
    """Runs at the same times of day, each on the wall clock of its own zone.

    Made by `daily`. `times` is sorted, without duplicates, naive times read as UTC. A time
    skipped by a DST gap runs shifted by the size of the gap (02:30 on a spring-forward day in
    America/New_York runs at 03:30 EDT); a time that happens twice at a fall-back runs once, at
    its second occurrence.

    .. versionadded:: 0.2
    """

    __slots__ = ("times",)
    __match_args__ = ("times",)

    times: tuple[datetime.time, ...]
    """The times of day: sorted, without duplicates, aware (naive ones read as UTC)."""

    def __init__(self, times: tuple[datetime.time, ...]) -> None:
        self._set(times=normalize_times(times))

    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        """Return the first of `times` strictly after ``after``, in UTC.

        :return: the next run, or ``None`` when it is past `datetime.datetime.max`
        :raises ValueError: if ``after`` is naive
        """
        require_aware(after)
        try:
            return next_time_of_day(self.times, after)
        except OverflowError:
            return None

    def __repr__(self) -> str:
        return f"daily({', '.join(map(repr, self.times))})"


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
