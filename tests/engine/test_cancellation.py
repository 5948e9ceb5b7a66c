"""Cancellation as a loop sees it: only the cancellations that were asked for count, and
cleanup that none of them cuts short.

A ``CancelledError`` that no cancel scope and no ``Task.cancel()`` asked for (a library cancelled
a future that the body awaited) is an error of that loop: it fails the loop, and neither ends
its ``background()`` host nor leaves ``run()`` as a cancellation; and a real cancellation is
never taken for one. A native ``Task.cancel()`` of a fallback task, once or twice, or a shutdown
that cancels every task twice, does not cut ``after_loop`` short.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import anyio
import pytest

import anytasks
from support.backends import asyncio_only

pytestmark = pytest.mark.anyio

# Before Python 3.11 asyncio keeps no count of Task.cancel() calls, so a CancelledError
# that nobody asked for cannot be told from one that a native cancel() caused.
needs_cancel_counting = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="asyncio counts Task.cancel() requests since 3.11"
)


# -- a stray CancelledError is an error of that loop, not a cancellation ----------------------


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


async def test_a_real_cancellation_of_the_enclosing_scope_is_never_swallowed() -> None:
    @anytasks.loop(seconds=3600)
    async def body() -> None:
        pass

    with anyio.move_on_after(1) as scope:
        await body.run()
        pytest.fail("run() returned inside a cancelled scope")
    assert scope.cancelled_caught
    assert not body.failed()


# -- native cancels of a fallback task: after_loop still runs to its end ----------------------


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
