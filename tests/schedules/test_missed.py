"""Missed slots, grace and jitter: every policy with exact values, no waiting."""

from __future__ import annotations

import datetime
import math
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from anytasks._schedules.cron import cron
from anytasks._schedules.every import every
from anytasks._schedules.missed import (
    MAX_COUNTED,
    IntervalPlan,
    Overrun,
    WallPlan,
    check_grace,
    check_jitter,
    check_overrun,
    draw,
    interval_wake_is_late,
    jittered,
    plan_interval,
    plan_wall,
    plan_woken_wall,
)
from anytasks._schedules.protocol import Schedule

UTC = datetime.timezone.utc
NOON = datetime.datetime(2026, 1, 1, 12, tzinfo=UTC)
MINUTELY = cron("* * * * *")
ALMOST_ONE = math.nextafter(1.0, 0.0)


def at(minutes: float) -> datetime.datetime:
    """``minutes`` after noon."""
    return NOON + datetime.timedelta(minutes=minutes)


class Counted:
    """Wraps a schedule and counts the calls of ``next_after``."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.calls = 0

    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        self.calls += 1
        return self.schedule.next_after(after)


class Until:
    """Every minute on the minute, up to and including ``end``."""

    def __init__(self, end: datetime.datetime) -> None:
        self.end = end

    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        run = MINUTELY.next_after(after)
        return run if run is not None and run <= self.end else None


# Validation


@pytest.mark.parametrize("value", ["burst", "skip", "coalesce"])
def test_check_overrun_accepts_the_policies(value: str) -> None:
    assert check_overrun(value) == value


@pytest.mark.parametrize("value", ["Burst", "", None, 1])
def test_check_overrun_names_the_argument(value: object) -> None:
    message = f"`overrun` must be 'burst', 'skip' or 'coalesce', got {value!r}"
    with pytest.raises(ValueError, match=re.escape(message)):
        check_overrun(value)


def test_check_grace_and_jitter() -> None:
    assert check_grace(None) is None
    assert check_grace(5) == 5.0
    assert type(check_grace(5)) is float
    assert check_grace(0.0) == 0.0
    assert check_jitter(0) == 0.0
    assert check_jitter(2.5) == 2.5


@pytest.mark.parametrize("check", [check_grace, check_jitter])
@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("5", TypeError, "must be a number, not 'str'"),
        (True, TypeError, "must be a number, not 'bool'"),
        (-1, ValueError, "must be a non-negative finite number, got -1"),
        (math.nan, ValueError, "must be a non-negative finite number, got nan"),
        (math.inf, ValueError, "must be a non-negative finite number, got inf"),
    ],
)
def test_bad_grace_and_jitter_name_the_argument(
    check: object, value: object, error: type[Exception], message: str
) -> None:
    assert callable(check)
    name = "grace" if check is check_grace else "jitter"
    if check is check_grace:  # which may be None: the message says so
        message = message.replace(", not", " or None, not").replace(", got", " or None, got")
    with pytest.raises(error, match=re.escape(f"`{name}` {message}")):
        check(value)


def test_jitter_is_not_optional() -> None:
    with pytest.raises(TypeError, match=re.escape("`jitter` must be a number, not 'NoneType'")):
        check_jitter(None)


# plan_wall


def test_the_first_wall_slot_is_the_first_at_or_after_now() -> None:
    # Started exactly on a slot, the loop runs it at once.
    assert plan_wall(MINUTELY, None, at(0), "burst", None) == WallPlan(at(0), 0)
    assert plan_wall(MINUTELY, None, at(0.01), "skip", 0.0) == WallPlan(at(1), 0)


@pytest.mark.parametrize("overrun", ["burst", "skip", "coalesce"])
def test_a_slot_not_yet_due_runs_under_every_policy(overrun: Overrun) -> None:
    assert plan_wall(MINUTELY, at(0), at(0.5), overrun, 0.0) == WallPlan(at(1), 0)
    # Exactly due is not missed.
    assert plan_wall(MINUTELY, at(0), at(1), overrun, 0.0) == WallPlan(at(1), 0)


@pytest.mark.parametrize(
    ("overrun", "grace", "plan"),
    [
        # The 12:00 run lasted until 12:03:30: 12:01, 12:02 and 12:03 were missed.
        ("burst", None, WallPlan(at(1), 0)),
        ("burst", 60.0, WallPlan(at(3), 2)),
        ("burst", 150.0, WallPlan(at(1), 0)),
        ("burst", 0.0, WallPlan(at(4), 3)),
        ("skip", None, WallPlan(at(4), 3)),
        ("skip", 1000.0, WallPlan(at(4), 3)),
        ("coalesce", None, WallPlan(at(3), 2)),
        ("coalesce", 30.0, WallPlan(at(3), 2)),
        ("coalesce", 29.0, WallPlan(at(4), 3)),
    ],
)
def test_missed_wall_slots(overrun: Overrun, grace: float | None, plan: WallPlan) -> None:
    assert plan_wall(MINUTELY, at(0), at(3.5), overrun, grace) == plan


def test_burst_runs_missed_slots_one_by_one_then_returns_to_the_grid() -> None:
    last, now, seen = at(0), at(3.5), []
    for _ in range(4):
        plan = plan_wall(MINUTELY, last, now, "burst", None)
        assert plan.slot is not None
        seen.append(plan.slot)
        last = plan.slot
    assert seen == [at(1), at(2), at(3), at(4)]


def test_coalesce_continues_after_the_coalesced_slot() -> None:
    assert plan_wall(MINUTELY, at(3), at(3.6), "coalesce", None) == WallPlan(at(4), 0)


@pytest.mark.parametrize(
    ("overrun", "grace", "plan"),
    [
        ("burst", None, WallPlan(at(1), 0)),
        ("burst", 0.0, WallPlan(None, 2)),
        ("skip", None, WallPlan(None, 2)),
        ("coalesce", None, WallPlan(at(2), 1)),
        ("coalesce", 0.0, WallPlan(None, 2)),
    ],
)
def test_a_schedule_that_ends_while_missed(
    overrun: Overrun, grace: float | None, plan: WallPlan
) -> None:
    assert plan_wall(Until(at(2)), at(0), at(5), overrun, grace) == plan


def test_an_ended_schedule_plans_nothing() -> None:
    assert plan_wall(Until(at(2)), at(2), at(2.5), "coalesce", None) == WallPlan(None, 0)
    assert plan_wall(Until(at(2)), None, at(2.5), "burst", None) == WallPlan(None, 0)


def test_a_few_missed_slots_are_counted_exactly() -> None:
    every_second = cron("* * * * * *")
    plan = plan_wall(every_second, at(0), at(10) + datetime.timedelta(seconds=0.5), "skip", None)
    assert plan == WallPlan(at(10) + datetime.timedelta(seconds=1), 600)


WEEK = datetime.timedelta(days=7)
HALF_SECOND = datetime.timedelta(seconds=0.5)
ONE_SECOND = datetime.timedelta(seconds=1)


@pytest.mark.parametrize(
    ("overrun", "grace", "slot", "skipped"),
    [
        # A per-second cron after a week's suspend: 604 800 missed slots.
        ("skip", None, NOON + WEEK + ONE_SECOND, MAX_COUNTED),
        ("coalesce", None, NOON + WEEK, MAX_COUNTED),
        ("coalesce", 0.1, NOON + WEEK + ONE_SECOND, MAX_COUNTED),
        ("burst", 5.0, NOON + WEEK - 4 * ONE_SECOND, MAX_COUNTED),
    ],
)
def test_counting_stops_at_the_cap_after_a_long_suspend(
    overrun: Overrun, grace: float | None, slot: datetime.datetime, skipped: int
) -> None:
    schedule = Counted(cron("* * * * * *"))
    plan = plan_wall(schedule, NOON, NOON + WEEK + HALF_SECOND, overrun, grace)
    assert plan == WallPlan(slot, skipped)
    assert schedule.calls <= MAX_COUNTED + 60


def test_coalescing_after_the_cap_finds_the_latest_slot_by_bisection() -> None:
    # Slots every 0.25 s, then none for a day: the latest missed slot is far from `now`.
    quarter = datetime.timedelta(seconds=0.25)
    end = NOON + (MAX_COUNTED + 10) * quarter

    class Dense:
        def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
            run = NOON + ((after - NOON) // quarter + 1) * quarter
            return run if run <= end else NOON + 2 * WEEK

    plan = plan_wall(Dense(), NOON, NOON + WEEK, "coalesce", None)
    assert plan == WallPlan(end, MAX_COUNTED)


# plan_interval


@pytest.mark.parametrize(
    ("now", "plan"),
    [
        (100.0, IntervalPlan(0, 100.0, 0)),
        (95.0, IntervalPlan(0, 100.0, 0)),
        (130.0, IntervalPlan(3, 130.0, 0)),
        (135.0, IntervalPlan(4, 140.0, 0)),
    ],
)
def test_the_first_interval_slot_is_the_first_at_or_after_now(
    now: float, plan: IntervalPlan
) -> None:
    assert plan_interval(100.0, 10.0, None, now, "burst", None) == plan


@pytest.mark.parametrize("overrun", ["burst", "skip", "coalesce"])
def test_an_interval_slot_not_yet_due_runs(overrun: Overrun) -> None:
    assert plan_interval(100.0, 10.0, 0, 105.0, overrun, 0.0) == IntervalPlan(1, 110.0, 0)
    assert plan_interval(100.0, 10.0, 0, 110.0, overrun, 0.0) == IntervalPlan(1, 110.0, 0)


@pytest.mark.parametrize(
    ("overrun", "grace", "plan"),
    [
        # Slot 0 (due 100) ran until 135: slots 1, 2 and 3 (110, 120, 130) were missed.
        ("burst", None, IntervalPlan(1, 110.0, 0)),
        ("burst", 10.0, IntervalPlan(3, 130.0, 2)),
        ("burst", 25.0, IntervalPlan(1, 110.0, 0)),
        ("burst", 0.0, IntervalPlan(4, 140.0, 3)),
        ("skip", None, IntervalPlan(4, 140.0, 3)),
        ("coalesce", None, IntervalPlan(3, 130.0, 2)),
        ("coalesce", 5.0, IntervalPlan(3, 130.0, 2)),
        ("coalesce", 4.0, IntervalPlan(4, 140.0, 3)),
    ],
)
def test_missed_interval_slots(overrun: Overrun, grace: float | None, plan: IntervalPlan) -> None:
    assert plan_interval(100.0, 10.0, 0, 135.0, overrun, grace) == plan


def test_a_long_suspend_costs_the_same_on_the_interval_grid() -> None:
    plan = plan_interval(0.0, 1.0, 0, 604_800.5, "skip", None)
    assert plan == IntervalPlan(604_801, 604_801.0, 604_800)


@pytest.mark.parametrize("overrun", ["burst", "skip", "coalesce"])
def test_a_zero_interval_runs_the_next_index_at_once(overrun: Overrun) -> None:
    assert plan_interval(5.0, 0.0, None, 50.0, overrun, 0.0) == IntervalPlan(0, 5.0, 0)
    assert plan_interval(5.0, 0.0, 7, 50.0, overrun, 0.0) == IntervalPlan(8, 5.0, 0)


def test_interval_boundaries_survive_float_rounding() -> None:
    # 0.1 + 2 * 0.1 is 0.30000000000000004: slot 2 is due exactly then, not missed.
    assert plan_interval(0.1, 0.1, None, 0.1 + 2 * 0.1, "skip", None).index == 2
    # (0.9 + 1 ulp) / 0.1 rounds down to 9, but slot 9 (0.9) is before it.
    now = math.nextafter(0.9, math.inf)
    assert plan_interval(0.0, 0.1, None, now, "skip", None) == IntervalPlan(10, 1.0, 0)


@settings(max_examples=60, deadline=None)
@given(
    anchor=st.floats(0, 1e6),
    interval=st.floats(0.001, 1e4),
    last_index=st.integers(0, 10_000),
    late=st.floats(0, 1e7),
    overrun=st.sampled_from(["burst", "skip", "coalesce"]),
    grace=st.none() | st.floats(0, 1e5),
)
# 1.0 - 0.999 is 0.0010000000000000009: a slot exactly `grace` late, by float rounding.
@example(anchor=0.0, interval=0.001, last_index=0, late=1.0, overrun="burst", grace=0.001)
def test_interval_plans_are_consistent(
    anchor: float,
    interval: float,
    last_index: int,
    late: float,
    overrun: Overrun,
    grace: float | None,
) -> None:
    now = anchor + last_index * interval + late
    plan = plan_interval(anchor, interval, last_index, now, overrun, grace)
    assert plan.due == anchor + plan.index * interval
    assert plan.skipped == plan.index - last_index - 1
    first_due = anchor + (last_index + 1) * interval
    if first_due >= now:
        assert plan == IntervalPlan(last_index + 1, first_due, 0)
        return
    after_now = (plan.due >= now, anchor + (plan.index - 1) * interval < now)
    if overrun == "skip":
        assert after_now == (True, True)
    elif overrun == "coalesce":
        if plan.due < now:
            # The latest missed slot runs...
            assert anchor + (plan.index + 1) * interval >= now
            assert grace is None or now - plan.due <= grace
        else:
            # ...unless it is too late.
            assert after_now == (True, True)
            assert grace is not None
            assert now - (anchor + (plan.index - 1) * interval) > grace
    elif grace is None:
        assert plan.index == last_index + 1
    else:
        # As the plan compares (now - grace), not (now - due): the two round differently.
        assert plan.due >= now - grace
        assert plan.skipped == 0 or anchor + (plan.index - 1) * interval < now - grace


# jittered


def test_jitter_draws_from_what_is_left_of_the_slot() -> None:
    assert jittered(100.0, 200.0, 30.0, lambda: 0.5) == 115.0
    assert jittered(100.0, None, 30.0, lambda: 0.5) == 115.0
    assert jittered(100.0, 110.0, 30.0, lambda: 0.5) == 105.0
    assert jittered(100.0, 110.0, 0.0, lambda: 0.5) == 100.0
    # A zero interval: the next slot is due at once, so there is no room to move.
    assert jittered(100.0, 100.0, 30.0, lambda: 0.5) == 100.0
    assert jittered(100.0, 110.0, 30.0, lambda: 0.0) == 100.0


def test_jitter_stays_strictly_before_the_next_slot() -> None:
    # 0.1 + 0.1 * (1 - ulp) rounds up to 0.2, the next slot.
    assert jittered(0.1, 0.2, 1.0, lambda: ALMOST_ONE) == math.nextafter(0.2, 0.0)
    second = datetime.timedelta(seconds=1)
    assert jittered(NOON, NOON + 10 * second, 30.0, lambda: ALMOST_ONE) == (
        NOON + 10 * second - datetime.timedelta(microseconds=1)
    )


def test_jitter_on_wall_clock_times() -> None:
    second = datetime.timedelta(seconds=1)
    assert jittered(NOON, NOON + 10 * second, 30.0, lambda: 0.5) == NOON + 5 * second
    assert jittered(NOON, None, 30.0, lambda: 0.5) == NOON + 15 * second
    assert jittered(NOON, NOON, 30.0, lambda: 0.5) == NOON


@settings(max_examples=60, deadline=None)
@given(
    due=st.floats(0, 1e9),
    gap=st.floats(0, 1e4),
    jitter=st.floats(0, 1e4),
    fraction=st.floats(0, ALMOST_ONE),
)
def test_jitter_stays_in_its_slot(due: float, gap: float, jitter: float, fraction: float) -> None:
    next_due = due + gap
    start = jittered(due, next_due, jitter, lambda: fraction)
    assert due <= start <= due + jitter
    assert start < next_due or start == due


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)


@settings(max_examples=60, deadline=None)
@given(
    interval=st.integers(1, 600),
    last_index=st.integers(0, 10_000_000),
    late_ms=st.integers(0, 500_000),
    overrun=st.sampled_from(["burst", "skip", "coalesce"]),
    grace=st.none() | st.integers(0, 1000),
)
def test_wall_and_interval_plans_agree_on_the_same_grid(
    interval: int, last_index: int, late_ms: int, overrun: Overrun, grace: int | None
) -> None:
    # every() offers the epoch-aligned grid as a wall-clock schedule: walking it slot by slot
    # must give what the closed form gives (counts stay under the cap here).
    now_ms = last_index * interval * 1000 + late_ms
    last = EPOCH + datetime.timedelta(seconds=last_index * interval)
    now = EPOCH + datetime.timedelta(milliseconds=now_ms)
    grace_s = None if grace is None else float(grace)
    wall = plan_wall(every(seconds=interval), last, now, overrun, grace_s)
    closed = plan_interval(0.0, float(interval), last_index, now_ms / 1000, overrun, grace_s)
    assert wall == WallPlan(EPOCH + datetime.timedelta(seconds=closed.due), closed.skipped)


# -- wake-ups that come late -------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrun", "grace", "woke", "plan"),
    [
        # Waited for 12:01 and woke at 12:01:30: before 12:02 came due, so on time, whatever
        # the policy.
        ("skip", None, 1.5, WallPlan(at(1), 0)),
        ("coalesce", None, 1.5, WallPlan(at(1), 0)),
        # ... unless grace says 30 s is too late (the next slot at or after now runs).
        ("skip", 20.0, 1.5, WallPlan(at(2), 1)),
        ("coalesce", 20.0, 1.5, WallPlan(at(2), 1)),
        ("burst", 20.0, 1.5, WallPlan(at(2), 1)),
        # Woke at 12:04:30: 12:02, 12:03 and 12:04 came due too.
        ("skip", None, 4.5, WallPlan(at(5), 4)),
        ("coalesce", None, 4.5, WallPlan(at(4), 3)),
        ("burst", None, 4.5, WallPlan(at(1), 0)),
        ("burst", 100.0, 4.5, WallPlan(at(3), 2)),
        # Woke exactly as the next slot came due: that one is due now and runs.
        ("skip", None, 2, WallPlan(at(2), 1)),
    ],
)
def test_a_late_wake_is_a_missed_slot(
    overrun: Overrun, grace: float | None, woke: float, plan: WallPlan
) -> None:
    assert plan_woken_wall(MINUTELY, at(1), at(1), at(woke), overrun, grace) == plan


def test_a_wake_is_measured_against_grace_from_its_jittered_start() -> None:
    # Jitter moved the start of the 12:01 run to 12:01:40; woken at 12:01:50, 10 s after it.
    start = at(1) + datetime.timedelta(seconds=40)
    assert plan_woken_wall(MINUTELY, at(1), start, at(1 + 50 / 60), "skip", 15.0) == WallPlan(
        at(1), 0
    )


def test_the_last_slot_of_a_schedule_woken_late_runs() -> None:
    # No later slot can come due: only grace makes its wake-up late.
    ending = Until(at(1))
    assert plan_woken_wall(ending, at(1), at(1), at(30), "skip", None) == WallPlan(at(1), 0)
    assert plan_woken_wall(ending, at(1), at(1), at(30), "skip", 60.0) == WallPlan(None, 1)


@pytest.mark.parametrize(
    ("due", "start", "interval", "now", "grace", "late"),
    [
        (10.0, 10.0, 10.0, 10.001, None, False),  # the event loop's latency
        (10.0, 10.0, 10.0, 19.999, None, False),
        (10.0, 10.0, 10.0, 20.0, None, True),  # the next slot is due as well
        (10.0, 10.0, 10.0, 15.0, 4.0, True),  # past grace
        (10.0, 13.0, 10.0, 16.0, 4.0, False),  # grace counts from the jittered start
        (10.0, 10.0, 0.0, 99.0, None, False),  # a zero interval is never behind
    ],
)
def test_interval_wake_is_late(
    due: float, start: float, interval: float, now: float, grace: float | None, late: bool
) -> None:
    assert interval_wake_is_late(due, start, interval, now, grace) is late


@pytest.mark.parametrize("drawn", [-0.1, 1.0, 1.5, math.nan, math.inf, "0.5", None, True])
def test_draws_outside_zero_to_one_are_refused(drawn: object) -> None:
    with pytest.raises(ValueError, match=r"^`random` must return a float in \[0, 1\), but it"):
        draw(lambda: drawn)  # type: ignore[arg-type, return-value]
    assert draw(lambda: 0.0) == 0.0
    assert draw(lambda: ALMOST_ONE) == ALMOST_ONE
