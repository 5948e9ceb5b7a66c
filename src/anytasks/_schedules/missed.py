"""What to do about missed slots, and where in its slot a run starts: pure, ``now`` passed in.

A slot is *missed* when the loop could not start it on time: the body ran past it, or the
process was suspended. The overrun policy says which slots still run; ``grace`` drops slots that
could only start too late; jitter moves a run within its slot without moving the grid.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from typing import Literal, final, overload

from .._checks import check_optional_seconds, check_seconds
from .._frozen import Frozen
from .protocol import Schedule

Overrun = Literal["burst", "skip", "coalesce"]
_OVERRUNS: tuple[Overrun, ...] = ("burst", "skip", "coalesce")

#: Missed wall-clock slots are counted one by one up to this many; past it, `WallPlan.skipped`
#: reports this number ("at least this many") and the next slot is found by a jump instead.
#: A per-second cron after a week's suspend has 604 800 missed slots, and walking them would
#: block the event loop for seconds; a thousand calls of a cron's ``next_after`` take about
#: 14 ms (3 ms for `daily`), and the counts of ordinary overruns stay exact.
MAX_COUNTED = 1000

_MICROSECOND = datetime.timedelta(microseconds=1)


def check_overrun(value: object) -> Overrun:
    """Return ``value`` if it is an overrun policy: ``"burst"``, ``"skip"`` or ``"coalesce"``.

    :raises ValueError: for any other value
    """
    for policy in _OVERRUNS:
        if isinstance(value, str) and value == policy:
            return policy
    raise ValueError(f"`overrun` must be 'burst', 'skip' or 'coalesce', got {value!r}")


def check_grace(value: object) -> float | None:
    """Return ``grace`` as a float, or ``None`` (no limit on lateness).

    :raises TypeError: if it is neither ``None`` nor an ``int`` or ``float``
    :raises ValueError: if it is negative, NaN or infinite
    """
    return check_optional_seconds("grace", value)


def check_jitter(value: object) -> float:
    """Return ``jitter`` as a float; ``0`` means none.

    :raises TypeError: if it is not an ``int`` or ``float``
    :raises ValueError: if it is negative, NaN or infinite
    """
    return check_seconds("jitter", value)


@final
class WallPlan(Frozen):
    """The next wall-clock slot to run (``None``: the schedule has ended) and the slots dropped
    before it (at most `MAX_COUNTED`)."""

    __slots__ = ("skipped", "slot")
    __match_args__ = ("slot", "skipped")

    slot: datetime.datetime | None
    skipped: int

    def __init__(self, slot: datetime.datetime | None, skipped: int) -> None:
        self._set(slot=slot, skipped=skipped)

    def __repr__(self) -> str:
        return f"WallPlan(slot={self.slot!r}, skipped={self.skipped!r})"


@final
class IntervalPlan(Frozen):
    """The index of the next interval slot to run, its due time on the monotonic clock
    (``anchor + index * interval``), and the slots dropped before it."""

    __slots__ = ("due", "index", "skipped")
    __match_args__ = ("index", "due", "skipped")

    index: int
    due: float
    skipped: int

    def __init__(self, index: int, due: float, skipped: int) -> None:
        self._set(index=index, due=due, skipped=skipped)

    def __repr__(self) -> str:
        return f"IntervalPlan(index={self.index!r}, due={self.due!r}, skipped={self.skipped!r})"


def plan_wall(
    schedule: Schedule,
    last: datetime.datetime | None,
    now: datetime.datetime,
    overrun: Overrun,
    grace: float | None,
) -> WallPlan:
    """Choose the next slot of a wall-clock ``schedule`` to run, after the slot ``last``.

    Call it when choosing what to wait for, with ``now`` the time the previous iteration ended;
    once that wait has ended, `plan_woken_wall` decides whether the wake-up was on time.

    The first slot (``last`` is ``None``) is the first at or after ``now``, so a loop started
    exactly on a slot runs it at once. After that the candidate is ``schedule.next_after(last)``;
    if it is not before ``now`` it runs. Otherwise it was missed, and:

    - ``"burst"`` runs the missed slots one by one: it returns the candidate, and the next call
      (with ``last`` set to it) the slot after it, until the loop has caught up;
    - ``"skip"`` drops every missed slot and returns the first slot at or after ``now``;
    - ``"coalesce"`` runs once for all of them: it returns the latest missed slot (the others are
      skipped), so the next call continues after it.

    With ``grace``, a slot that would start more than ``grace`` seconds late is skipped too:
    under ``"burst"`` slot by slot, under ``"coalesce"`` the coalesced slot (then the first slot
    at or after ``now`` runs). ``"skip"`` never runs a late slot, so ``grace`` changes nothing.

    Counting is bounded: past `MAX_COUNTED` missed slots the count stops there and the slot to run
    is found by a jump (for ``"coalesce"``, a bisection over time with ``next_after``, about 40
    calls for a week), so a long suspend costs milliseconds, not a walk over every slot.

    Example::

        # A per-minute cron whose 12:00 run lasted until 12:03:30: one run, for 12:03.
        plan_wall(cron("* * * * *"), noon, noon + timedelta(minutes=3.5), "coalesce", None)
        # WallPlan(slot=<12:03>, skipped=2)

    :param last: the slot that ran (or was dropped) last, ``None`` before the first
    :param now: the current wall-clock time, aware
    """
    if last is None:
        return WallPlan(schedule.next_after(now - _MICROSECOND), 0)
    candidate = schedule.next_after(last)
    if candidate is None or candidate >= now:
        return WallPlan(candidate, 0)
    return _plan_missed_wall(schedule, candidate, now, overrun, grace)


def plan_woken_wall(
    schedule: Schedule,
    slot: datetime.datetime,
    start: datetime.datetime,
    now: datetime.datetime,
    overrun: Overrun,
    grace: float | None,
) -> WallPlan:
    """Decide what runs after a wait for ``slot`` (due to start at ``start``, jitter included)
    ended at ``now``.

    A wake-up is on time, and ``slot`` runs, unless it came late: after the next slot of the
    schedule had come due too (the machine was suspended, or the event loop blocked), or, with
    ``grace``, more than ``grace`` seconds after ``start``. A late ``slot`` is a missed slot like
    any other, and ``overrun`` and ``grace`` choose what runs, as `plan_wall` does: ``"coalesce"``
    runs once for every slot that passed, ``"skip"`` none of them (the returned slot is then in
    the future: wait for it), ``"burst"`` each. A wake-up late only by the event loop's latency
    (less than a slot) runs its slot, so ``"skip"`` does not drop a slot for being a millisecond
    late.

    Example::

        # A daily 09:00 loop waiting for Tuesday's run wakes on Thursday at 10:00: one run.
        plan_woken_wall(daily(time(9)), tuesday_9, tuesday_9, thursday_10, "coalesce", None)
        # WallPlan(slot=<Thursday 09:00>, skipped=2)
    """
    following = schedule.next_after(slot)
    late = following is not None and following <= now
    if not late and (grace is None or (now - start).total_seconds() <= grace):
        return WallPlan(slot, 0)
    return _plan_missed_wall(schedule, slot, now, overrun, grace)


def _plan_missed_wall(
    schedule: Schedule,
    candidate: datetime.datetime,
    now: datetime.datetime,
    overrun: Overrun,
    grace: float | None,
) -> WallPlan:
    """`plan_wall` for a ``candidate`` slot before ``now``."""
    if overrun == "burst":
        if grace is None:
            return WallPlan(candidate, 0)
        skipped, following = _skip_before(schedule, candidate, now - _seconds(grace))
        return WallPlan(following, skipped)
    if overrun == "skip":
        skipped, following = _skip_before(schedule, candidate, now)
        return WallPlan(following, skipped)

    missed, latest = _latest_before(schedule, candidate, now)
    if grace is not None and now - latest > _seconds(grace):
        return WallPlan(schedule.next_after(latest), min(missed, MAX_COUNTED))
    return WallPlan(latest, missed - 1)


def _seconds(value: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=value)


def _skip_before(
    schedule: Schedule, slot: datetime.datetime, limit: datetime.datetime
) -> tuple[int, datetime.datetime | None]:
    """Count the slots from ``slot`` on that are before ``limit``; return the count (at most
    `MAX_COUNTED`) and the first slot at or after ``limit``."""
    count = 0
    following: datetime.datetime | None = slot
    while following is not None and following < limit:
        if count == MAX_COUNTED:
            return count, schedule.next_after(limit - _MICROSECOND)
        count += 1
        following = schedule.next_after(following)
    return count, following


def _latest_before(
    schedule: Schedule, slot: datetime.datetime, limit: datetime.datetime
) -> tuple[int, datetime.datetime]:
    """Count the slots from ``slot`` (itself before ``limit``) on that are before ``limit``;
    return the count (at most one more than `MAX_COUNTED`, since all but the latest are skipped)
    and the latest of them."""
    count = 1
    following = schedule.next_after(slot)
    while following is not None and following < limit:
        if count > MAX_COUNTED:
            return count, _bisect_latest(schedule, following, limit)
        count += 1
        slot = following
        following = schedule.next_after(slot)
    return count, slot


def _bisect_latest(
    schedule: Schedule, low: datetime.datetime, limit: datetime.datetime
) -> datetime.datetime:
    # `low` is a slot before `limit`, and no slot lies in [high, limit). Each probe asks for the
    # first slot at or after the midpoint, so the window halves and ends at one microsecond, the
    # resolution of datetime: then `low` is the latest slot before `limit`.
    high = limit
    while high - low > _MICROSECOND:
        middle = low + (high - low) // 2
        found = schedule.next_after(middle - _MICROSECOND)
        if found is not None and found < high:
            low = found
        else:
            high = middle
    return low


def plan_interval(
    anchor: float,
    interval: float,
    last_index: int | None,
    now: float,
    overrun: Overrun,
    grace: float | None,
) -> IntervalPlan:
    """Choose the next slot of the interval grid ``anchor + index * interval`` to run.

    The same rules as `plan_wall`, on the monotonic clock and in closed form, so any number of
    missed slots costs the same: the first slot (``last_index`` is ``None``) is the first at or
    after ``now`` (index 0 when the anchor is now or later); after that slot ``last_index + 1``
    runs unless it is before ``now``, and then ``"burst"`` runs it (and ``grace`` skips those more
    than ``grace`` late), ``"skip"`` runs the first slot at or after ``now``, and ``"coalesce"``
    the latest missed one (or, if that is more than ``grace`` late, the first at or after
    ``now``).

    A zero interval means "as fast as possible": every slot is due at the anchor, no slot is
    ever missed, and every policy runs the next index.

    Example::

        plan_interval(100.0, 10.0, last_index=0, now=135.0, overrun="skip", grace=None)
        # IntervalPlan(index=4, due=140.0, skipped=3)

    :param anchor: the due time of slot 0 on the monotonic clock
    :param interval: the grid step in seconds, non-negative
    :param last_index: the index that ran (or was dropped) last, ``None`` before the first
    :param now: the current time on the same clock as ``anchor``
    """
    if interval == 0:
        index = 0 if last_index is None else last_index + 1
        return IntervalPlan(index, anchor, 0)
    first_due = _first_at_or_after(anchor, interval, now)
    if last_index is None:
        index = max(first_due, 0)
        return IntervalPlan(index, anchor + index * interval, 0)
    candidate = last_index + 1
    if anchor + candidate * interval >= now:
        return IntervalPlan(candidate, anchor + candidate * interval, 0)

    if overrun == "burst":
        index = candidate
        if grace is not None:
            index = max(candidate, _first_at_or_after(anchor, interval, now - grace))
    elif overrun == "skip":
        index = first_due
    else:
        index = first_due - 1
        if grace is not None and now - (anchor + index * interval) > grace:
            index = first_due
    return IntervalPlan(index, anchor + index * interval, index - candidate)


def interval_wake_is_late(
    due: float, start: float, interval: float, now: float, grace: float | None
) -> bool:
    """Whether a wait for the interval slot ``due`` (to start at ``start``, jitter included)
    that ended at ``now`` ended late: the next slot had come due too, or, with ``grace``, more
    than ``grace`` seconds had passed since ``start``.

    A late slot is missed: ``plan_interval(due - interval, interval, 0, now, ...)`` then says
    what runs, as for a body that ran long. A wake-up late by less than a slot (the event
    loop's latency) is on time, so ``"skip"`` does not drop a slot for being a millisecond late.
    """
    if interval <= 0:
        return False  # a zero interval has no later slot: it is never behind
    return now >= due + interval or (grace is not None and now - start > grace)


def _first_at_or_after(anchor: float, interval: float, moment: float) -> int:
    """The smallest index whose due time ``anchor + index * interval`` is not before ``moment``."""
    index = math.ceil((moment - anchor) / interval)
    # The division rounds; settle the boundary with the same expression the plans use for `due`.
    while anchor + (index - 1) * interval >= moment:
        index -= 1
    while anchor + index * interval < moment:
        index += 1
    return index


@overload
def jittered(
    due: float, next_due: float | None, jitter: float, random: Callable[[], float]
) -> float: ...
@overload
def jittered(
    due: datetime.datetime,
    next_due: datetime.datetime | None,
    jitter: float,
    random: Callable[[], float],
) -> datetime.datetime: ...
def jittered(
    due: float | datetime.datetime,
    next_due: float | datetime.datetime | None,
    jitter: float,
    random: Callable[[], float],
) -> float | datetime.datetime:
    """Return when a run due at ``due`` starts: ``due`` plus a uniform offset in ``[0, jitter)``.

    The offset is drawn from what is left of the slot: when ``next_due`` is known and closer than
    ``jitter``, from ``[0, next_due - due)``, so the run stays strictly before the next slot and
    the draw stays uniform (clamping would pile runs up at the end of the slot). Only the start of
    this run moves; the grid, and so every later slot, does not. With ``next_due`` not after
    ``due`` (a zero interval) or a zero ``jitter`` the result is ``due``.

    Works on monotonic seconds (``float``) and on aware datetimes alike; ``random`` returns a
    float in ``[0, 1)``, like `random.random`, and is injected so tests can fix it.

    Example::

        jittered(100.0, 110.0, jitter=30.0, random=lambda: 0.5)  # 105.0
    """
    fraction = draw(random)
    if isinstance(due, datetime.datetime):
        assert next_due is None or isinstance(next_due, datetime.datetime)
        end = due + _seconds(jitter)
        if next_due is not None and next_due < end:
            end = max(next_due, due)
        start = due + (end - due) * fraction
        # timedelta * float rounds to the microsecond, which can reach the end of the span.
        if start >= end > due:
            start = end - _MICROSECOND
        return start
    assert not isinstance(next_due, datetime.datetime)
    stop = due + jitter
    if next_due is not None and next_due < stop:
        stop = max(next_due, due)
    moment = due + (stop - due) * fraction
    if moment >= stop > due:
        moment = max(due, math.nextafter(stop, -math.inf))
    return moment


def draw(random: Callable[[], float]) -> float:
    """Call ``random`` (a loop's ``random=``) and return what it drew, checked.

    :raises ValueError: if the draw is not a number in ``[0, 1)`` (a negative one would start a
        run before its slot, and NaN would make a wait that never ends).
    """
    fraction = random()
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, (int, float))
        or not 0 <= fraction < 1  # NaN too
    ):
        raise ValueError(f"`random` must return a float in [0, 1), but it returned {fraction!r}")
    return fraction
