"""One named regression test per lifecycle defect found by the adversarial pass (issue 7).

Each test reproduces the defect as it was reported and asserts the behaviour that replaced it,
on every backend where the defect could happen. The lifecycle fuzz test
(``test_lifecycle_fuzz.py``) keeps the whole state-by-control matrix closed besides.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
import sys
import threading
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

import anytasks
from anytasks.testing import wall_now

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio

asyncio_only = pytest.mark.parametrize(
    "anyio_backend", ["asyncio", "asyncio+uvloop"], indirect=True
)
# Before Python 3.11 asyncio keeps no count of Task.cancel() calls, so a CancelledError
# that nobody asked for cannot be told from one that a native cancel() caused.
needs_cancel_counting = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="asyncio counts Task.cancel() requests since 3.11"
)


def utc(*args: int) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=datetime.timezone.utc)


async def run_beside(run: Any, control: Any) -> None:
    """Run ``run()`` and ``control(task_group)`` (or ``control()``) in one task group."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        if control.__code__.co_argcount:
            await control(tg)
        else:
            await control()


def only_error(group: ExceptionGroup[Exception]) -> Exception:
    """The one exception a task group raised."""
    [error] = group.exceptions
    return error


# -- 1. a stray CancelledError is an error of that loop, not a cancellation ------------------


async def _stray_cancel() -> None:
    """Await a future that something else cancels, as a misbehaving library would."""
    event_loop = asyncio.get_running_loop()
    future = event_loop.create_future()
    event_loop.call_soon(future.cancel)
    await future


@needs_cancel_counting
@asyncio_only
async def test_a_stray_cancelled_error_fails_that_daemon_only() -> None:
    events: list[str] = []
    beats = 0

    @anytasks.loop(seconds=1, name="fetch")
    async def fetch() -> None:
        events.append("fetch")
        await _stray_cancel()

    @fetch.error
    async def fetch_error(exc: BaseException) -> None:
        assert isinstance(exc.__cause__, asyncio.CancelledError)
        events.append(f"error {type(exc).__name__}")

    @fetch.after_loop
    async def fetch_after() -> None:
        events.append(f"after cancelled={fetch.is_being_cancelled()}")

    @anytasks.loop(seconds=0.001)
    async def heartbeat() -> None:
        nonlocal beats
        beats += 1

    async with anytasks.background():
        fetch.start()
        heartbeat.start()
        await fetch.join()
        before = beats
        await anyio.sleep(0.05)
        assert heartbeat.is_running()
        assert beats > before
        events.append("block body finished")
    assert events == [
        "fetch",
        "error RuntimeError",
        "after cancelled=False",
        "block body finished",
    ]
    assert fetch.failed()
    assert not fetch.is_running()


@needs_cancel_counting
@asyncio_only
async def test_a_stray_cancelled_error_is_raised_by_run_as_a_runtime_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @anytasks.loop(seconds=0, name="fetch")
    async def fetch() -> None:
        await _stray_cancel()

    with (
        caplog.at_level(logging.ERROR, logger="anytasks"),
        pytest.raises(RuntimeError, match="CancelledError that no cancel scope") as info,
    ):
        await fetch.run()
    assert isinstance(info.value.__cause__, asyncio.CancelledError)
    assert fetch.failed()
    [record] = caplog.records
    assert record.getMessage() == "Unhandled exception in loop 'fetch'"


@needs_cancel_counting
@asyncio_only
async def test_a_stray_cancelled_error_in_before_loop_fails_the_loop() -> None:
    ran: list[str] = []

    @anytasks.loop(seconds=0)
    async def body() -> None:
        ran.append("body")

    @body.before_loop
    async def before() -> None:
        await _stray_cancel()

    with pytest.raises(RuntimeError, match="CancelledError"):
        await body.run()
    assert ran == []
    assert body.failed()


async def test_a_real_cancellation_of_the_enclosing_scope_is_never_swallowed() -> None:
    @anytasks.loop(seconds=3600)
    async def body() -> None:
        pass

    with anyio.move_on_after(1) as scope:
        await body.run()
        pytest.fail("run() returned inside a cancelled scope")
    assert scope.cancelled_caught
    assert not body.failed()


# -- 2. change_interval(time=...) from every state of an interval loop ----------------------


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


# -- 3. a failed start leaves nothing running -----------------------------------------------


