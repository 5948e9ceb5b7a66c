"""The ways to start a loop other than run(): background() hosts and asyncio's start()."""

from __future__ import annotations

import asyncio
import logging
import re

import anyio
import pytest

import anytasks

pytestmark = pytest.mark.anyio

asyncio_only = pytest.mark.parametrize(
    "anyio_backend", ["asyncio", "asyncio+uvloop"], indirect=True
)


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
    from typing import Any

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
