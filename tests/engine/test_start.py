"""The ways to start a loop other than run(): background() hosts and asyncio's start()."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from typing import Any

import anyio
import pytest

import anytasks
from support.backends import asyncio_only

pytestmark = pytest.mark.anyio


# -- background() ------------------------------------------------------------------------


async def test_start_in_a_host_returns_none_and_runs_at_once() -> None:
    ran = anyio.Event()

    @anytasks.loop(seconds=0.01)
    async def body() -> None:
        ran.set()

    async with anytasks.background():
        assert body.start() is None
        assert body.is_running()
        assert body.get_task() is None
        await ran.wait()
    assert not body.is_running()


async def test_leaving_the_host_cancels_loops_and_waits_for_after_loop() -> None:
    events: list[str] = []

    @anytasks.loop(seconds=0.01)
    async def body() -> None:
        await anyio.sleep_forever()

    @body.after_loop
    async def flush() -> None:
        await anyio.sleep(0.01)
        events.append(f"flushed cancelled={body.is_being_cancelled()}")

    async with anytasks.background():
        body.start()
        await anyio.sleep(0.01)
    assert events == ["flushed cancelled=True"]
    assert not body.is_running()


async def test_a_failing_daemon_does_not_disturb_the_host_or_other_loops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    healthy_runs = 0

    @anytasks.loop(seconds=0.01, name="broken")
    async def broken() -> None:
        raise ZeroDivisionError("bug")

    # Not 0: a loop that never waits would keep virtual time from moving.
    @anytasks.loop(seconds=0.001)
    async def healthy() -> None:
        nonlocal healthy_runs
        healthy_runs += 1

    with caplog.at_level(logging.ERROR, logger="anytasks"):
        async with anytasks.background():
            broken.start()
            healthy.start()
            await broken.join()
            assert broken.failed()
            assert not broken.is_running()
            assert healthy.is_running()
            before = healthy_runs
            await anyio.sleep(0.01)
            assert healthy_runs > before
    [record] = [r for r in caplog.records if r.name == "anytasks"]
    assert "'broken'" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is ZeroDivisionError


async def test_a_daemon_error_goes_to_the_error_hook() -> None:
    seen: list[str] = []

    @anytasks.loop(seconds=0)
    async def body() -> None:
        raise ValueError("bad data")

    @body.error
    async def on_error(exc: BaseException) -> None:
        seen.append(repr(exc))

    async with anytasks.background():
        body.start()
        await body.join()
    assert seen == ["ValueError('bad data')"]
    assert body.failed()


async def test_an_exception_in_a_daemon_hook_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    @anytasks.loop(seconds=0, count=1, name="hooked")
    async def body() -> None:
        pass

    @body.after_loop
    async def after() -> None:
        raise RuntimeError("hook bug")

    with caplog.at_level(logging.ERROR, logger="anytasks"):
        async with anytasks.background():
            body.start()
            await body.join()
    [record] = [r for r in caplog.records if r.name == "anytasks"]
    assert record.getMessage() == "Exception in a hook of loop 'hooked'"
    assert not body.failed()


async def test_tasks_started_inside_a_host_can_start_loops_there() -> None:
    ran = anyio.Event()

    @anytasks.loop(seconds=0.01)
    async def body() -> None:
        ran.set()

    async def child() -> None:
        body.start()

    async with anytasks.background(), anyio.create_task_group() as tg:
        tg.start_soon(child)
        await ran.wait()
    assert not body.is_running()


async def test_hosts_nest_and_start_uses_the_innermost() -> None:
    @anytasks.loop(seconds=0.01)
    async def outer_loop() -> None:
        pass

    @anytasks.loop(seconds=0.01)
    async def inner_loop() -> None:
        pass

    async with anytasks.background():
        outer_loop.start()
        async with anytasks.background():
            inner_loop.start()
            assert inner_loop.is_running()
        assert not inner_loop.is_running()
        assert outer_loop.is_running()
    assert not outer_loop.is_running()


async def test_a_host_cannot_be_entered_twice() -> None:
    host = anytasks.background()
    assert repr(host) == "<anytasks.BackgroundHost (inactive)>"
    async with host:
        assert repr(host) == "<anytasks.BackgroundHost (active)>"
        with pytest.raises(RuntimeError, match="cannot be entered twice"):
            await host.__aenter__()


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


# -- asyncio without a host ---------------------------------------------------------------


@asyncio_only
async def test_start_on_asyncio_returns_the_task_like_discord_py() -> None:
    count = 0

    @anytasks.loop(seconds=0, count=3, name="compat")
    async def body() -> None:
        nonlocal count
        count += 1

    task = body.start()
    assert isinstance(task, asyncio.Task)
    assert task.get_name() == "compat"
    assert body.get_task() is task
    await task
    assert count == 3
    assert body.get_task() is None
    assert not body.is_running()


@asyncio_only
async def test_cancel_of_an_asyncio_task_loop_runs_after_loop() -> None:
    events: list[str] = []
    running = asyncio.Event()

    @anytasks.loop(seconds=0.01)
    async def body() -> None:
        running.set()

    @body.after_loop
    async def after() -> None:
        await asyncio.sleep(0.01)
        events.append(f"after cancelled={body.is_being_cancelled()}")

    task = body.start()
    await running.wait()
    body.cancel()
    await body.join()
    assert task is not None
    assert task.done()
    assert events == ["after cancelled=True"]


@asyncio_only
async def test_an_asyncio_task_loop_ends_with_its_unhandled_exception() -> None:
    seen: list[str] = []

    @anytasks.loop(seconds=0)
    async def body() -> None:
        raise ValueError("broken")

    @body.error
    async def on_error(exc: BaseException) -> None:
        seen.append(str(exc))

    task = body.start()
    assert task is not None
    with pytest.raises(ValueError, match="broken"):
        await task
    assert seen == ["broken"]
    assert body.failed()


@asyncio_only
async def test_restart_of_an_asyncio_task_loop_keeps_its_task() -> None:
    tags: list[str] = []

    @anytasks.loop(seconds=0.01)
    async def body(tag: str) -> None:
        tags.append(tag)
        if tag == "b":
            body.stop()

    task = body.start("a")
    await asyncio.sleep(0)
    body.restart("b")
    await body.join()
    assert task is not None
    assert task.done()
    assert tags[-1] == "b"


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


@pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
async def test_start_on_trio_without_a_host_explains_what_to_do() -> None:
    @anytasks.loop(seconds=1)
    async def body() -> None:
        pass

    message = (
        "found no anytasks.background() host and no running asyncio event loop; on Trio, "
        "use nursery.start_soon(loop.run)"
    )
    with pytest.raises(RuntimeError, match=re.escape(message)):
        body.start()
    assert not body.is_running()


def test_start_outside_any_event_loop_is_an_error() -> None:
    @anytasks.loop(seconds=1)
    async def body() -> None:
        pass

    with pytest.raises(RuntimeError, match="no running asyncio event loop"):
        body.start()
    assert not body.is_running()


def _start_cancelled_before_its_first_step() -> anytasks.Loop[[], None]:
    @anytasks.loop(seconds=1)
    async def body() -> None:
        pass

    task = body.start()
    assert task is not None
    task.cancel()  # before its first step: only the done callback ends the loop
    return body


@pytest.mark.parametrize("event_loop_kind", ["asyncio", "uvloop"])
def test_fallback_tasks_of_two_threads_end_their_loops_at_the_same_time(
    monkeypatch: pytest.MonkeyPatch, event_loop_kind: str
) -> None:
    # The done callback of a start() task cancelled before its first step is what ends its
    # loop. Thread A's callback is held mid-way while thread B's runs: each must run in a
    # context of its own (one context cannot be entered by two threads at once; a shared
    # empty one left B's loop running forever).
    import threading
    from collections.abc import Coroutine

    from anytasks._engine.run import Run

    new_event_loop = asyncio.new_event_loop
    if event_loop_kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        new_event_loop = uvloop.new_event_loop

    def run(main: Coroutine[Any, Any, None]) -> None:
        event_loop = new_event_loop()
        try:
            event_loop.run_until_complete(main)
        finally:
            event_loop.close()

    a_inside, b_done = threading.Event(), threading.Event()
    forget_unstarted = Run.forget_unstarted

    def held_in_a(self: Run, task: asyncio.Task[None]) -> None:
        if threading.current_thread().name == "A":
            a_inside.set()
            b_done.wait(5)
        forget_unstarted(self, task)

    monkeypatch.setattr(Run, "forget_unstarted", held_in_a)
    seen: dict[str, object] = {}

    async def in_a() -> None:
        body = _start_cancelled_before_its_first_step()
        await body.join()
        seen["a running"] = body.is_running()

    async def in_b() -> None:
        errors: list[object] = []
        asyncio.get_running_loop().set_exception_handler(
            lambda _, context: errors.append(context.get("exception"))
        )
        assert a_inside.wait(5)
        body = _start_cancelled_before_its_first_step()
        for _ in range(5):
            await asyncio.sleep(0)
        seen["b running"] = body.is_running()
        seen["b errors"] = errors
        b_done.set()

    threads = [
        threading.Thread(target=run, args=(in_a(),), name="A"),
        threading.Thread(target=run, args=(in_b(),), name="B"),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == {"a running": False, "b running": False, "b errors": []}