async def test_start_from_a_task_that_outlived_its_host_is_a_clear_error() -> None:
    ran: list[int] = []

    @anytasks.loop(seconds=0, count=1)
    async def body() -> None:
        ran.append(1)

    host_ended = anyio.Event()
    errors: list[str] = []

    async def straggler() -> None:
        await host_ended.wait()
        with pytest.raises(RuntimeError, match=r"outlived its anytasks\.background") as info:
            body.start()
        errors.append(str(info.value))
        assert not body.is_running()
        await body.join()  # returns at once
        await body.run()  # and the loop still starts

    async with anyio.create_task_group() as tg:
        async with anytasks.background():
            tg.start_soon(straggler)  # inherits the host's context
        host_ended.set()
    assert len(errors) == 1
    assert ran == [1]


@asyncio_only
async def test_a_fallback_task_cancelled_in_the_tick_of_start_ends_the_loop() -> None:
    events: list[str] = []

    @anytasks.loop(seconds=0, count=1)
    async def body() -> None:
        events.append("body")

    @body.before_loop
    async def before() -> None:
        events.append("before")

    @body.after_loop
    async def after() -> None:
        events.append("after")

    task = body.start()
    assert task is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The task never ran its first step, so neither hook ran (as with discord.py).
    assert events == []
    assert not body.is_running()
    await body.join()
    again = body.start()
    assert again is not None
    await again
    assert events == ["before", "body", "after"]


# -- 4. after_loop finishes through a second native Task.cancel() ---------------------------


async def _started_loop_with_a_slow_after_loop() -> tuple[
    anytasks.Loop[[], None], asyncio.Task[None], list[str]
]:
    """A loop started as a fallback task, 0.03 s in; its after_loop awaits 0.05 s, then records."""
    flushed: list[str] = []

    @anytasks.loop(seconds=0.01)
    async def body() -> None:
        pass

    @body.after_loop
    async def flush() -> None:
        await asyncio.sleep(0.05)
        flushed.append(f"flushed cancelled={body.is_being_cancelled()}")

    task = body.start()
    assert task is not None
    await asyncio.sleep(0.03)
    return body, task, flushed


@asyncio_only
async def test_after_loop_survives_a_second_native_cancel() -> None:
    body, task, flushed = await _started_loop_with_a_slow_after_loop()
    task.cancel()
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert flushed == ["flushed cancelled=True"]
    assert task.cancelled()
    assert not body.is_running()


# -- 5. no body after cancel() or restart() in the tick where the timer fires ---------------


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


# -- 6. is_being_cancelled() is reset for every run -----------------------------------------


async def test_is_being_cancelled_does_not_leak_when_after_loop_raised() -> None:
    seen: list[str] = []
    first = True

    @anytasks.loop(seconds=0.01)
    async def body() -> None:
        seen.append(f"body cancelled={body.is_being_cancelled()}")
        if not first:
            body.stop()
        else:
            await anyio.sleep_forever()

    @body.after_loop
    async def after() -> None:
        seen.append(f"after cancelled={body.is_being_cancelled()}")
        if first:
            raise RuntimeError("after_loop bug")

    async def cancel_soon() -> None:
        await anyio.sleep(0.005)
        body.cancel()

    with pytest.raises(ExceptionGroup) as info:
        await run_beside(body.run, cancel_soon)
    assert repr(only_error(info.value)) == "RuntimeError('after_loop bug')"
    assert not body.is_being_cancelled()
    first = False
    await body.run()
    assert seen == [
        "body cancelled=False",
        "after cancelled=True",
        "body cancelled=False",
        "after cancelled=False",
    ]


# -- 7. an unhandled error is never lost; restart() from the error hook restarts ------------


@pytest.mark.parametrize("control", ["cancel", "outer cancel"])
async def test_cancel_while_the_error_hook_awaits_still_raises_the_error(control: str) -> None:
    events: list[str] = []

    @anytasks.loop(seconds=0)
    async def body() -> None:
        raise ValueError("bad data")

    @body.error
    async def on_error(exc: BaseException) -> None:
        events.append("error hook")
        await anyio.sleep(10)
        events.append("error hook finished")

    @body.after_loop
    async def after() -> None:
        events.append(f"after cancelled={body.is_being_cancelled()}")

    async def interrupt(tg: anyio.abc.TaskGroup) -> None:
        await anyio.sleep(1)
        if control == "cancel":
            body.cancel()
        else:
            tg.cancel_scope.cancel()

    with pytest.raises(ExceptionGroup) as info:
        await run_beside(body.run, interrupt)
    assert repr(only_error(info.value)) == "ValueError('bad data')"
    assert events == ["error hook", "after cancelled=True"]
    assert body.failed()


