"""``async with anytasks.running(*loops)``: loops as the services of a block (a lifespan).

Exact times on virtual time (asyncio and Trio); uvloop runs the cases that need no virtual
clock, with intervals of a few milliseconds.
"""

from __future__ import annotations

import logging

import anyio
import anyio.lowlevel
import pytest

import anytasks
from anytasks import EndReason

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.t0 = anyio.current_time()

    def __call__(self) -> float:
        return anyio.current_time() - self.t0


@pytest.mark.virtual_time
async def test_leaving_the_block_stops_the_loops_and_lets_the_iteration_finish() -> None:
    clock = Clock()
    events: list[str] = []

    @anytasks.loop(seconds=10)
    async def slow() -> None:
        events.append(f"{clock():g} slow {slow.current_loop}")
        await anyio.sleep(4)
        events.append(f"{clock():g} slow done")

    @anytasks.loop(seconds=3)
    async def fast() -> None:
        events.append(f"{clock():g} fast {fast.current_loop}")

    @slow.after_loop
    async def slow_after(end: anytasks.LoopEnd) -> None:
        await anyio.sleep(1)  # after_loop can await, and the block waits for it
        events.append(f"{clock():g} slow after {end.reason.value}")

    @fast.after_loop
    async def fast_after(end: anytasks.LoopEnd) -> None:
        events.append(f"{clock():g} fast after {end.reason.value}")

    async with anytasks.running(slow, fast, grace=30) as services:
        assert services.loops == (slow, fast)
        await anyio.sleep(11)
        events.append(f"{clock():g} leaving")
    events.append(f"{clock():g} left")
    # Both begin at 0, in either order (Trio runs the tasks woken together in random order).
    assert sorted(events[:2]) == ["0 fast 0", "0 slow 0"]
    assert events[2:] == [
        "3 fast 1",
        "4 slow done",
        "6 fast 2",
        "9 fast 3",
        "10 slow 1",
        "11 leaving",
        "11 fast after stopped",
        "14 slow done",
        "15 slow after stopped",
        "15 left",
    ]
    assert services.failed == ()
    assert services.running == ()
    assert not slow.is_running()


@pytest.mark.virtual_time
async def test_loops_still_running_after_the_grace_period_are_cancelled() -> None:
    clock = Clock()
    ends: list[tuple[float, str, bool]] = []

    @anytasks.loop(seconds=1)
    async def stuck() -> None:
        await anyio.sleep(3600)

    @stuck.after_loop
    async def after(end: anytasks.LoopEnd) -> None:
        ends.append((clock(), end.reason.value, stuck.is_being_cancelled()))

    async with anytasks.running(stuck, grace=7):
        await anyio.sleep(2)
    assert ends == [(9, "cancelled", True)]
    assert clock() == 9


async def test_a_failing_loop_ends_alone_and_leaving_does_not_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bodies: list[str] = []

    @anytasks.loop(seconds=0.001)
    async def broken() -> None:
        raise KeyError("cache key")

    @anytasks.loop(seconds=0.001, count=5)
    async def steady() -> None:
        bodies.append("steady")

    with caplog.at_level(logging.ERROR, logger="anytasks"):
        async with anytasks.running(broken, steady) as services:
            await services.wait()
    assert services.failed == (broken,)
    assert bodies == ["steady"] * 5
    assert broken.failed()
    assert broken.last_end is not None
    assert broken.last_end.reason is EndReason.FAILED
    assert isinstance(broken.last_end.exception, KeyError)
    assert steady.last_end is not None
    assert steady.last_end.reason is EndReason.COMPLETED
    # Reported once, by the error hook's default, with its traceback.
    records = [r for r in caplog.records if r.name == "anytasks"]
    assert [r.getMessage() for r in records] == [
        "Unhandled exception in loop 'anytasks: "
        + ("test_a_failing_loop_ends_alone_and_leaving_does_not_raise.<locals>.broken'")
    ]
    assert records[0].exc_info is not None
    assert records[0].exc_info[0] is KeyError


