"""A loop belongs to the thread that runs it: its controls from another thread fail loudly, and
two threads cannot run the same loop at once."""

from __future__ import annotations

import functools
import threading
from typing import Any

import anyio
import anyio.to_thread
import pytest

import anytasks

pytestmark = pytest.mark.anyio


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