@asyncio_only
async def test_a_fallback_task_ends_with_the_error_when_cancelled_in_the_error_hook() -> None:
    @anytasks.loop(seconds=0)
    async def body() -> None:
        raise ValueError("bad data")

    @body.error
    async def on_error(exc: BaseException) -> None:
        await asyncio.sleep(10)

    task = body.start()
    assert task is not None
    await asyncio.sleep(0.01)
    body.cancel()
    with pytest.raises(ValueError, match="bad data"):
        await task


@pytest.mark.parametrize("awaits_after", [False, True], ids=["returns", "awaits"])
async def test_restart_from_the_error_hook_restarts_the_loop(awaits_after: bool) -> None:
    events: list[str] = []

    @anytasks.loop(seconds=0, count=1)
    async def body(attempt: int) -> None:
        events.append(f"body {attempt}")
        if attempt == 1:
            raise ValueError("first attempt fails")

    @body.error
    async def on_error(exc: BaseException) -> None:
        events.append(f"error {exc}")
        body.restart(2)
        if awaits_after:
            await anyio.sleep(1)
            events.append("not reached: restart() cancels the hook")

    @body.after_loop
    async def after() -> None:
        events.append(f"after cancelled={body.is_being_cancelled()} failed={body.failed()}")

    await body.run(1)  # does not raise: the hook chose to restart
    assert events == [
        "body 1",
        "error first attempt fails",
        "after cancelled=True failed=True",
        "body 2",
        "after cancelled=False failed=False",
    ]
    assert not body.failed()


# -- minor ----------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["after_loop", "body", "before_loop"])
async def test_join_from_inside_the_loop_is_an_error_not_a_deadlock(where: str) -> None:
    errors: list[str] = []

    @anytasks.loop(seconds=0, count=1)
    async def body() -> None:
        if where == "body":
            await join()

    async def join() -> None:
        with pytest.raises(RuntimeError, match="from inside the loop's own body or hooks"):
            await body.join()
        errors.append(where)

    if where == "after_loop":
        body.after_loop(join)
    elif where == "before_loop":
        body.before_loop(join)
    with anyio.fail_after(5):
        await body.run()
    assert errors == [where]


@asyncio_only
async def test_cancel_and_native_cancel_in_one_tick_cancel_the_task() -> None:
    @anytasks.loop(seconds=0.01)
    async def body() -> None:
        pass

    task = body.start()
    assert task is not None
    await asyncio.sleep(0.03)
    body.cancel()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


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


async def test_outer_cancel_while_the_error_hook_awaits_is_seen_by_after_loop() -> None:
    events: list[str] = []

    @anytasks.loop(seconds=0)
    async def body() -> None:
        raise ValueError("bad data")

    @body.error
    async def on_error(exc: BaseException) -> None:
        await anyio.sleep(10)

    @body.after_loop
    async def after() -> None:
        events.append(f"after cancelled={body.is_being_cancelled()}")

    async def host() -> None:
        async with anytasks.background():
            body.start()
            await anyio.sleep(1)
        # leaving the host cancels the loop, here in its error hook

    with anyio.fail_after(5):
        await host()
    assert events == ["after cancelled=True"]
    assert body.failed()


async def test_controls_from_another_thread_fail_loudly() -> None:
    @anytasks.loop(seconds=0.01)
    async def body() -> None:
        pass

    async with anyio.create_task_group() as tg:
        tg.start_soon(body.run)
        await anyio.sleep(0.02)
        for control in (body.stop, body.cancel, body.restart):
            with pytest.raises(RuntimeError, match="another thread"):
                await anyio.to_thread.run_sync(control)
        with pytest.raises(RuntimeError, match="another thread"):
            await anyio.to_thread.run_sync(functools.partial(body.change_interval, seconds=1))
        assert body.seconds == 0.01
        assert body.is_running()
        body.cancel()


async def test_two_threads_cannot_run_the_same_loop_at_once(
    anyio_backend: tuple[str, dict[str, Any]],
) -> None:
    running = threading.Event()
    release = threading.Event()

    @anytasks.loop(seconds=0, count=1)
    async def body() -> None:
        running.set()
        await anyio.to_thread.run_sync(release.wait)

    def other_thread() -> None:
        anyio.run(body.run, backend="asyncio")

    thread = threading.Thread(target=other_thread)
    thread.start()
    try:
        await anyio.to_thread.run_sync(running.wait)
        with pytest.raises(RuntimeError, match="already running"):
            await body.run()
    finally:
        release.set()
        await anyio.to_thread.run_sync(thread.join)
    assert not body.is_running()