async def test_an_after_loop_that_raises_fails_the_loop_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @anytasks.loop(seconds=0.001, count=1)
    async def tidy() -> None:
        pass

    @tidy.after_loop
    async def after() -> None:
        raise OSError("disk full")

    with caplog.at_level(logging.ERROR, logger="anytasks"):
        async with anytasks.running(tidy) as services:
            await services.wait()
    assert services.failed == (tidy,)
    messages = [r.getMessage() for r in caplog.records if r.name == "anytasks"]
    assert messages == [f"Exception in a hook of loop {tidy.name!r}"]


@pytest.mark.virtual_time
async def test_the_blocks_own_error_goes_up_after_the_loops_ended() -> None:
    events: list[str] = []

    @anytasks.loop(seconds=5)
    async def job() -> None:
        events.append("body")

    @job.after_loop
    async def after() -> None:
        events.append("after")

    async def lifespan() -> None:
        async with anytasks.running(job):
            await anyio.sleep(1)
            events.append("raising")
            _ = 1 / 0

    # As it is, not in an exception group.
    with pytest.raises(ZeroDivisionError):
        await lifespan()
    assert events == ["body", "raising", "after"]
    assert not job.is_running()


@pytest.mark.virtual_time
async def test_a_cancelled_enclosing_scope_cancels_the_loops() -> None:
    ends: list[tuple[str, bool]] = []

    @anytasks.loop(seconds=5)
    async def job() -> None:
        await anyio.sleep(3)

    @job.after_loop
    async def after(end: anytasks.LoopEnd) -> None:
        ends.append((end.reason.value, job.is_being_cancelled()))

    with anyio.CancelScope() as scope:
        async with anytasks.running(job, grace=100):
            await anyio.sleep(1)
            scope.cancel()
            await anyio.sleep(1)
    assert scope.cancelled_caught
    assert ends == [("cancelled", True)]


async def test_a_loop_started_by_a_loop_runs_in_the_block_and_ends_with_it() -> None:
    ends: list[str] = []

    @anytasks.loop(seconds=0.001, count=1)
    async def helper() -> None:
        pass

    @anytasks.loop(seconds=3600)
    async def spawner() -> None:
        started.start()

    @anytasks.loop(seconds=3600)
    async def started() -> None:
        pass

    @started.after_loop
    async def after() -> None:
        ends.append("started after")

    async with anytasks.running(spawner, helper) as services:
        await anyio.sleep(0.01)
        assert started.is_running()
    assert ends == ["started after"]
    assert services.failed == ()


async def test_stop_and_cancel_end_the_loops_early() -> None:
    @anytasks.loop(seconds=0.001)
    async def one() -> None:
        pass

    @anytasks.loop(seconds=0.001)
    async def two() -> None:
        await anyio.sleep(3600)

    async with anytasks.running(one, two) as services:
        await anyio.sleep(0.01)
        assert services.running == (one, two)
        services.stop()
        with anyio.fail_after(5):
            await one.join()
        assert services.running == (two,)
        services.cancel()
        await services.wait()
    assert one.last_end is not None
    assert one.last_end.reason is EndReason.STOPPED
    assert two.last_end is not None
    assert two.last_end.reason is EndReason.CANCELLED


async def test_arguments_are_checked() -> None:
    @anytasks.loop(seconds=1)
    async def job() -> None:
        pass

    with pytest.raises(TypeError, match=r"argument 1 is an object of type 'int', not a Loop"):
        anytasks.running(job, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`grace` must be a non-negative finite number"):
        anytasks.running(job, grace=-1)
    services = anytasks.running(job, job)
    assert services.loops == (job,)  # each once
    assert repr(services) == f"<anytasks.RunningLoops [{job.name!r}] running=0>"
    async with anyio.create_task_group() as tg:
        await tg.start(job.run)
        with pytest.raises(RuntimeError, match=r"is running already: anytasks.running\(\)"):
            async with services:
                pass
        job.cancel()
    async with services:
        with pytest.raises(RuntimeError, match=r"cannot be entered twice"):
            async with services:
                pass
    with pytest.raises(RuntimeError, match=r"wait\(\) was called before"):
        await anytasks.running(job).wait()


async def test_no_loops_is_an_empty_block() -> None:
    async with anytasks.running() as services:
        await services.wait()
    assert services.loops == ()
