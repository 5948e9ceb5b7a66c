"""Waits that end late: a suspended machine, a blocked event loop, a schedule changed or ended
while the loop could not run.

A slot whose wait ended after the next slot had come due too (or past ``grace=``) is a missed
slot like one a long body missed: ``overrun=`` and ``grace=`` choose what runs. Suspends are
simulated with ``anytasks.testing.suspend()`` (the wall clock jumps, the event loop's clock stands
still), a blocked event loop with ``anytasks.testing.jump()`` (both clocks jump) on virtual time,
and with a real blocking call on uvloop.
"""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Callable

import anyio
import pytest

import anytasks
import anytasks.testing
from anytasks import LoopState
from anytasks.testing import wall_now

pytestmark = pytest.mark.anyio

MONDAY_8 = datetime.datetime(2026, 1, 5, 8, 0, tzinfo=datetime.timezone.utc)  # a Monday
NINE = datetime.time(9, 0)


def clock_text() -> str:
    return wall_now().strftime("%a %H:%M:%S")


async def suspend_at(elapsed: float, seconds: float) -> None:
    """Suspend the machine ``elapsed`` seconds (event loop clock) after the test began."""
    await anyio.sleep(elapsed)
    anytasks.testing.suspend(seconds)


# -- a suspend while a wall-clock loop waits -------------------------------------------------

# Asleep from Monday 11:59:30 to Thursday 09:59:30 (70 hours): the wait's one-minute step ends
# at Monday 12:00 on the event loop's clock, which is Thursday 10:00 on the wall clock.
ASLEEP_AT = 4 * 3600 - 30  # after the test began at Monday 08:00
ASLEEP_FOR = 70 * 3600


@pytest.mark.virtual_time
@pytest.mark.parametrize("virtual_start", [MONDAY_8])
@pytest.mark.parametrize(
    ("overrun", "expected"),
    [
        # Tuesday's, Wednesday's and Thursday's 09:00 passed: one run for all three.
        ("coalesce", [("Mon 09:00:00", 0), ("Thu 10:00:00", 2), ("Fri 09:00:00", 2)]),
        # None of them runs: the next is Friday's.
        ("skip", [("Mon 09:00:00", 0), ("Fri 09:00:00", 3), ("Sat 09:00:00", 3)]),
        # Each of them runs, back to back, then Friday's.
        (
            "burst",
            [
                ("Mon 09:00:00", 0),
                ("Thu 10:00:00", 0),
                ("Thu 10:00:00", 0),
                ("Thu 10:00:00", 0),
                ("Fri 09:00:00", 0),
            ],
        ),
    ],
)
async def test_a_daily_loop_after_a_suspend_without_grace(
    overrun: str, expected: list[tuple[str, int]]
) -> None:
    seen: list[tuple[str, int]] = []

    @anytasks.loop(time=NINE, count=len(expected), overrun=overrun)  # type: ignore[call-overload]
    async def report() -> None:
        seen.append((clock_text(), report.skipped))

    async with anyio.create_task_group() as tg:
        tg.start_soon(report.run)
        tg.start_soon(suspend_at, ASLEEP_AT, ASLEEP_FOR)
    assert seen == expected


@pytest.mark.virtual_time
@pytest.mark.parametrize("virtual_start", [MONDAY_8])
@pytest.mark.parametrize(
    ("overrun", "expected_ticks", "expected_skipped"),
    [
        ("coalesce", [(0, "Mon 09:00", "Mon 09:00:00"), (1, "Thu 09:00", "Thu 10:00:00")], 2),
        ("skip", [(0, "Mon 09:00", "Mon 09:00:00"), (1, "Fri 09:00", "Fri 09:00:00")], 3),
    ],
)
async def test_ticks_after_a_suspend_without_grace(
    overrun: str, expected_ticks: list[tuple[int, str, str]], expected_skipped: int
) -> None:
    seen: list[tuple[int, str, str]] = []
    ticks = anytasks.ticks(time=NINE, count=2, overrun=overrun)  # type: ignore[call-overload]
    async with anyio.create_task_group() as tg:
        tg.start_soon(suspend_at, ASLEEP_AT, ASLEEP_FOR)
        async for tick in ticks:
            seen.append((tick.index, tick.scheduled.strftime("%a %H:%M"), clock_text()))
    assert seen == expected_ticks
    assert ticks.skipped == expected_skipped