async def test_next_iteration_of_a_huge_interval_is_the_far_future() -> None:
    seen: list[datetime.datetime | None] = []

    @anytasks.loop(seconds=1e12, count=2)
    async def body() -> None:
        seen.append(body.next_iteration)
        body.stop()

    await body.run()
    assert seen == [datetime.datetime.max.replace(tzinfo=datetime.timezone.utc)]


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


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager_task_factory is new in 3.12")
# Not uvloop: on Python 3.13 its create_task() hands the factory an argument
# (eager_start) that asyncio's eager factory does not take.
@pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True)
async def test_get_task_is_the_task_inside_hooks_under_an_eager_task_factory() -> None:
    seen: list[bool] = []

    @anytasks.loop(seconds=0, count=1)
    async def body() -> None:
        seen.append(body.get_task() is asyncio.current_task())

    @body.before_loop
    async def before() -> None:
        seen.append(body.get_task() is asyncio.current_task())

    event_loop = asyncio.get_running_loop()
    factory = event_loop.get_task_factory()
    event_loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
    try:
        task = body.start()
    finally:
        event_loop.set_task_factory(factory)
    assert task is not None
    await task
    assert seen == [True, True]


async def test_an_after_loop_error_does_not_replace_the_body_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @anytasks.loop(seconds=0, name="failing")
    async def body() -> None:
        raise ValueError("the body's error")

    @body.after_loop
    async def after() -> None:
        raise KeyError("after_loop's error")

    with (
        caplog.at_level(logging.ERROR, logger="anytasks"),
        pytest.raises(ValueError, match="the body's error"),
    ):
        await body.run()
    messages = [(r.getMessage(), r.exc_info[0] if r.exc_info else None) for r in caplog.records]
    assert messages == [
        ("Unhandled exception in loop 'failing'", ValueError),
        ("Exception in after_loop of loop 'failing', which had failed already", KeyError),
    ]


async def test_already_running_points_to_join_and_is_running() -> None:
    @anytasks.loop(seconds=1)
    async def body() -> None:
        pass

    async with anyio.create_task_group() as tg:
        await tg.start(body.run)
        with pytest.raises(RuntimeError, match=r"await loop.join\(\).*loop.is_running\(\)"):
            await body.run()
        body.cancel()


async def test_restart_from_after_loop_of_a_failed_run_restarts_instead_of_raising() -> None:
    events: list[str] = []

    @anytasks.loop(seconds=0, count=1)
    async def body(attempt: int) -> None:
        events.append(f"body {attempt}")
        if attempt == 1:
            raise ValueError("first attempt fails")

    @body.error
    async def on_error(exc: BaseException) -> None:
        events.append(f"error {exc}")

    @body.after_loop
    async def after() -> None:
        events.append(f"after failed={body.failed()}")
        if body.failed():
            body.restart(2)

    await body.run(1)
    assert events == [
        "body 1",
        "error first attempt fails",
        "after failed=True",
        "body 2",
        "after failed=False",
    ]


# -- found by the review of the change: hooks, shutdowns, spawned tasks, Python 3.10 ----------


