"""A few checks on the real clock, so uvloop's timers are exercised too.

Everything else runs on virtual time; these use intervals of tens of milliseconds
and tolerances wide enough for a busy two-core machine.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import anytasks

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend(real_time_backend: Any) -> Any:
    return real_time_backend


async def test_iterations_keep_to_the_grid_on_the_real_clock() -> None:
    starts: list[float] = []
    t0 = anyio.current_time()

    @anytasks.loop(seconds=0.02, count=6)
    async def tick() -> None:
        starts.append(anyio.current_time() - t0)
        await anyio.sleep(0.005)

    await tick.run()
    assert len(starts) == 6
    lateness = [start - 0.02 * k for k, start in enumerate(starts)]
    assert all(late >= -0.001 for late in lateness)
    # Body time does not accumulate: the last run is late by one wake-up at most,
    # not by five bodies' worth (0.025 s).
    assert lateness[-1] < 0.02


async def test_stop_wakes_a_long_real_sleep_at_once() -> None:
    @anytasks.loop(seconds=30)
    async def slow() -> None:
        pass

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(slow.run)
            await anyio.sleep(0.01)
            t0 = anyio.current_time()
            slow.stop()
            await slow.join()
    assert anyio.current_time() - t0 < 1


async def test_change_interval_wakes_a_long_real_sleep() -> None:
    runs = 0

    @anytasks.loop(seconds=30, count=2)
    async def slow() -> None:
        nonlocal runs
        runs += 1

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(slow.run)
            await anyio.sleep(0.01)
            slow.change_interval(seconds=0.02)
    assert runs == 2
