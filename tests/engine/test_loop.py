"""The loop's lifecycle through its public API: run, stop, cancel, restart, hooks, errors."""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
import sys
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import anytasks
from anytasks.testing import wall_now

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio


def utc(*args: int) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=datetime.timezone.utc)


class Recorder:
    """Collects what happened, with the virtual time it happened at."""

    def __init__(self) -> None:
        self.t0 = anyio.current_time()
        self.events: list[str] = []
        self.times: list[float] = []

    def __call__(self, event: str) -> None:
        self.events.append(event)
        self.times.append(anyio.current_time() - self.t0)


# -- counting and the grid ---------------------------------------------------------


async def test_count_loop_runs_count_times_then_after_loop() -> None:
    seen: list[int] = []
    after: list[tuple[int, bool]] = []

    @anytasks.loop(seconds=0, count=5)
    async def counter() -> None:
        seen.append(counter.current_loop)

    @counter.after_loop
    async def done() -> None:
        after.append((counter.current_loop, counter.is_being_cancelled()))

    await counter.run()
    assert seen == [0, 1, 2, 3, 4]
    assert after == [(5, False)]
    assert counter.current_loop == 0
    assert not counter.is_running()
    assert not counter.failed()


@pytest.mark.virtual_time
async def test_iterations_follow_a_fixed_grid_and_end_without_a_last_sleep() -> None:
    rec = Recorder()

    @anytasks.loop(seconds=10, count=4)
    async def tick() -> None:
        rec("tick")
        await anyio.sleep(3)  # body time does not push the schedule

    await tick.run()
    assert rec.times == [0, 10, 20, 30]
    assert anyio.current_time() - rec.t0 == 33


@pytest.mark.virtual_time
async def test_hours_interval_takes_no_real_time() -> None:
    rec = Recorder()

    @anytasks.loop(hours=1, minutes=30, count=3)
    async def slow() -> None:
        rec("run")

    await slow.run()
    assert rec.times == [0, 5400, 10800]


@pytest.mark.virtual_time
async def test_overrun_runs_missed_slots_back_to_back() -> None:
    rec = Recorder()

    @anytasks.loop(seconds=10, count=5)
    async def tick() -> None:
        rec("tick")
        if tick.current_loop == 0:
            await anyio.sleep(25)

    await tick.run()
    # Slots 10 and 20 were missed while the first body ran: both run at 25, then the
    # loop is back on the grid.
    assert rec.times == [0, 25, 25, 30, 40]


@pytest.mark.virtual_time
async def test_no_cumulative_drift_over_many_iterations() -> None:
    rec = Recorder()

    @anytasks.loop(seconds=0.5, count=1000)
    async def tick() -> None:
        rec("tick")
        await anyio.sleep(0.125)

    await tick.run()
    assert rec.times[-1] == 999 * 0.5
    assert rec.times == [k * 0.5 for k in range(1000)]


async def test_call_invokes_the_body_directly() -> None:
    @anytasks.loop(seconds=5)
    async def add(a: int, b: int = 1) -> int:
        return a + b

    assert await add(2, b=3) == 5
    assert not add.is_running()


async def test_arguments_reach_the_body() -> None:
    got: list[tuple[int, str]] = []

    @anytasks.loop(count=2)
    async def body(n: int, *, label: str) -> None:
        got.append((n, label))

    await body.run(7, label="x")
    assert got == [(7, "x"), (7, "x")]


async def test_a_partial_of_a_coroutine_function_is_a_loop_body() -> None:
    seen: list[tuple[str, int]] = []

    async def record(label: str, number: int) -> None:
        seen.append((label, number))

    partial_loop = anytasks.loop(seconds=0, count=2)(functools.partial(record, "p"))
    assert (
        partial_loop.name
        == "anytasks: test_a_partial_of_a_coroutine_function_is_a_loop_body.<locals>.record"
    )
    await partial_loop.run(7)
    assert seen == [("p", 7), ("p", 7)]


