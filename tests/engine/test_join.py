"""join(): waits for the end of the loop from any task outside it, returns at once when the
loop is not running, and refuses to wait from inside the loop's own body or hooks."""

from __future__ import annotations

import anyio
import pytest

import anytasks

pytestmark = pytest.mark.anyio


async def test_join_returns_at_once_when_not_running() -> None:
    @anytasks.loop(seconds=1)
    async def body() -> None:
        pass

    with anyio.fail_after(1):
        await body.join()


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
