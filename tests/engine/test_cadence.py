"""When a running loop iterates: missed-slot policies, grace, jitter, preview, pause, ticks().

Exact times on virtual time (asyncio and Trio); uvloop runs the few that need no virtual clock.
"""

from __future__ import annotations

import datetime
import random
import zoneinfo

import anyio
import pytest

import anytasks
import anytasks.testing
from anytasks import LoopState
from anytasks.testing import wall_now

pytestmark = pytest.mark.anyio

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=datetime.timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.t0 = anyio.current_time()

    def __call__(self) -> float:
        return anyio.current_time() - self.t0


# -- missed slots of an interval loop ------------------------------------------------------


@pytest.mark.virtual_time
@pytest.mark.parametrize(
    ("overrun", "grace", "times", "skipped"),
    [
        # The first body takes 35 s of a 10 s grid: slots 10, 20 and 30 are missed.
        ("burst", None, [0, 35, 35, 35, 40], 0),
        ("skip", None, [0, 40, 50, 60, 70], 3),
        ("coalesce", None, [0, 35, 40, 50, 60], 2),
        # burst, but a slot more than 12 s late is dropped: 10 and 20 are, 30 (5 s late) runs.
        ("burst", 12.0, [0, 35, 40, 50, 60], 2),
    ],
)
async def test_overrun_policies_of_an_interval_loop(
    overrun: str, grace: float | None, times: list[float], skipped: int
) -> None:
    clock = Clock()
    seen: list[float] = []

    @anytasks.loop(seconds=10, count=5, overrun=overrun, grace=grace)  # type: ignore[call-overload]
    async def body() -> None:
        seen.append(clock())
        if len(seen) == 1:
            await anyio.sleep(35)

    @body.after_loop
    async def after() -> None:
        seen.append(-float(body.skipped))

    await body.run()
    assert seen == [*times, -skipped]


# -- missed slots of a wall-clock loop -----------------------------------------------------


@pytest.mark.virtual_time
@pytest.mark.parametrize(
    ("overrun", "expected", "skipped"),
    [
        ("coalesce", ["12:00", "12:35", "12:40"], 2),
        ("skip", ["12:00", "12:40", "12:50"], 3),
        ("burst", ["12:00", "12:35", "12:35"], 0),
    ],
)
async def test_overrun_policies_of_a_cron_loop(
    overrun: str, expected: list[str], skipped: int
) -> None:
    seen: list[str] = []
    skipped_at_end: list[int] = []

    @anytasks.loop(cron="*/10 * * * *", count=3, overrun=overrun)  # type: ignore[call-overload]
    async def body() -> None:
        seen.append(wall_now().strftime("%H:%M"))
        if len(seen) == 1:
            await anyio.sleep(35 * 60)

    @body.after_loop
    async def after() -> None:
        skipped_at_end.append(body.skipped)

    await body.run()
    assert seen == expected
    assert skipped_at_end == [skipped]


@pytest.mark.virtual_time
async def test_a_cron_loop_in_a_time_zone_across_fall_back_runs_once() -> None:
    seen: list[str] = []

    @anytasks.loop(cron="30 2 * * *", tz=BERLIN, count=2)
    async def body() -> None:
        seen.append(wall_now().astimezone(BERLIN).strftime("%m-%d %H:%M %Z"))

    # 2026-10-25 is the fall-back day in Berlin: 02:30 happens twice.
    async with anyio.create_task_group() as tg:
        tg.start_soon(body.run)
    assert seen[0].startswith("01-06 02:30")  # virtual_start is 2026-01-05 12:00 UTC
    assert seen == ["01-06 02:30 CET", "01-07 02:30 CET"]


# -- jitter --------------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_jitter_moves_each_start_but_not_the_grid() -> None:
    clock = Clock()
    draws = iter([0.0, 0.5, 0.9, 0.25])
    seen: list[float] = []
    shown: list[datetime.datetime | None] = []

    @anytasks.loop(seconds=10, count=4, jitter=4, random=lambda: next(draws))
    async def body() -> None:
        seen.append(clock())

    async def look() -> None:
        await anyio.sleep(1)
        shown.append(body.next_iteration)

    async with anyio.create_task_group() as tg:
        tg.start_soon(body.run)
        tg.start_soon(look)
    # The first run is at once; then 10 + 0*4, 20 + 0.5*4, 30 + 0.9*4 on the unmoved grid.
    assert seen == [0, 10, 22, 33.6]
    assert shown == [utc(2026, 1, 5, 12, 0, 10)]