# -- stop ------------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_stop_while_sleeping_ends_at_once_without_another_run() -> None:
    rec = Recorder()

    @anytasks.loop(seconds=100)
    async def tick() -> None:
        rec("tick")

    @tick.after_loop
    async def after() -> None:
        rec(f"after cancelled={tick.is_being_cancelled()}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick.run)
        await anyio.sleep(5)
        assert tick.next_iteration is not None
        tick.stop()
        assert tick.next_iteration is None
        await tick.join()
    assert rec.events == ["tick", "after cancelled=False"]
    assert rec.times == [0, 5]


async def test_stop_inside_the_body_finishes_that_iteration() -> None:
    events: list[str] = []

    @anytasks.loop(seconds=0)
    async def body() -> None:
        events.append("begin")
        if len(events) == 5:
            body.stop()
            await anyio.lowlevel.checkpoint()
        events.append("end")

    await body.run()
    assert events == ["begin", "end", "begin", "end", "begin", "end"]


async def test_stop_in_before_loop_skips_every_iteration() -> None:
    events: list[str] = []

    @anytasks.loop(seconds=0)
    async def body() -> None:
        events.append("body")

    @body.before_loop
    async def before() -> None:
        events.append("before")
        body.stop()

    @body.after_loop
    async def after() -> None:
        events.append(f"after cancelled={body.is_being_cancelled()}")

    await body.run()
    assert events == ["before", "after cancelled=False"]


@pytest.mark.virtual_time
async def test_stop_during_backoff_lets_retries_go_on_until_success() -> None:
    rec = Recorder()
    failures = 3

    @anytasks.loop(seconds=60)
    async def flaky() -> None:
        nonlocal failures
        rec("try")
        if failures:
            failures -= 1
            if failures == 2:
                flaky.stop()
            raise ConnectionResetError("dropped")
        rec("ok")

    await flaky.run()
    assert rec.events == ["try", "try", "try", "try", "ok"]
    assert flaky.current_loop == 0


# -- cancel ----------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["before_loop", "body", "sleep", "backoff"])
async def test_cancel_anywhere_runs_after_loop_which_can_still_await(where: str) -> None:
    events: list[str] = []
    reached = anyio.Event()

    @anytasks.loop(seconds=0.01 if where == "sleep" else 0)
    async def body() -> None:
        events.append("body")
        if where == "body":
            reached.set()
            await anyio.sleep_forever()
        if where == "backoff":
            reached.set()
            raise OSError("network down")
        if where == "sleep":
            body.change_interval(seconds=3600)
            reached.set()

    @body.before_loop
    async def before() -> None:
        if where == "before_loop":
            reached.set()
            await anyio.sleep_forever()

    @body.after_loop
    async def after() -> None:
        await anyio.sleep(0.01)  # would raise at once if not shielded
        events.append(f"after cancelled={body.is_being_cancelled()}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(body.run)
        await reached.wait()
        await anyio.lowlevel.checkpoint()
        body.cancel()
        assert body.is_being_cancelled()
        await body.join()
    expected_body = [] if where == "before_loop" else ["body"]
    assert events == [*expected_body, "after cancelled=True"]
    assert not body.is_being_cancelled()
    assert not body.is_running()
    assert not body.failed()


async def test_cancelling_the_enclosing_task_group_runs_after_loop() -> None:
    events: list[str] = []
    running = anyio.Event()

    @anytasks.loop(seconds=0.01)
    async def body() -> None:
        running.set()

    @body.after_loop
    async def after() -> None:
        await anyio.sleep(0.01)
        events.append(f"after cancelled={body.is_being_cancelled()}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(body.run)
        await running.wait()
        tg.cancel_scope.cancel()
    assert events == ["after cancelled=True"]
    assert not body.is_running()


async def test_cancel_stop_and_restart_do_nothing_when_not_running() -> None:
    @anytasks.loop(seconds=1)
    async def body() -> None:
        pass

    body.cancel()
    body.stop()
    body.restart()
    await body.join()
    assert not body.is_running()
    assert not body.is_being_cancelled()
    assert body.next_iteration is None
    assert body.get_task() is None


async def test_cancel_right_after_start_never_runs_the_body() -> None:
    events: list[str] = []

    @anytasks.loop(seconds=0)
    async def body() -> None:
        events.append("body")

    @body.after_loop
    async def after() -> None:
        events.append(f"after cancelled={body.is_being_cancelled()}")

    async with anytasks.background():
        body.start()
        body.cancel()
        await body.join()
    assert events == ["after cancelled=True"]


def _at_deadline(deadline: float, callback: Any, backend_name: str, tg: Any) -> None:
    """Call ``callback`` in the same event-loop tick as a loop's timer for ``deadline``."""
    if backend_name == "trio":

        async def later() -> None:
            import trio

            await trio.sleep_until(deadline)
            callback()

        tg.start_soon(later)
    else:
        # Scheduled after the loop's own timer for the same time: both fire in one tick,
        # the loop's first.
        asyncio.get_running_loop().call_at(deadline, callback)


@pytest.mark.virtual_time
async def test_cancel_in_the_tick_the_timer_fires_runs_no_more_body(backend_name: str) -> None:
    calls: list[float] = []
    cancelled = False
    t0 = anyio.current_time()

    @anytasks.loop(seconds=10)
    async def body(tg: Any) -> None:
        assert not cancelled, "the body ran after cancel() had returned"
        calls.append(anyio.current_time() - t0)
        if len(calls) == 1:
            _at_deadline(anyio.current_time() + 10, cancel, backend_name, tg)

    def cancel() -> None:
        nonlocal cancelled
        body.cancel()
        cancelled = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(body.run, tg)
    # On asyncio the loop's timer fires first, then cancel(): the woken loop must not begin
    # its body. Trio runs the tasks woken in one tick in a random order, so there the body
    # may also have begun (legitimately) before cancel() was called.
    assert calls == [0] if backend_name != "trio" else calls in ([0], [0, 10])


# -- restart ---------------------------------------------------------------------------


async def test_restart_runs_again_with_new_arguments_in_the_same_run_call() -> None:
    events: list[str] = []

    @anytasks.loop(seconds=0.01)
    async def body(tag: str) -> None:
        events.append(tag)
        if tag == "first":
            body.restart("second")
            await anyio.sleep_forever()
        else:
            body.stop()

    @body.before_loop
    async def before() -> None:
        events.append("before")

    @body.after_loop
    async def after() -> None:
        events.append(f"after cancelled={body.is_being_cancelled()}")

    await body.run("first")
    assert events == [
        "before",
        "first",
        "after cancelled=True",
        "before",
        "second",
        "after cancelled=False",
    ]
    assert not body.is_running()


async def test_restart_in_a_host_and_join_waits_across_it() -> None:
    tags: list[str] = []
    first = anyio.Event()

    @anytasks.loop(seconds=0.01)
    async def body(tag: str) -> None:
        tags.append(tag)
        if tag == "a":
            first.set()
        else:
            body.stop()

    async with anytasks.background():
        body.start("a")
        await first.wait()
        body.restart("b")
        assert body.is_running()
        await body.join()
        assert not body.is_running()
    assert tags[0] == "a"
    assert tags[-1] == "b"
    assert tags.count("b") == 1


@pytest.mark.virtual_time
async def test_restart_in_the_tick_the_timer_fires_runs_only_the_new_body(
    backend_name: str,
) -> None:
    calls: list[str] = []
    restarted = False

    @anytasks.loop(seconds=10, count=3)
    async def body(label: str, tg: Any) -> None:
        assert not (restarted and label == "old"), "the old body ran after restart() returned"
        calls.append(label)
        if calls == ["old"]:
            _at_deadline(anyio.current_time() + 10, restart, backend_name, tg)

    def restart() -> None:
        nonlocal restarted
        body.restart("new", tg)
        restarted = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(body.run, "old", tg)
    # As above, on Trio the old body may have begun in that tick before restart() was called.
    new_run = ["new", "new", "new"]
    if backend_name != "trio":
        assert calls == ["old", *new_run]
    else:
        assert calls in (["old", *new_run], ["old", "old", *new_run])


# -- errors ----------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_handled_error_retries_the_same_iteration_with_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = Recorder()
    failures = 2

    @anytasks.loop(seconds=100, count=2)
    async def flaky() -> None:
        nonlocal failures
        rec(f"try current_loop={flaky.current_loop}")
        if failures:
            failures -= 1
            raise TimeoutError("slow network")

    with caplog.at_level(logging.WARNING, logger="anytasks"):
        await flaky.run()
    assert rec.events == [
        "try current_loop=0",
        "try current_loop=0",
        "try current_loop=0",
        "try current_loop=1",
    ]
    # Backoff delays are drawn from [0, 2] and then [0, 4] seconds.
    assert 0 <= rec.times[1] <= 2
    assert rec.times[1] <= rec.times[2] <= rec.times[1] + 4
    # The schedule does not advance for retries: iteration 2 is still due at 100.
    assert rec.times[3] == 100
    retries = [r for r in caplog.records if r.name == "anytasks"]
    assert len(retries) == 2
    assert all(r.levelno == logging.WARNING and r.exc_info for r in retries)
    assert "retrying" in retries[0].getMessage()


@pytest.mark.parametrize("reconnect", [True, False])
async def test_unhandled_error_calls_error_hook_then_after_loop_then_raises(
    reconnect: bool,
) -> None:
    events: list[str] = []
    exc_type: type[Exception] = ValueError if reconnect else OSError

    @anytasks.loop(seconds=0, reconnect=reconnect)
    async def body() -> None:
        events.append("body")
        raise exc_type("boom")

    @body.error
    async def on_error(exc: BaseException) -> None:
        events.append(f"error {type(exc).__name__} failed={body.failed()}")

    @body.after_loop
    async def after() -> None:
        events.append(f"after failed={body.failed()}")

    with pytest.raises(exc_type, match="boom"):
        await body.run()
    assert events == [
        "body",
        f"error {exc_type.__name__} failed=True",
        "after failed=True",
    ]
    assert body.failed()
    assert not body.is_running()


async def test_default_error_hook_logs_with_traceback(caplog: pytest.LogCaptureFixture) -> None:
    @anytasks.loop(seconds=0, name="reporter")
    async def body() -> None:
        raise KeyError("missing")

    with caplog.at_level(logging.ERROR, logger="anytasks"), pytest.raises(KeyError):
        await body.run()
    [record] = [r for r in caplog.records if r.name == "anytasks"]
    assert record.levelno == logging.ERROR
    assert "'reporter'" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is KeyError


async def test_failed_is_reset_by_the_next_start() -> None:
    fail = True

    @anytasks.loop(seconds=0, count=1)
    async def body() -> None:
        if fail:
            raise RuntimeError("first run fails")

    @body.error
    async def quiet(exc: BaseException) -> None:
        pass

    with pytest.raises(RuntimeError):
        await body.run()
    assert body.failed()
    fail = False
    await body.run()
    assert not body.failed()


@pytest.mark.virtual_time
async def test_exception_group_of_handled_errors_is_retried() -> None:
    attempts = 0

    @anytasks.loop(seconds=1, count=1)
    async def body() -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ExceptionGroup("subtasks", [OSError("a"), TimeoutError("b")])

    await body.run()
    assert attempts == 2


async def test_exception_group_with_an_unhandled_error_ends_the_loop() -> None:
    @anytasks.loop(seconds=1)
    async def body() -> None:
        raise ExceptionGroup("subtasks", [OSError("a"), ValueError("b")])

    @body.error
    async def quiet(exc: BaseException) -> None:
        pass

    with pytest.raises(ExceptionGroup):
        await body.run()
    assert body.failed()


async def test_custom_exception_types() -> None:
    class DatabaseDown(Exception):
        pass

    attempts = 0

    @anytasks.loop(seconds=0, count=1)
    async def body() -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise DatabaseDown

    body.add_exception_type(DatabaseDown)
    with anyio.fail_after(60):
        await body.run()
    assert attempts == 3

    assert body.remove_exception_type(DatabaseDown)
    attempts = 0

    @body.error
    async def quiet(exc: BaseException) -> None:
        pass

    with pytest.raises(DatabaseDown):
        await body.run()
    assert attempts == 1


async def test_clear_exception_types_makes_every_error_fatal() -> None:
    @anytasks.loop(seconds=0)
    async def body() -> None:
        raise OSError("down")

    @body.error
    async def quiet(exc: BaseException) -> None:
        pass

    body.clear_exception_types()
    with pytest.raises(OSError, match="down"):
        await body.run()


async def test_error_in_a_task_group_propagates_structurally() -> None:
    @anytasks.loop(seconds=0)
    async def body() -> None:
        raise LookupError("structured")

    @body.error
    async def quiet(exc: BaseException) -> None:
        pass

    with pytest.raises(ExceptionGroup) as info:  # noqa: PT012
        async with anyio.create_task_group() as tg:
            tg.start_soon(body.run)
            await anyio.sleep_forever()
    assert [type(e) for e in info.value.exceptions] == [LookupError]


# -- change_interval and next_iteration --------------------------------------------------


@pytest.mark.virtual_time
async def test_change_interval_while_sleeping_replans_from_the_last_start() -> None:
    rec = Recorder()

    @anytasks.loop(seconds=100, count=3)
    async def tick() -> None:
        rec("tick")

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick.run)
        await anyio.sleep(30)
        tick.change_interval(seconds=50)  # due at 0 + 50
        await anyio.sleep(40)
        tick.change_interval(seconds=5)  # due at 50 + 5, already past: now
    assert rec.times == [0, 50, 70]
    assert tick.seconds == 5


@pytest.mark.virtual_time
async def test_change_interval_does_not_shorten_a_backoff_wait() -> None:
    rec = Recorder()

    @anytasks.loop(seconds=100, count=1)
    async def flaky() -> None:
        rec("try")
        if len(rec.events) == 1:
            raise OSError("down")

    async with anyio.create_task_group() as tg:
        tg.start_soon(flaky.run)
        await anyio.lowlevel.checkpoint()
        flaky.change_interval(seconds=0)
    assert rec.events == ["try", "try"]
    assert rec.times[1] > 0


@pytest.mark.virtual_time
async def test_next_iteration_is_an_aware_utc_datetime_on_the_grid() -> None:
    import datetime

    seen: list[datetime.datetime | None] = []

    @anytasks.loop(minutes=1, count=3)
    async def tick() -> None:
        seen.append(tick.next_iteration)

    assert tick.next_iteration is None
    await tick.run()
    start = datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.timezone.utc)
    assert seen == [start + datetime.timedelta(minutes=k) for k in (1, 2, 3)]
    assert all(d is not None and d.tzinfo is datetime.timezone.utc for d in seen)
    assert tick.next_iteration is None


@pytest.mark.virtual_time
async def test_change_interval_to_time_when_behind_schedule() -> None:
    seen: list[datetime.datetime] = []

    @anytasks.loop(seconds=0, count=4)
    async def body() -> None:
        seen.append(wall_now())
        if body.current_loop == 1:
            body.change_interval(time=datetime.time(13))

    await body.run()
    # virtual_start is 2026-01-05 12:00 UTC.
    assert seen == [
        utc(2026, 1, 5, 12),
        utc(2026, 1, 5, 12),
        utc(2026, 1, 5, 13),
        utc(2026, 1, 6, 13),
    ]


@pytest.mark.virtual_time
async def test_change_interval_to_time_right_after_an_overrun() -> None:
    seen: list[datetime.datetime] = []

    @anytasks.loop(seconds=10, count=3)
    async def body() -> None:
        seen.append(wall_now())
        if body.current_loop == 0:
            await anyio.sleep(25)  # overruns two slots
            body.change_interval(time=datetime.time(12, 30))

    await body.run()
    assert seen == [utc(2026, 1, 5, 12), utc(2026, 1, 5, 12, 30), utc(2026, 1, 6, 12, 30)]


@pytest.mark.virtual_time
@pytest.mark.parametrize("where", ["before_loop", "backoff", "waiting"])
async def test_change_interval_to_time_from_other_states(where: str) -> None:
    seen: list[datetime.datetime] = []
    failures = 0

    @anytasks.loop(seconds=5, count=2)
    async def body() -> None:
        nonlocal failures
        if where == "backoff" and failures == 0:
            failures += 1
            raise OSError("flaky")
        seen.append(wall_now())

    @body.before_loop
    async def before() -> None:
        if where == "before_loop":
            body.change_interval(time=datetime.time(12, 30))

    async def control() -> None:
        await anyio.sleep(0.5)  # in the backoff wait, or in the wait after the first run
        if where != "before_loop":
            body.change_interval(time=datetime.time(12, 30))

    async with anyio.create_task_group() as tg:
        tg.start_soon(body.run)
        tg.start_soon(control)
    if where == "before_loop":
        assert seen == [utc(2026, 1, 5, 12, 30), utc(2026, 1, 6, 12, 30)]
    else:
        # The iteration that was retried or had just run stays where it was.
        first = seen[0]
        assert first < utc(2026, 1, 5, 12, 0, 5)
        assert seen[1:] == [utc(2026, 1, 5, 12, 30)]


@pytest.mark.virtual_time
@pytest.mark.parametrize(
    ("at", "seconds", "times"),
    [
        # Not 3000 runs back to back: one now, then every second from there.
        (3000, 1, [0, 3000, 3001, 3002]),
        # Still ahead: the new interval counts from the last run at 0.
        (10, 60, [0, 60, 120, 180]),
    ],
)
async def test_change_interval_to_a_shorter_interval_runs_at_most_once_at_once(
    at: float, seconds: float, times: list[float]
) -> None:
    seen: list[float] = []
    t0 = anyio.current_time()

    @anytasks.loop(hours=1, count=4)
    async def body() -> None:
        seen.append(anyio.current_time() - t0)

    async def control() -> None:
        await anyio.sleep(at)
        body.change_interval(seconds=seconds)

    async with anyio.create_task_group() as tg:
        tg.start_soon(body.run)
        tg.start_soon(control)
    assert seen == times


async def test_next_iteration_of_a_huge_interval_is_the_far_future() -> None:
    seen: list[datetime.datetime | None] = []

    @anytasks.loop(seconds=1e12, count=2)
    async def body() -> None:
        seen.append(body.next_iteration)
        body.stop()

    await body.run()
    assert seen == [datetime.datetime.max.replace(tzinfo=datetime.timezone.utc)]


# -- starting ----------------------------------------------------------------------------


async def test_task_group_start_returns_after_before_loop() -> None:
    events: list[str] = []

    @anytasks.loop(seconds=0.01)
    async def body() -> None:
        events.append("body")
        body.stop()

    @body.before_loop
    async def before() -> None:
        await anyio.sleep(0.01)
        events.append("before")

    async with anyio.create_task_group() as tg:
        await tg.start(body.run)
        # before_loop has finished by now; whether the first iteration has begun
        # yet is up to the scheduler.
        assert events[0] == "before"
        assert body.is_running() or events == ["before", "body"]
    assert events == ["before", "body"]


async def test_task_group_start_returns_even_if_stopped_in_before_loop() -> None:
    @anytasks.loop(seconds=0)
    async def body() -> None:
        raise AssertionError("must not run")

    @body.before_loop
    async def before() -> None:
        body.stop()

    async with anyio.create_task_group() as tg:
        await tg.start(body.run)
    assert not body.is_running()


async def test_task_group_start_waits_for_before_loop_across_a_restart() -> None:
    events: list[str] = []
    runs = 0

    @anytasks.loop(seconds=0, count=1)
    async def body() -> None:
        events.append("body")

    @body.before_loop
    async def before() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            body.restart()
            await anyio.sleep(1)
        events.append(f"before {runs} done")

    async with anyio.create_task_group() as tg:
        await tg.start(body.run)
        events.append("start() returned")
    # The body runs before the starting task resumes: nothing in between awaits.
    assert events == ["before 2 done", "body", "start() returned"]


async def test_running_twice_is_an_error() -> None:
    @anytasks.loop(seconds=1)
    async def body() -> None:
        pass

    async with anytasks.background():
        body.start()
        with pytest.raises(RuntimeError, match="is already running"):
            body.start()
        with pytest.raises(RuntimeError, match="is already running"):
            await body.run()
        body.cancel()


async def test_already_running_points_to_join_and_is_running() -> None:
    @anytasks.loop(seconds=1)
    async def body() -> None:
        pass

    async with anyio.create_task_group() as tg:
        await tg.start(body.run)
        with pytest.raises(RuntimeError, match=r"await loop.join\(\).*loop.is_running\(\)"):
            await body.run()
        body.cancel()


async def test_stop_from_another_task_while_catching_up() -> None:
    runs = 0

    @anytasks.loop(seconds=0)
    async def busy() -> None:
        nonlocal runs
        runs += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(busy.run)
        while runs < 3:
            await anyio.lowlevel.checkpoint()
        # The loop is parked at its catch-up checkpoint between two iterations.
        busy.stop()
        stopped_at = runs
    assert runs == stopped_at


async def test_next_iteration_is_none_until_the_first_iteration_is_scheduled() -> None:
    seen: list[object] = []

    @anytasks.loop(seconds=1, count=1)
    async def body() -> None:
        pass

    @body.before_loop
    async def before() -> None:
        seen.append(body.next_iteration)

    await body.run()
    assert seen == [None]


async def test_hooks_of_a_method_loop_receive_self() -> None:
    class Cog:
        def __init__(self) -> None:
            self.log: list[str] = []

        @anytasks.loop(seconds=0)
        async def body(self) -> None:
            self.log.append("body")
            raise ValueError("from the body")

        @body.before_loop
        async def before(self) -> None:
            self.log.append("before")

        @body.error
        async def on_error(self, exc: BaseException) -> None:
            self.log.append(f"error {exc}")

        @body.after_loop
        async def after(self) -> None:
            self.log.append("after")

    cog = Cog()
    with pytest.raises(ValueError, match="from the body"):
        await cog.body.run()
    assert cog.log == ["before", "body", "error from the body", "after"]
    assert cog.body.failed()
    assert not Cog.body.failed()