@pytest.mark.virtual_time
@pytest.mark.parametrize("virtual_start", [MONDAY_8])
@pytest.mark.parametrize(
    ("overrun", "grace", "expected"),
    [
        # Asleep from 08:59:30 to 09:29:30: no later slot came due, so 09:00 runs, late, under
        # every policy ...
        ("skip", None, ("Mon 09:30:00", 0)),
        ("coalesce", None, ("Mon 09:30:00", 0)),
        # ... unless grace= drops it: the wake came 30 minutes after it.
        ("skip", 600.0, ("Tue 09:00:00", 1)),
        ("coalesce", 600.0, ("Tue 09:00:00", 1)),
    ],
)
async def test_a_suspend_shorter_than_a_slot(
    overrun: str, grace: float | None, expected: tuple[str, int]
) -> None:
    seen: list[tuple[str, int]] = []

    @anytasks.loop(cron="0 9 * * *", count=1, overrun=overrun, grace=grace)  # type: ignore[call-overload]
    async def job() -> None:
        seen.append((clock_text(), job.skipped))

    async with anyio.create_task_group() as tg:
        tg.start_soon(job.run)
        tg.start_soon(suspend_at, 3600 - 30, 30 * 60)
    assert seen == [expected]


# -- a blocked event loop while an interval loop waits ---------------------------------------


def blocker(backend_name: str) -> tuple[float, Callable[[float], None]]:
    """The time unit of a backend, and how to block its event loop for a while."""
    if backend_name == "asyncio+uvloop":
        return 0.1, time.sleep  # real time: really block the event loop
    return 1.0, anytasks.testing.jump


@pytest.mark.parametrize(
    ("overrun", "grace", "expected", "skipped"),
    [
        # every(1 s); the event loop is blocked from 0.3 s to 3.8 s, so slot 1 wakes at 3.8 s,
        # when slots 2 and 3 are due as well.
        ("skip", None, [0, 4, 5], 3),
        ("burst", 0.5, [0, 4, 5], 3),
        ("coalesce", None, [0, 3.8, 4], 2),
        ("coalesce", 0.5, [0, 4, 5], 3),
        ("burst", None, [0, 3.8, 3.8, 3.8, 4], 0),
    ],
)
async def test_an_interval_loop_whose_wait_ended_late(
    backend_name: str, overrun: str, grace: float | None, expected: list[float], skipped: int
) -> None:
    unit, block = blocker(backend_name)
    start = anyio.current_time()
    seen: list[float] = []

    @anytasks.loop(  # type: ignore[call-overload]
        seconds=unit,
        count=len(expected),
        overrun=overrun,
        grace=None if grace is None else grace * unit,
    )
    async def job() -> None:
        seen.append((anyio.current_time() - start) / unit)

    async def stall() -> None:
        await anyio.sleep(0.3 * unit)
        block(3.5 * unit)

    async with anyio.create_task_group() as tg:
        tg.start_soon(job.run)
        tg.start_soon(stall)
    if backend_name == "asyncio+uvloop":
        # Real time: the order and the slots, within a scheduling margin.
        assert len(seen) == len(expected)
        assert seen == pytest.approx(expected, abs=0.05 if unit == 1 else 0.6)
    else:
        assert seen == pytest.approx(expected, abs=1e-9)
    assert job.last_end is not None


@pytest.mark.virtual_time
async def test_a_wake_late_by_less_than_a_slot_runs_its_slot() -> None:
    # Blocked from 0.3 to 1.5 s: slot 1 wakes 0.5 s late, before slot 2 is due: it runs, under
    # "skip" too (a wake-up late by the event loop's latency drops nothing).
    start = anyio.current_time()
    seen: list[tuple[float, int]] = []

    @anytasks.loop(seconds=1, count=3, overrun="skip")
    async def job() -> None:
        seen.append((anyio.current_time() - start, job.skipped))

    async def stall() -> None:
        await anyio.sleep(0.3)
        anytasks.testing.jump(1.2)

    async with anyio.create_task_group() as tg:
        tg.start_soon(job.run)
        tg.start_soon(stall)
    assert seen == [(0, 0), (pytest.approx(1.5), 0), (2, 0)]


@pytest.mark.virtual_time
async def test_ticks_of_an_interval_whose_wait_ended_late() -> None:
    start = anyio.current_time()
    seen: list[tuple[int, float]] = []
    ticks = anytasks.ticks(seconds=1, count=3, overrun="skip")

    async def stall() -> None:
        await anyio.sleep(0.3)
        anytasks.testing.jump(3.5)

    async with anyio.create_task_group() as tg:
        tg.start_soon(stall)
        async for tick in ticks:
            seen.append((tick.index, anyio.current_time() - start))
    assert seen == [(0, 0), (1, 4), (2, 5)]
    assert ticks.skipped == 3


