"""The per-iteration primitives are bound to the running backend's own functions."""

from __future__ import annotations

import asyncio

import anyio
import anyio.lowlevel
import pytest

from anytasks._fastpath import bind_primitives

pytestmark = pytest.mark.anyio


async def test_primitives_match_the_backend(backend_name: str) -> None:
    current_time, checkpoint = bind_primitives()
    if backend_name == "trio":
        import trio

        assert current_time is trio.current_time
        assert checkpoint is trio.lowlevel.checkpoint
    else:
        assert current_time == asyncio.get_running_loop().time
    assert current_time() == anyio.current_time()
    await checkpoint()


async def test_the_asyncio_checkpoint_is_a_cancellation_point_for_anyio_scopes(
    backend_name: str,
) -> None:
    _, checkpoint = bind_primitives()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await checkpoint()
        pytest.fail("the checkpoint did not deliver the cancellation")
    assert scope.cancelled_caught


def test_outside_any_event_loop_the_portable_functions_are_used() -> None:
    assert bind_primitives() == (anyio.current_time, anyio.lowlevel.checkpoint)
