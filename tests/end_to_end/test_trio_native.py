"""A plain Trio program, tested the Trio way: pytest-trio and its autojump clock.

No AnyIO in sight: the loops are run by ``nursery.start_soon(loop.run)`` and
``await nursery.start(loop.run)``, as a Trio user writes them.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

import anytasks


@pytest.mark.trio
async def test_trio_program_with_loops_in_a_nursery(
    autojump_clock: trio.testing.MockClock,
) -> None:

    log: list[tuple[float, str]] = []
    t0 = trio.current_time()

    @anytasks.loop(seconds=4)
    async def fast() -> None:
        log.append((trio.current_time() - t0, "fast"))

    @anytasks.loop(seconds=3, count=3)
    async def slow() -> None:
        log.append((trio.current_time() - t0, "slow"))

    @slow.after_loop
    async def slow_done() -> None:
        fast.stop()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(fast.run)
        await nursery.start(slow.run)
    assert sorted(log) == [
        (0, "fast"),
        (0, "slow"),
        (3, "slow"),
        (4, "fast"),
        (6, "slow"),
    ]
    assert trio.current_time() - t0 == 6  # fast was stopped while waiting for 8


@pytest.mark.trio
async def test_cancelling_the_nursery_flushes_in_after_loop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flushed: list[list[int]] = []
    batch: list[int] = []

    @anytasks.loop(seconds=10)
    async def collect() -> None:
        batch.append(int(trio.current_time()))

    @collect.after_loop
    async def flush() -> None:
        if collect.is_being_cancelled():
            await trio.sleep(1)  # a database round trip, despite the cancellation
            flushed.append(list(batch))

    with trio.move_on_after(25):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect.run)
    assert flushed == [[0, 10, 20]]
    assert trio.current_time() == 26
    assert not collect.is_running()
