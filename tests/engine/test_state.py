"""LoopState: what loop.state reads in each phase, and the transitions the engine may make."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

import anytasks
from anytasks import LoopState
from anytasks._engine.state import TRANSITIONS, check_transition, sticky

pytestmark = pytest.mark.anyio


@pytest.mark.virtual_time
async def test_state_in_every_phase_of_a_run() -> None:
    seen: list[tuple[str, LoopState]] = []
    attempts = 0
    failed_once = anyio.Event()
    second_done = anyio.Event()

    # Longer than the backoff delay, so that no iteration is behind schedule.
    @anytasks.loop(seconds=100, count=3)
    async def body() -> None:
        nonlocal attempts
        seen.append(("body", body.state))
        attempts += 1
        if attempts == 1:
            failed_once.set()
            raise OSError("flaky")  # handled: retried after a backoff
        if attempts == 3:
            second_done.set()

    @body.before_loop
    async def before() -> None:
        seen.append(("before_loop", body.state))

    @body.after_loop
    async def after() -> None:
        seen.append(("after_loop", body.state))

    async def watch() -> None:
        await failed_once.wait()
        await anyio.lowlevel.checkpoint()
        seen.append(("watcher", body.state))  # in the backoff delay
        await second_done.wait()
        await anyio.lowlevel.checkpoint()
        seen.append(("watcher", body.state))  # waiting for the third iteration

    assert body.state is LoopState.IDLE
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        tg.start_soon(body.run)
    assert body.state is LoopState.IDLE
    assert seen == [
        ("before_loop", LoopState.STARTING),
        ("body", LoopState.RUNNING),
        ("watcher", LoopState.BACKING_OFF),
        ("body", LoopState.RUNNING),
        ("body", LoopState.RUNNING),
        ("watcher", LoopState.WAITING),
        ("body", LoopState.RUNNING),
        ("after_loop", LoopState.FINISHING),
    ]


@pytest.mark.parametrize(
    ("control", "expected"),
    [("stop", LoopState.STOPPING), ("cancel", LoopState.CANCELLING)],
)
async def test_stop_and_cancel_are_states_until_after_loop(
    control: str, expected: LoopState
) -> None:
    seen: list[LoopState] = []

    @anytasks.loop(seconds=1)
    async def body() -> None:
        getattr(body, control)()
        seen.append(body.state)
        await anyio.lowlevel.checkpoint()  # where cancel() takes effect
        seen.append(body.state)

    @body.after_loop
    async def after() -> None:
        seen.append(body.state)

    await body.run()
    if control == "stop":
        assert seen == [expected, expected, LoopState.FINISHING]
    else:
        assert seen == [expected, LoopState.FINISHING]


async def test_failing_is_the_state_of_the_error_hook() -> None:
    seen: list[LoopState] = []

    @anytasks.loop(seconds=0)
    async def body() -> None:
        raise ValueError("bad")

    @body.error
    async def on_error(exc: BaseException) -> None:
        seen.append(body.state)

    with pytest.raises(ValueError, match="bad"):
        await body.run()
    assert seen == [LoopState.FAILING]


def test_every_state_has_transitions_and_the_table_is_closed() -> None:
    assert set(TRANSITIONS) == set(LoopState)
    for targets in TRANSITIONS.values():
        assert targets <= set(LoopState)
    # A run can always end, from every state it can be in.
    for state in set(LoopState) - {LoopState.IDLE, LoopState.FINISHING}:
        assert TRANSITIONS[state] & {LoopState.CANCELLING, LoopState.FINISHING}, state


def test_a_move_off_the_table_is_refused_by_name() -> None:
    with pytest.raises(AssertionError, match="a loop cannot move from IDLE to RUNNING"):
        check_transition(LoopState.IDLE, LoopState.RUNNING)
    check_transition(LoopState.WAITING, LoopState.RUNNING)


def test_stopping_and_cancelling_hold_through_the_phases_of_the_body() -> None:
    for ending in (LoopState.STOPPING, LoopState.CANCELLING):
        for phase in (LoopState.RUNNING, LoopState.WAITING, LoopState.BACKING_OFF):
            assert sticky(ending, phase)
        assert not sticky(ending, LoopState.FINISHING)
    assert not sticky(LoopState.RUNNING, LoopState.WAITING)


def test_repr_shows_the_state() -> None:
    @anytasks.loop(seconds=1, name="beat")
    async def body() -> None:
        pass

    assert repr(body) == "<anytasks.Loop 'beat' idle current_loop=0>"
    assert str(LoopState.BACKING_OFF.value) == "backing off"
