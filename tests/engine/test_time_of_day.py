"""``time=`` loops on the virtual wall clock: days, zones and DST changes in milliseconds."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import anyio
import pytest

import anytasks
import anytasks.testing
from anytasks.testing import wall_now

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

UTC = datetime.timezone.utc
NEW_YORK = ZoneInfo("America/New_York")
SEOUL = ZoneInfo("Asia/Seoul")


def at(*args: int) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=UTC)  # type: ignore[misc]


async def run_and_record(
    times: datetime.time | list[datetime.time], count: int
) -> list[datetime.datetime]:
    seen: list[datetime.datetime] = []

    @anytasks.loop(time=times, count=count)
    async def daily() -> None:
        seen.append(wall_now())

    await daily.run()
    return seen


async def test_waits_for_the_listed_time_then_runs_daily() -> None:
    # virtual_start is 2026-01-05 12:00 UTC.
    assert await run_and_record(datetime.time(12, 0, 30), 3) == [
        at(2026, 1, 5, 12, 0, 30),
        at(2026, 1, 6, 12, 0, 30),
        at(2026, 1, 7, 12, 0, 30),
    ]


async def test_a_time_already_past_today_runs_tomorrow() -> None:
    assert await run_and_record(datetime.time(11), 1) == [at(2026, 1, 6, 11)]


async def test_several_times_run_in_order_and_wrap_to_the_next_day() -> None:
    times = [datetime.time(13), datetime.time(12, 1), datetime.time(0, 0)]
    assert await run_and_record(times, 5) == [
        at(2026, 1, 5, 12, 1),
        at(2026, 1, 5, 13),
        at(2026, 1, 6, 0, 0),
        at(2026, 1, 6, 12, 1),
        at(2026, 1, 6, 13),
    ]


async def test_times_in_other_zones_are_honoured() -> None:
    # 20:59 in Seoul is 11:59 UTC: the next one is tomorrow's.
    assert await run_and_record(datetime.time(20, 59, tzinfo=SEOUL), 1) == [at(2026, 1, 6, 11, 59)]


async def test_a_loop_started_exactly_on_one_of_its_times_runs_at_once() -> None:
    # 21:00 in Seoul is 12:00 UTC, the start: run now (as discord.py does), then daily.
    assert await run_and_record(datetime.time(21, 0, tzinfo=SEOUL), 2) == [
        at(2026, 1, 5, 12),
        at(2026, 1, 6, 12),
    ]


@pytest.mark.parametrize("virtual_start", [at(2026, 3, 7, 12)])
async def test_a_local_time_keeps_its_local_hour_across_spring_forward() -> None:
    # 09:00 in New York is 14:00 UTC in winter and 13:00 UTC in summer time.
    assert await run_and_record(datetime.time(9, tzinfo=NEW_YORK), 3) == [
        at(2026, 3, 7, 14),
        at(2026, 3, 8, 13),
        at(2026, 3, 9, 13),
    ]


@pytest.mark.parametrize("virtual_start", [at(2026, 3, 7, 12)])
async def test_a_time_in_the_spring_gap_moves_forward_by_the_gap() -> None:
    # 02:30 does not exist in New York on 2026-03-08; it runs at 03:30 EDT instead.
    assert await run_and_record(datetime.time(2, 30, tzinfo=NEW_YORK), 3) == [
        at(2026, 3, 8, 7, 30),
        at(2026, 3, 9, 6, 30),
        at(2026, 3, 10, 6, 30),
    ]


@pytest.mark.parametrize("virtual_start", [at(2026, 10, 31, 12)])
async def test_an_ambiguous_time_runs_once_at_its_second_occurrence() -> None:
    # 01:30 happens twice in New York on 2026-11-01: 05:30 UTC (EDT) and 06:30 UTC (EST).
    assert await run_and_record(datetime.time(1, 30, tzinfo=NEW_YORK), 3) == [
        at(2026, 11, 1, 6, 30),
        at(2026, 11, 2, 6, 30),
        at(2026, 11, 3, 6, 30),
    ]


async def test_next_iteration_is_utc_for_times_in_other_zones() -> None:
    seen: list[datetime.datetime | None] = []

    @anytasks.loop(time=[datetime.time(22, tzinfo=SEOUL), datetime.time(23, tzinfo=SEOUL)])
    async def daily() -> None:
        seen.append(daily.next_iteration)
        if len(seen) == 2:
            daily.stop()

    async with anyio.create_task_group() as tg:
        tg.start_soon(daily.run)
        await anyio.sleep(1)
        assert daily.next_iteration == at(2026, 1, 5, 13)
    assert seen == [at(2026, 1, 5, 14), at(2026, 1, 6, 13)]
    assert all(d is not None and d.tzinfo is UTC for d in seen)


async def test_stop_while_waiting_for_the_time_ends_at_once() -> None:
    ran = False

    @anytasks.loop(time=datetime.time(18))
    async def daily() -> None:
        nonlocal ran
        ran = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(daily.run)
        await anyio.sleep(3600)
        daily.stop()
        await daily.join()
        assert wall_now() == at(2026, 1, 5, 13)
    assert not ran


async def test_change_interval_to_another_time_replans_the_wait() -> None:
    seen: list[datetime.datetime] = []

    @anytasks.loop(time=datetime.time(18), count=1)
    async def daily() -> None:
        seen.append(wall_now())

    async with anyio.create_task_group() as tg:
        tg.start_soon(daily.run)
        await anyio.sleep(60)
        daily.change_interval(time=datetime.time(12, 30))
    assert seen == [at(2026, 1, 5, 12, 30)]


async def test_switching_between_relative_and_time_of_day() -> None:
    seen: list[datetime.datetime] = []

    @anytasks.loop(minutes=10, count=4)
    async def tick() -> None:
        seen.append(wall_now())
        if len(seen) == 2:
            tick.change_interval(time=datetime.time(15))
        elif len(seen) == 3:
            tick.change_interval(hours=1)

    await tick.run()
    assert seen == [
        at(2026, 1, 5, 12, 0),
        at(2026, 1, 5, 12, 10),
        at(2026, 1, 5, 15, 0),
        at(2026, 1, 5, 16, 0),
    ]


async def test_a_wall_clock_jump_is_noticed_within_a_minute() -> None:
    # The machine's wall clock jumps 10 hours ahead (an NTP fix, a resume from
    # suspend) while the loop waits for a time 10 hours away: the loop must not
    # sleep on for 10 more hours of monotonic time.
    seen: list[float] = []
    t0 = anyio.current_time()

    @anytasks.loop(time=datetime.time(22), count=1)
    async def nightly() -> None:
        seen.append(anyio.current_time() - t0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(nightly.run)
        await anyio.sleep(330)
        anytasks.testing.suspend(10 * 3600)
    # The wait re-reads the wall clock every 60 seconds: at 360 it sees 22:06.
    assert seen == [360]
