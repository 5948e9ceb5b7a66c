"""The per-run backend primitives: bound to the running backend, and cancellable by AnyIO."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest

from anytasks._engine.backend import _PORTABLE, bind_primitives

pytestmark = pytest.mark.anyio


class Sleeper:
    # No scope known: the asyncio wait asks AnyIO whether a cancellation is pending.
    wait_scope: object = None

    def __init__(self) -> None:
        self.wake: Callable[[], None] | None = None


async def test_primitives_match_the_backend(backend_name: str) -> None:
    primitives = bind_primitives()
    if backend_name == "trio":
        import trio

        assert primitives.current_time is trio.current_time
        assert primitives.checkpoint is trio.lowlevel.checkpoint
    else:
        assert primitives.current_time == asyncio.get_running_loop().time
    # The same clock read twice: uvloop's advances in whole milliseconds between two reads.
    before = primitives.current_time()
    assert before <= anyio.current_time() <= primitives.current_time() <= before + 0.01


@pytest.mark.parametrize("which", ["backend", "portable"])
async def test_checkpoint_is_a_cancellation_point_for_anyio_scopes(which: str) -> None:
    primitives = bind_primitives() if which == "backend" else _PORTABLE
    await primitives.checkpoint()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await primitives.checkpoint()
        pytest.fail("the checkpoint did not deliver the cancellation")
    assert scope.cancelled_caught


# Trio runs the tasks of one batch in random order: there, the order is not defined.
@pytest.mark.parametrize("anyio_backend", ["asyncio", "asyncio+uvloop"], indirect=True)
async def test_asyncio_checkpoint_lets_ready_tasks_run_first_and_returns_none() -> None:
    checkpoint = bind_primitives().checkpoint
    order: list[str] = []

    async def other(name: str) -> None:
        order.append(name)

    async def also_checkpoint() -> None:
        await checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(other, "first")
        tg.start_soon(other, "second")
        order.append("before")
        assert await checkpoint() is None
        order.append("after")
        # The same awaitable, again and from two tasks at once.
        tg.start_soon(also_checkpoint)
        await checkpoint()
        order.append("again")
    assert order == ["before", "first", "second", "after", "again"]


@pytest.mark.virtual_time
@pytest.mark.parametrize("which", ["backend", "portable"])
async def test_sleep_until_returns_at_the_deadline(which: str) -> None:
    primitives = bind_primitives() if which == "backend" else _PORTABLE
    sleeper = Sleeper()
    t0 = anyio.current_time()
    await primitives.sleep_until(t0 + 7.5, sleeper)
    assert anyio.current_time() - t0 == 7.5
    assert sleeper.wake is None


@pytest.mark.parametrize("which", ["backend", "portable"])
async def test_sleep_until_ends_early_when_woken(which: str) -> None:
    primitives = bind_primitives() if which == "backend" else _PORTABLE
    sleeper = Sleeper()
    t0 = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(primitives.sleep_until, t0 + 3600, sleeper)
        while sleeper.wake is None:
            await anyio.lowlevel.checkpoint()
        sleeper.wake()
        sleeper.wake()  # a second wake-up before the sleeper runs is harmless
    assert anyio.current_time() - t0 < 60
    assert sleeper.wake is None


@pytest.mark.parametrize("which", ["backend", "portable"])
async def test_sleep_until_is_cancelled_by_anyio_scopes(which: str) -> None:
    primitives = bind_primitives() if which == "backend" else _PORTABLE
    sleeper = Sleeper()
    with anyio.move_on_after(0.01) as scope:
        await primitives.sleep_until(anyio.current_time() + 3600, sleeper)
    assert scope.cancelled_caught
    assert sleeper.wake is None


def test_outside_any_event_loop_the_portable_functions_are_used() -> None:
    assert bind_primitives() is _PORTABLE
    assert _PORTABLE.current_time is anyio.current_time
    assert _PORTABLE.checkpoint is anyio.lowlevel.checkpoint


@pytest.mark.virtual_time
@pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True)
async def test_a_loop_whose_timer_fired_is_not_blocked_to_wait_all_tasks_blocked() -> None:
    # The wait's future reports done as soon as its timer fired: AnyIO's
    # wait_all_tasks_blocked() must not take the loop for blocked before its body runs.
    import anytasks

    bodies: list[float] = []

    @anytasks.loop(seconds=1)
    async def tick() -> None:
        bodies.append(anyio.current_time())
        await anyio.sleep(0.95)  # ends at 0.95; the next iteration is due at 1.0

    async def busy() -> None:
        for _ in range(3):  # not blocked at the first look: wait_all_tasks_blocked sleeps
            await asyncio.sleep(0)

    async with anytasks.background():
        tick.start()
        await anyio.sleep(0.9)
        background = asyncio.get_running_loop().create_task(busy())
        await anyio.wait_all_tasks_blocked()
        seen = list(bodies)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        await background
        tick.cancel()
    assert seen == bodies == [0.0, 1.0]
