"""The error hook and after_loop when a cancel or a restart comes while they run: an unhandled
error is never lost, restart() from a hook (or while one runs) starts the loop over, and
``is_being_cancelled()`` tells each run's after_loop how that run ended.

The order of the hooks in a plain run and the default error hook are in test_loop.py, the
hooks' signatures in test_outcomes.py.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any

import anyio
import anyio.abc
import pytest

import anytasks

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio


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


# -- is_being_cancelled() belongs to one run --------------------------------------------------


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


# -- an unhandled error is never lost ---------------------------------------------------------


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


# -- restart() from a hook, or while the error hook runs, starts over -------------------------


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