# -- change_interval() to a wall-clock schedule ---------------------------------------------


@pytest.mark.virtual_time
@pytest.mark.parametrize("virtual_start", [MONDAY_8])
async def test_a_new_daily_time_plans_from_the_change() -> None:
    # Monday 09:00 ran; at 15:00 the loop moves to 12:00, which passed today before the change:
    # the next run is Tuesday's 12:00, not one at once.
    seen: list[str] = []

    @anytasks.loop(time=NINE, count=2)
    async def report() -> None:
        seen.append(clock_text())

    async def change() -> None:
        await anyio.sleep(7 * 3600)  # Monday 15:00
        report.change_interval(time=datetime.time(12, 0))

    async with anyio.create_task_group() as tg:
        tg.start_soon(report.run)
        tg.start_soon(change)
    assert seen == ["Mon 09:00:00", "Tue 12:00:00"]
    assert report.last_end is not None
    assert report.last_end.iterations == 2


@pytest.mark.virtual_time
@pytest.mark.parametrize("virtual_start", [MONDAY_8.replace(hour=9)])
async def test_back_to_a_cron_after_an_interval_plans_from_the_change() -> None:
    # */15 runs at 09:00; minutes=10 from 09:05 runs at 09:10, 09:20, 09:30; back to */15 at
    # 09:35: the next run is 09:45, not one at once for 09:15 or 09:30.
    seen: list[str] = []

    @anytasks.loop(cron="*/15 * * * *", count=5)
    async def job() -> None:
        seen.append(wall_now().strftime("%H:%M"))

    async def change() -> None:
        await anyio.sleep(5 * 60)
        job.change_interval(minutes=10)
        await anyio.sleep(30 * 60)
        job.change_interval(cron="*/15 * * * *")

    async with anyio.create_task_group() as tg:
        tg.start_soon(job.run)
        tg.start_soon(change)
    assert seen == ["09:00", "09:10", "09:20", "09:30", "09:45"]


# -- pause(), resume(), restart() -------------------------------------------------------------


@pytest.mark.virtual_time
async def test_restart_of_a_paused_loop_starts_unpaused() -> None:
    start = anyio.current_time()
    seen: list[tuple[str, float, bool]] = []

    @anytasks.loop(seconds=10, count=2)
    async def job(arg: str) -> None:
        seen.append((arg, anyio.current_time() - start, job.is_paused()))

    async def control() -> None:
        await anyio.sleep(5)
        job.pause()
        await anyio.sleep(20)
        job.restart("b")

    with anyio.fail_after(1000):
        async with anyio.create_task_group() as tg:
            tg.start_soon(job.run, "a")
            tg.start_soon(control)
    assert seen == [("a", 0, False), ("b", 25, False), ("b", 35, False)]
    assert job.last_end is not None
    assert job.last_end.reason is anytasks.EndReason.COMPLETED


class ThreeTimes:
    """A schedule of the user's own that ends: three times, ten minutes apart."""

    def __init__(self, first: datetime.datetime) -> None:
        self.times = [first + datetime.timedelta(minutes=10 * k) for k in range(3)]

    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        return next((t for t in self.times if t > after), None)


@pytest.mark.virtual_time
async def test_a_schedule_that_ends_while_paused_runs_nothing_after_resume() -> None:
    first = wall_now() + datetime.timedelta(minutes=1)
    seen: list[str] = []
    ends: list[anytasks.LoopEnd] = []

    @anytasks.loop(schedule=ThreeTimes(first))
    async def job() -> None:
        seen.append(wall_now().strftime("%H:%M"))

    @job.after_loop
    async def after(end: anytasks.LoopEnd) -> None:
        ends.append(end)

    async def control() -> None:
        await anyio.sleep(5 * 60)  # after the first run
        job.pause()
        await anyio.sleep(60 * 60)  # the second and third times pass
        job.resume()

    async with anyio.create_task_group() as tg:
        tg.start_soon(job.run)
        tg.start_soon(control)
    assert seen == ["12:01"]
    [end] = ends
    assert end.reason is anytasks.EndReason.COMPLETED
    assert end.iterations == 1
    assert job.last_end is end


@pytest.mark.virtual_time
async def test_skipped_counts_each_paused_slot_of_a_schedule_that_ends_once() -> None:
    first = wall_now() + datetime.timedelta(minutes=1)
    skipped: list[int] = []

    @anytasks.loop(schedule=ThreeTimes(first))
    async def job() -> None:
        pass

    @job.after_loop
    async def after() -> None:
        skipped.append(job.skipped)

    async def control() -> None:
        await anyio.sleep(5 * 60)
        job.pause()
        await anyio.sleep(60 * 60)
        job.resume()

    async with anyio.create_task_group() as tg:
        tg.start_soon(job.run)
        tg.start_soon(control)
    assert skipped == [2]