@pytest.mark.virtual_time
async def test_jitter_never_reaches_the_next_slot() -> None:
    clock = Clock()
    seen: list[float] = []

    # A jitter longer than the interval is drawn from what is left of the slot.
    @anytasks.loop(seconds=10, count=3, jitter=100, random=lambda: 0.99)
    async def body() -> None:
        seen.append(clock())

    await body.run()
    assert seen[0] == 0
    assert 10 < seen[1] < 20 < seen[2] < 30


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_jitter_draws_the_same_on_every_run_under_virtual_time(backend: str) -> None:
    async def starts() -> list[float]:
        clock = Clock()
        seen: list[float] = []

        @anytasks.loop(seconds=60, count=3, jitter=30)
        async def body() -> None:
            seen.append(clock())

        await body.run()
        return seen

    first = anytasks.testing.run(starts, backend=backend)
    second = anytasks.testing.run(starts, backend=backend)
    assert first == second
    assert first[0] == 0
    assert 60 < first[1] < 90
    assert 120 < first[2] < 150


# -- preview -------------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_preview_of_a_loop_that_is_not_running() -> None:
    @anytasks.loop(cron="0 9 * * 1-5", tz=BERLIN)
    async def standup() -> None:
        pass

    @anytasks.loop(time=[datetime.time(9), datetime.time(21)])
    async def twice() -> None:
        pass

    # virtual_start is Monday 2026-01-05 12:00 UTC (13:00 in Berlin).
    assert [t.astimezone(BERLIN).strftime("%a %H:%M") for t in standup.preview(3)] == [
        "Tue 09:00",
        "Wed 09:00",
        "Thu 09:00",
    ]
    assert twice.preview(3) == [utc(2026, 1, 5, 21), utc(2026, 1, 6, 9), utc(2026, 1, 6, 21)]
    assert all(t.tzinfo is datetime.timezone.utc for t in standup.preview(2))
    assert standup.preview(0) == []
    with pytest.raises(ValueError, match="`n` must be a non-negative int, got -1"):
        standup.preview(-1)
    with pytest.raises(TypeError, match="`n` must be an int, not 'float'"):
        standup.preview(2.0)  # type: ignore[arg-type]


@pytest.mark.virtual_time
async def test_preview_of_an_interval_loop_follows_its_grid() -> None:
    previews: list[list[datetime.datetime]] = []

    @anytasks.loop(seconds=60, jitter=30, random=lambda: 0.5)
    async def body() -> None:
        if body.current_loop == 0:
            return
        body.stop()

    assert body.preview(2) == [utc(2026, 1, 5, 12), utc(2026, 1, 5, 12, 1)]

    async def look() -> None:
        await anyio.sleep(1)
        previews.append(body.preview(3))

    async with anyio.create_task_group() as tg:
        tg.start_soon(body.run)
        tg.start_soon(look)
    # The next run is drawn (60 + 15 s); the ones after it stay on the grid.
    assert previews == [
        [utc(2026, 1, 5, 12, 1, 15), utc(2026, 1, 5, 12, 2), utc(2026, 1, 5, 12, 3)]
    ]


# -- pause and resume ----------------------------------------------------------------------