@needs_cancel_counting
@asyncio_only
async def test_a_stray_cancelled_error_in_after_loop_does_not_end_the_host(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []
    beats = 0

    @anytasks.loop(seconds=0, count=1, name="fetch")
    async def fetch() -> None:
        events.append("fetch")

    @fetch.after_loop
    async def fetch_after() -> None:
        events.append("after")
        await _stray_cancel()

    @anytasks.loop(seconds=0.001)
    async def heartbeat() -> None:
        nonlocal beats
        beats += 1

    outcome = "block body did not finish"
    with caplog.at_level(logging.ERROR, logger="anytasks"):
        try:
            async with anytasks.background():
                fetch.start()
                heartbeat.start()
                await anyio.sleep(0.05)
                before = beats
                await anyio.sleep(0.05)
                assert heartbeat.is_running()
                assert beats > before
                outcome = "block body finished"
        except BaseException as exc:  # a stray CancelledError must not escape either
            outcome = f"block raised {exc!r}"
    assert outcome == "block body finished"
    assert events == ["fetch", "after"]
    assert not fetch.is_running()
    # The hook's stray cancellation is reported (a daemon has nobody to raise to).
    assert any(record.exc_info is not None for record in caplog.records)


@needs_cancel_counting
@asyncio_only
async def test_a_stray_cancelled_error_in_after_loop_is_not_raised_by_run_as_a_cancellation() -> (
    None
):
    @anytasks.loop(seconds=0, count=1)
    async def body() -> None:
        pass

    @body.after_loop
    async def after() -> None:
        await _stray_cancel()

    outcome = "returned"
    try:
        await body.run()
    except BaseException as exc:
        outcome = type(exc).__name__
    # A CancelledError that nobody asked for must not leave run() as a cancellation
    # (it would silently cancel the caller's task group).
    assert outcome == "RuntimeError"


# -- B shutdown that cancels every task twice still cuts after_loop short ------------------


@asyncio_only
async def test_after_loop_survives_a_shutdown_that_cancels_every_task_twice() -> None:
    # The documented guarantee names exactly this shutdown. after_loop now runs in a task of
    # its own, and such a shutdown cancels that task too.
    outside = asyncio.all_tasks()  # the test runner's tasks: not ours to cancel
    body, task, flushed = await _started_loop_with_a_slow_after_loop()
    me = asyncio.current_task()
    for _ in range(2):
        for other in asyncio.all_tasks() - outside:
            if other is not me:
                other.cancel()
        await asyncio.sleep(0.01)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert flushed == ["flushed cancelled=True"]
    assert not body.is_running()


# -- C join() from a task the body handed off to an outer task group --------------------------


async def test_join_from_a_task_the_body_spawned_into_an_outer_group_waits() -> None:
    events: list[str] = []

    async with anyio.create_task_group() as tg:

        @anytasks.loop(seconds=0.01)
        async def body() -> None:
            if body.current_loop == 2:
                tg.start_soon(shutdown)  # this task is not part of the loop

        async def shutdown() -> None:
            body.stop()
            try:
                await body.join()
                events.append(f"joined running={body.is_running()}")
            except RuntimeError as exc:
                events.append(f"RuntimeError: {exc}")

        tg.start_soon(body.run)
    assert events == ["joined running=False"]


# -- E Python 3.10: is_being_cancelled() is true after every plain end -------------------------


@pytest.mark.parametrize("how", ["run", "background"])
async def test_is_being_cancelled_is_false_in_after_loop_after_a_plain_end(how: str) -> None:
    seen: list[bool] = []

    @anytasks.loop(seconds=0.01, count=2)
    async def body() -> None:
        pass

    @body.after_loop
    async def after() -> None:
        seen.append(body.is_being_cancelled())

    if how == "run":
        await body.run()
    else:
        async with anytasks.background():
            body.start()
            await body.join()
    assert seen == [False]


async def test_restart_from_another_task_while_the_error_hook_awaits_restarts() -> None:
    # Documented: restart() while the error hook runs, from the hook or from elsewhere, is a
    # restart: the hook (cut short here) has seen the error, and run() does not raise it.
    events: list[str] = []

    @anytasks.loop(seconds=0)
    async def body(attempt: int) -> None:
        events.append(f"body {attempt}")
        if attempt == 1:
            raise ValueError("bad data")
        body.stop()

    @body.error
    async def on_error(exc: BaseException) -> None:
        events.append(f"error hook {exc}")
        await anyio.sleep(10)
        events.append("error hook finished")

    async def interrupt() -> None:
        await anyio.sleep(1)
        body.restart(2)

    await run_beside(functools.partial(body.run, 1), interrupt)
    assert events == ["body 1", "error hook bad data", "body 2"]
    assert not body.failed()


@pytest.mark.skipif(
    sys.version_info < (3, 11), reason="on 3.10 the fallback task is made without the factory"
)
@asyncio_only
async def test_a_task_factory_that_fails_leaves_nothing_half_started() -> None:
    @anytasks.loop(seconds=0, count=1)
    async def body() -> None:
        pass

    def broken_factory(loop: Any, coro: Any, **kwargs: Any) -> Any:
        raise RuntimeError("no tasks today")

    event_loop = asyncio.get_running_loop()
    factory = event_loop.get_task_factory()
    event_loop.set_task_factory(broken_factory)
    try:
        with pytest.raises(RuntimeError, match="no tasks today"):
            body.start()
    finally:
        event_loop.set_task_factory(factory)
    # The loop is not running (and the coroutine was closed: no "never awaited" warning,
    # which filterwarnings = error would turn into a failure).
    assert not body.is_running()
    await body.run()
