"""Idle loops in a background() host give their task up between iterations ("parking").

What a user can see of it: each iteration of such a loop runs in a task of its own; context
variables carry over from one iteration to the next as in one task; ``get_task()`` is None in a
host, as before; and every control (stop, cancel, restart, pause, change_interval, leaving the
block) acts on a parked loop as at once as on a sleeping one.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from typing import cast

import anyio
import pytest

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

import anytasks
from anytasks._engine.backend import current_task_object, wall_now
from anytasks._engine.timers import COMPACT_AT, TimerQueue

pytestmark = pytest.mark.anyio

_counter: contextvars.ContextVar[int] = contextvars.ContextVar("counter", default=0)
_starter: contextvars.ContextVar[str] = contextvars.ContextVar("starter", default="unset")


async def test_each_iteration_of_an_idle_loop_in_a_host_runs_in_a_task_of_its_own() -> None:
    tasks: list[object] = []
    hook_tasks: list[object] = []

    @anytasks.loop(seconds=0.05, count=3)
    async def body() -> None:
        tasks.append(current_task_object())

    @body.before_loop
    async def before() -> None:
        hook_tasks.append(current_task_object())

    async with anytasks.background():
        body.start()
        await body.join()
    assert len(tasks) == 3
    assert len({id(task) for task in tasks}) == 3
    # before_loop and the first iteration share the loop's first task.
    assert hook_tasks == [tasks[0]]


async def test_a_loop_behind_its_schedule_keeps_its_task() -> None:
    tasks: list[object] = []

    @anytasks.loop(seconds=0, count=5)
    async def body() -> None:
        tasks.append(current_task_object())

    async with anytasks.background():
        body.start()
        await body.join()
    assert len(tasks) == 5
    assert len({id(task) for task in tasks}) == 1


async def test_get_task_of_a_parked_loop_is_none_and_it_is_running() -> None:
    @anytasks.loop(seconds=3600)
    async def body() -> None:
        pass

    async with anytasks.background():
        body.start()
        await anyio.sleep(0.01)
        assert body.is_running()
        assert body.get_task() is None
        assert body.current_loop == 1
        next_iteration = body.next_iteration
        assert next_iteration is not None
        wait = next_iteration - wall_now()
        assert 3590 < wait.total_seconds() <= 3600
        body.cancel()


async def test_context_variables_carry_over_from_one_iteration_to_the_next() -> None:
    seen: list[tuple[str, int]] = []

    @anytasks.loop(seconds=0.05, count=4)
    async def body() -> None:
        seen.append((_starter.get(), _counter.get()))
        _counter.set(_counter.get() + 1)

    @body.before_loop
    async def before() -> None:
        _counter.set(10)

    async with anytasks.background():
        _starter.set("the starter's")
        body.start()
        _starter.set("changed after start()")
        await body.join()
    assert seen == [("the starter's", count) for count in (10, 11, 12, 13)]
    assert _counter.get() == 0  # the loop's values stay the loop's


@pytest.mark.virtual_time
async def test_cancel_of_a_parked_loop_runs_after_loop_at_once() -> None:
    events: list[tuple[str, float]] = []

    @anytasks.loop(hours=1)
    async def body() -> None:
        events.append(("body", anyio.current_time() - t0))

    @body.after_loop
    async def after() -> None:
        events.append((f"after cancelled={body.is_being_cancelled()}", anyio.current_time() - t0))

    t0 = anyio.current_time()
    async with anytasks.background():
        body.start()
        await anyio.sleep(5)
        body.cancel()
        await body.join()
        # The host's timer for the parked loop went with it: nothing is due at one hour.
        await anyio.sleep(10)
    assert events == [("body", 0.0), ("after cancelled=True", 5.0)]
    assert anyio.current_time() - t0 == 15.0
    end = body.last_end
    assert end is not None
    assert end.reason is anytasks.EndReason.CANCELLED
    assert end.iterations == 1


@pytest.mark.virtual_time
async def test_cancel_of_a_parked_loop_without_after_loop_ends_it_as_a_sleeping_one() -> None:
    seen: list[str] = []

    @anytasks.loop(hours=1)
    async def body() -> None:
        pass

    @body.add_listener
    def listen(event: anytasks.LoopEvent) -> None:
        if isinstance(event, anytasks.LoopEnded):
            seen.append(f"{event.end.reason.name} running={body.is_running()}")

    t0 = anyio.current_time()
    async with anytasks.background():
        body.start()
        await anyio.sleep(3)
        body.cancel()
        # As for a loop whose task sleeps: it is ending, not ended, when cancel() returns.
        assert body.is_running()
        assert body.is_being_cancelled()
        assert seen == []
        with pytest.raises(RuntimeError, match="already running"):
            body.start()
        await body.join()
        assert seen == ["CANCELLED running=True"]
        await anyio.sleep(1)
    assert anyio.current_time() - t0 == 4.0
    end = body.last_end
    assert end is not None
    assert end.reason is anytasks.EndReason.CANCELLED
    assert end.iterations == 1


@pytest.mark.virtual_time
async def test_stop_of_a_parked_loop_ends_it_at_once() -> None:
    @anytasks.loop(hours=1)
    async def body() -> None:
        pass

    t0 = anyio.current_time()
    async with anytasks.background():
        body.start()
        await anyio.sleep(2)
        body.stop()
        await body.join()
        assert anyio.current_time() - t0 == 2.0
    end = body.last_end
    assert end is not None
    assert end.reason is anytasks.EndReason.STOPPED
    assert end.iterations == 1


@pytest.mark.virtual_time
async def test_change_interval_of_a_parked_loop_counts_from_its_last_slot() -> None:
    times: list[float] = []

    @anytasks.loop(seconds=10, count=4)
    async def body() -> None:
        times.append(anyio.current_time() - t0)

    t0 = anyio.current_time()
    async with anytasks.background():
        body.start()
        await anyio.sleep(1)
        body.change_interval(seconds=3)
        await body.join()
    assert times == [0.0, 3.0, 6.0, 9.0]


@pytest.mark.virtual_time
async def test_pause_and_resume_of_a_parked_loop_skip_the_slots_in_between() -> None:
    times: list[float] = []

    @anytasks.loop(seconds=2, count=3)
    async def body() -> None:
        times.append(anyio.current_time() - t0)

    t0 = anyio.current_time()
    async with anytasks.background():
        body.start()
        await anyio.sleep(1)
        body.pause()
        assert body.is_paused()
        await anyio.sleep(6)  # the slots at 2, 4 and 6 come due while it is paused
        body.resume()
        await body.join()
    assert times == [0.0, 8.0, 10.0]


@pytest.mark.virtual_time
async def test_restart_of_a_parked_loop_runs_its_hooks_again_and_join_waits_across_it() -> None:
    events: list[tuple[str, float]] = []

    @anytasks.loop(seconds=5, count=2)
    async def body(label: str) -> None:
        events.append((label, anyio.current_time() - t0))

    @body.before_loop
    async def before() -> None:
        events.append(("before", anyio.current_time() - t0))

    @body.after_loop
    async def after() -> None:
        events.append(("after", anyio.current_time() - t0))

    t0 = anyio.current_time()
    async with anytasks.background():
        body.start("first")
        await anyio.sleep(1)
        body.restart("second")
        await body.join()
    assert events == [
        ("before", 0.0),
        ("first", 0.0),
        ("after", 1.0),
        ("before", 1.0),
        ("second", 1.0),
        ("second", 6.0),
        ("after", 6.0),
    ]


@pytest.mark.virtual_time
async def test_leaving_the_host_ends_parked_loops_with_after_loop() -> None:
    ends: list[str] = []

    def make(name: str) -> anytasks.Loop[[], None]:
        @anytasks.loop(seconds=60, name=name)
        async def body() -> None:
            pass

        @body.after_loop
        async def after() -> None:
            await anyio.sleep(1)  # shielded: the host waits for it
            ends.append(f"{name} cancelled={body.is_being_cancelled()}")

        return body

    loops = [make(f"loop{i}") for i in range(3)]
    t0 = anyio.current_time()
    async with anytasks.background():
        for loop in loops:
            loop.start()
        await anyio.sleep(5)
    assert sorted(ends) == [f"loop{i} cancelled=True" for i in range(3)]
    assert anyio.current_time() - t0 == 6.0
    for loop in loops:
        assert loop.last_end is not None
        assert loop.last_end.reason is anytasks.EndReason.CANCELLED
        assert not loop.is_running()


async def test_join_from_the_body_of_a_resumed_loop_is_refused() -> None:
    errors: list[str] = []

    @anytasks.loop(seconds=0.02, count=2)
    async def body() -> None:
        if body.current_loop == 1:
            try:
                await body.join()
            except RuntimeError as exc:
                errors.append(str(exc))

    async with anytasks.background():
        body.start()
        await body.join()
    assert len(errors) == 1
    assert "join" in errors[0]


@pytest.mark.virtual_time
async def test_a_thousand_parked_loops_each_run_on_their_grid() -> None:
    runs: dict[int, list[float]] = {}

    def make(index: int) -> anytasks.Loop[[], None]:
        runs[index] = []

        @anytasks.loop(seconds=1 + (index % 7) / 10, count=4)
        async def body() -> None:
            runs[index].append(round(anyio.current_time() - t0, 9))

        return body

    loops = [make(i) for i in range(1000)]
    t0 = anyio.current_time()
    async with anytasks.background():
        for loop in loops:
            loop.start()
        for loop in loops:
            await loop.join()
    for index, times in runs.items():
        interval = 1 + (index % 7) / 10
        assert times == [round(k * interval, 9) for k in range(4)], index


# -- the timer queue ----------------------------------------------------------------------


def test_the_timer_queue_gives_items_by_due_time_then_in_the_order_they_came() -> None:
    queue: TimerQueue[str] = TimerQueue()
    queue.push(2.0, "b")
    queue.push(1.0, "a")
    queue.push(2.0, "c")
    assert len(queue) == 3
    assert queue.next_due() == 1.0
    assert queue.pop_due(0.5) is None
    popped = []
    while (entry := queue.pop_due(2.0)) is not None:
        popped.append((entry[0], entry[2]))
    assert popped == [(1.0, "a"), (2.0, "b"), (2.0, "c")]
    assert queue.next_due() is None
    assert len(queue) == 0


def test_a_withdrawn_item_is_never_given_and_its_due_time_no_longer_counts() -> None:
    queue: TimerQueue[str] = TimerQueue()
    first = queue.push(1.0, "a")
    queue.push(3.0, "b")
    assert queue.is_first(first)
    queue.withdraw(first)
    queue.withdraw(first)  # twice: no effect
    assert len(queue) == 1
    assert queue.next_due() == 3.0
    assert queue.items() == ["b"]
    entry = queue.pop_due(5.0)
    assert entry is not None
    assert entry[2] == "b"


def test_the_timer_queue_drops_withdrawn_entries_once_they_are_half_of_it() -> None:
    queue: TimerQueue[int] = TimerQueue()
    entries = [queue.push(float(i), i) for i in range(2 * COMPACT_AT)]
    for entry in entries[: COMPACT_AT - 1]:
        queue.withdraw(entry)
    assert queue.held == 2 * COMPACT_AT
    queue.withdraw(entries[COMPACT_AT - 1])
    assert queue.held == COMPACT_AT
    assert len(queue) == COMPACT_AT
    assert sorted(queue.items()) == list(range(COMPACT_AT, 2 * COMPACT_AT))
    assert queue.next_due() == float(COMPACT_AT)


# -- the host's tasks on asyncio ------------------------------------------------------------


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager_task_factory is new in 3.12")
@pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True)
async def test_an_eager_task_factory_does_not_start_a_host_task_outside_the_host_scope() -> None:
    ends: list[anytasks.EndReason] = []

    @anytasks.loop(seconds=0.01)
    async def body() -> None:
        pass

    @body.after_loop
    async def after() -> None:
        end = body.last_end
        assert end is not None
        ends.append(end.reason)

    event_loop = asyncio.get_running_loop()
    factory = event_loop.get_task_factory()
    event_loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
    try:
        with anyio.move_on_after(0.05):  # an enclosing scope ends the host's loops
            async with anytasks.background():
                body.start()
                await anyio.sleep_forever()
    finally:
        event_loop.set_task_factory(factory)
    assert ends == [anytasks.EndReason.CANCELLED]
    assert body.current_loop == 0
    assert not body.is_running()


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"], indirect=True)
async def test_a_scope_around_the_host_cancels_a_resumed_iteration_in_progress() -> None:
    started = anyio.Event()
    outcome: list[str] = []

    @anytasks.loop(seconds=0.01)
    async def body() -> None:
        if body.current_loop == 2:
            started.set()
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                outcome.append("cancelled")
                raise

    with anyio.CancelScope() as scope:
        async with anytasks.background():
            body.start()
            await started.wait()
            scope.cancel()
            await anyio.sleep_forever()
    assert outcome == ["cancelled"]
    end = body.last_end
    assert end is not None
    assert end.reason is anytasks.EndReason.CANCELLED
    assert end.iterations == 2


# -- regressions found by the adversarial pass over parking ----------------------------------


class _Fatal(BaseException):
    """Neither an Exception nor a cancellation (as pytest.fail()'s ``Failed``)."""


def _contains(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``exc`` is a ``kind``, or a group (of groups) with one."""
    if isinstance(exc, BaseExceptionGroup):
        group = cast("BaseExceptionGroup[BaseException]", exc)
        return any(_contains(inner, kind) for inner in group.exceptions)
    return isinstance(exc, kind)


@pytest.mark.virtual_time
async def test_a_listener_raising_as_a_parked_loop_ends_still_lets_it_end() -> None:
    @anytasks.loop(seconds=10)
    async def body() -> None:
        pass

    @body.add_listener
    def listen(event: anytasks.LoopEvent) -> None:
        if isinstance(event, anytasks.LoopEnded):
            raise _Fatal

    async def scenario() -> None:
        async with anytasks.background():
            body.start()
            await anyio.sleep(1)
            body.cancel()
            with anyio.move_on_after(5):
                await body.join()

    with pytest.raises(BaseException) as raised:  # noqa: PT011 (bare or in a group)
        await scenario()
    assert _contains(raised.value, _Fatal)
    assert not body.is_running()
    assert body.state is anytasks.LoopState.IDLE


@pytest.mark.virtual_time
async def test_a_listener_raising_as_the_block_ends_lets_the_other_parked_loops_end() -> None:
    def make(name: str) -> anytasks.Loop[[], None]:
        @anytasks.loop(seconds=10, name=name)
        async def body() -> None:
            pass

        return body

    loops = [make(f"loop{i}") for i in range(3)]

    @loops[0].add_listener
    def listen(event: anytasks.LoopEvent) -> None:
        if isinstance(event, anytasks.LoopEnded):
            raise _Fatal

    async def scenario() -> None:
        async with anytasks.background():
            for loop in loops:
                loop.start()
            await anyio.sleep(1)

    with pytest.raises(BaseExceptionGroup) as raised:
        await scenario()
    assert [type(exc) for exc in raised.value.exceptions] == [_Fatal]
    assert [loop.is_running() for loop in loops] == [False, False, False]


@pytest.mark.virtual_time
async def test_a_scope_cancelled_around_the_host_ends_parked_loops_at_once() -> None:
    trace: list[tuple[str, float]] = []

    @anytasks.loop(seconds=10)
    async def body() -> None:
        trace.append(("iteration", anyio.current_time() - t0))

    @body.after_loop
    async def after() -> None:
        trace.append((f"after cancelled={body.is_being_cancelled()}", anyio.current_time() - t0))

    t0 = anyio.current_time()
    with anyio.CancelScope() as outer:
        async with anytasks.background():
            body.start()
            await anyio.sleep(1)
            outer.cancel()
            with anyio.CancelScope(shield=True):
                await anyio.sleep(30)
                trace.append(("block", anyio.current_time() - t0))
    assert trace == [("iteration", 0.0), ("after cancelled=True", 1.0), ("block", 31.0)]
    assert body.last_end is not None
    assert body.last_end.reason is anytasks.EndReason.CANCELLED


@pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True)
async def test_a_loops_base_exception_and_the_blocks_error_are_raised_together() -> None:
    @anytasks.loop(seconds=0.01)
    async def body() -> None:
        if body.current_loop == 1:
            raise _Fatal

    async def scenario() -> None:
        async with anytasks.background():
            body.start()
            try:
                await anyio.sleep(5)
            finally:
                raise ValueError("the block's own error")

    with pytest.raises(BaseExceptionGroup) as raised:
        await scenario()
    assert sorted(type(exc).__name__ for exc in raised.value.exceptions) == [
        "ValueError",
        "_Fatal",
    ]


@pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True)
async def test_start_in_a_host_whose_block_failed_is_refused() -> None:
    @anytasks.loop(seconds=10)
    async def body() -> None:
        pass

    starts: list[asyncio.Task[None]] = []

    async def later() -> None:
        await asyncio.sleep(0.05)
        body.start()

    async def scenario() -> None:
        async with anytasks.background():
            starts.append(asyncio.get_running_loop().create_task(later()))
            raise ValueError("block fails")

    with pytest.raises(BaseException) as raised:  # noqa: PT011 (bare or in a group)
        await scenario()
    assert _contains(raised.value, ValueError)
    with pytest.raises(RuntimeError, match=r"outlived its anytasks\.background"):
        await starts[0]
    assert not body.is_running()


@pytest.mark.virtual_time
async def test_a_loop_started_after_a_scope_around_the_host_was_cancelled_ends_at_once() -> None:
    ran: list[str] = []

    @anytasks.loop(seconds=10)
    async def body() -> None:
        ran.append("body")

    @body.before_loop
    async def before() -> None:
        ran.append("before")

    with anyio.CancelScope() as outer:
        async with anytasks.background():
            outer.cancel()
            with anyio.CancelScope(shield=True):
                body.start()
                await anyio.sleep(1)
                assert not body.is_running()
    assert ran == []
    assert body.last_end is not None
    assert body.last_end.reason is anytasks.EndReason.CANCELLED