@pytest.mark.virtual_time
@pytest.mark.parametrize("where", ["waiting", "body", "before_loop"])
async def test_pause_skips_slots_and_resume_keeps_the_grid(where: str) -> None:
    clock = Clock()
    seen: list[tuple[float, int]] = []
    states: list[LoopState] = []

    @anytasks.loop(seconds=10, count=3)
    async def body() -> None:
        seen.append((clock(), body.skipped))
        if where == "body" and len(seen) == 1:
            body.pause()  # takes effect once this iteration returns

    @body.before_loop
    async def before() -> None:
        if where == "before_loop":
            body.pause()

    async def control() -> None:
        if where == "waiting":
            await anyio.sleep(5)
            body.pause()
        await anyio.sleep(20 if where != "waiting" else 1)
        states.append(body.state)
        assert body.is_paused()
        await anyio.sleep(21 if where != "waiting" else 25)
        body.resume()

    async with anyio.create_task_group() as tg:
        tg.start_soon(body.run)
        tg.start_soon(control)
    assert states == [LoopState.PAUSED]
    assert not body.is_paused()
    if where == "before_loop":
        # Resumed at 41: slots 0, 10, 20, 30 and 40 passed.
        assert seen == [(50, 5), (60, 5), (70, 5)]
    elif where == "body":
        # Paused after the run at 0; resumed at 41: 10, 20, 30, 40 skipped.
        assert seen == [(0, 0), (50, 4), (60, 4)]
    else:
        # Paused at 5, resumed at 31: 10, 20 and 30 skipped.
        assert seen == [(0, 0), (40, 3), (50, 3)]


@pytest.mark.parametrize("control", ["stop", "cancel"])
async def test_stop_and_cancel_end_a_paused_loop(control: str) -> None:
    events: list[str] = []

    @anytasks.loop(seconds=0.01)
    async def body() -> None:
        body.pause()

    @body.after_loop
    async def after() -> None:
        events.append(f"after cancelled={body.is_being_cancelled()}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(body.run)
        await anyio.sleep(0.05)
        assert body.state is LoopState.PAUSED
        getattr(body, control)()
    assert events == [f"after cancelled={control == 'cancel'}"]
    assert not body.is_paused()


# -- ticks() -------------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_ticks_of_an_interval_are_on_the_grid() -> None:
    clock = Clock()
    seen: list[tuple[int, datetime.datetime, float, float]] = []
    async for tick in anytasks.ticks(seconds=10, count=4):
        seen.append((tick.index, tick.scheduled, tick.lateness, clock()))
        if tick.index == 1:
            await anyio.sleep(25)  # overruns two slots: burst by default
    assert seen == [
        (0, utc(2026, 1, 5, 12), 0.0, 0),
        (1, utc(2026, 1, 5, 12, 0, 10), 0.0, 10),
        (2, utc(2026, 1, 5, 12, 0, 20), 15.0, 35),
        (3, utc(2026, 1, 5, 12, 0, 30), 5.0, 35),
    ]


@pytest.mark.virtual_time
async def test_ticks_skip_policy_and_early_exit() -> None:
    clock = Clock()
    seen: list[float] = []
    ticker = anytasks.ticks(seconds=10, overrun="skip")
    async for tick in ticker:
        seen.append(clock())
        if tick.index == 0:
            await anyio.sleep(25)
        if tick.index == 2:
            break
    assert seen == [0, 30, 40]
    assert ticker.skipped == 2


@pytest.mark.virtual_time
async def test_ticks_of_a_wall_clock_schedule_and_of_a_loop() -> None:
    @anytasks.loop(time=[datetime.time(13), datetime.time(14)])
    async def twice() -> None:
        raise AssertionError("ticks() does not run the body")

    seen = [tick.scheduled async for tick in twice.ticks(count=3)]
    assert seen == [utc(2026, 1, 5, 13), utc(2026, 1, 5, 14), utc(2026, 1, 6, 13)]
    assert not twice.is_running()
    cron_seen = [
        tick.scheduled.strftime("%H:%M")
        async for tick in anytasks.ticks(cron="*/20 * * * *", count=2)
    ]
    # Now is 2026-01-06 13:00, itself a slot: the first tick is at once.
    assert cron_seen == ["13:00", "13:20"]


async def test_ticks_reject_loop_only_keywords() -> None:
    with pytest.raises(TypeError, match="ticks\\(\\) got an unexpected keyword argument 'name'"):
        anytasks.ticks(seconds=1, name="x")  # type: ignore[call-arg]


async def test_ticks_run_on_real_time_too() -> None:
    count = 0
    async for _ in anytasks.ticks(seconds=0.001, count=3):
        count += 1
    assert count == 3


def test_random_default_is_module_random_outside_virtual_time() -> None:
    from anytasks._engine.backend import default_random

    assert default_random() is random.random