async def test_state_follows_pause_and_resume_at_once(backend_name: str) -> None:
    states: list[tuple[LoopState, object]] = []
    unit = 0.05 if backend_name == "asyncio+uvloop" else 10.0

    @anytasks.loop(seconds=unit, count=2)
    async def job() -> None:
        pass

    async def control() -> None:
        await anyio.sleep(unit / 2)
        states.append((job.state, job.next_iteration is None))
        job.pause()
        states.append((job.state, job.next_iteration is None))
        job.resume()
        states.append((job.state, job.next_iteration is None))

    async with anyio.create_task_group() as tg:
        tg.start_soon(job.run)
        tg.start_soon(control)
    assert states == [
        (LoopState.WAITING, False),
        (LoopState.PAUSED, True),
        (LoopState.WAITING, True),  # its next time is planned when the loop wakes
    ]


@pytest.mark.virtual_time
async def test_a_new_schedule_while_paused_counts_its_paused_slots() -> None:
    # every 10 min from 12:00; paused at 12:05; cron */15 from 12:06; resumed at 13:01:
    # 12:15, 12:30, 12:45 and 13:00 of the new schedule passed while paused.
    seen: list[tuple[str, int]] = []

    @anytasks.loop(minutes=10, count=2)
    async def job() -> None:
        seen.append((wall_now().strftime("%H:%M"), job.skipped))

    async def control() -> None:
        await anyio.sleep(5 * 60)
        job.pause()
        await anyio.sleep(60)
        job.change_interval(cron="*/15 * * * *")
        await anyio.sleep(55 * 60)
        job.resume()

    async with anyio.create_task_group() as tg:
        tg.start_soon(job.run)
        tg.start_soon(control)
    assert seen == [("12:00", 0), ("13:15", 4)]


# -- bad answers from the user's own parts ---------------------------------------------------


class Naive:
    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        return after.replace(tzinfo=None) + datetime.timedelta(hours=1)

    def __repr__(self) -> str:
        return "Naive()"


class Stuck:
    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        return after

    def __repr__(self) -> str:
        return "Stuck()"


@pytest.mark.parametrize(
    ("schedule", "error", "message"),
    [
        (Naive(), TypeError, r"schedule Naive\(\): next_after\(\) must return an aware datetime"),
        (Stuck(), ValueError, r"schedule Stuck\(\): next_after\(.*\) returned .*not after it"),
    ],
)
async def test_a_schedule_that_breaks_the_protocol_is_named(
    schedule: object, error: type[Exception], message: str
) -> None:
    @anytasks.loop(schedule=schedule)  # type: ignore[call-overload]
    async def job() -> None:
        pass

    with pytest.raises(error, match=message):
        await job.run()
    union = anytasks.daily(NINE) | schedule  # type: ignore[operator]
    with pytest.raises(error, match=message):
        union.next_after(datetime.datetime(2026, 1, 5, tzinfo=datetime.timezone.utc))


@pytest.mark.parametrize("drawn", [-0.5, 1.0, math.nan, "0.5", None])
async def test_random_must_draw_from_zero_to_one(drawn: object) -> None:
    @anytasks.loop(seconds=10, jitter=5, random=lambda: drawn)  # type: ignore[call-overload, return-value]
    async def job() -> None:
        pass

    with pytest.raises(ValueError, match=r"`random` must return a float in \[0, 1\), but it"):
        await job.run()
    assert job.failed()


# -- preview() at the edges ---------------------------------------------------------------


async def test_preview_of_an_interval_past_the_year_9999() -> None:
    @anytasks.loop(hours=1e12, count=2)
    async def job() -> None:
        pass

    # Not running: the first run would be now, and no second fits before datetime.max.
    assert len(job.preview(3)) == 1
    async with anyio.create_task_group() as tg:
        tg.start_soon(job.run)
        await anyio.sleep(0.01)
        running = job.preview(3)
        job.cancel()
    assert running == [datetime.datetime.max.replace(tzinfo=datetime.timezone.utc)]
    assert job.next_iteration is None


async def test_ticks_errors_name_ticks() -> None:
    with pytest.raises(TypeError, match=r"^ticks\(\) got an unexpected keyword argument 'sconds'"):
        anytasks.ticks(sconds=1)  # type: ignore[call-arg]
