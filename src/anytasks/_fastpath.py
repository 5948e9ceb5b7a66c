"""The two primitives a loop calls on every iteration, bound once per run.

``anyio.current_time()`` and ``anyio.lowlevel.checkpoint()`` look the running backend
up on every call; for a zero-interval loop that lookup was about half of the cost
of an iteration (see ``benchmarks/RESULTS.md``). So each run binds them once, to
what AnyIO itself calls underneath on the backend that is running (asyncio: the
event loop's ``time()`` and a bare ``sleep(0)``; Trio: ``trio.current_time`` and
``trio.lowlevel.checkpoint``), and falls back to AnyIO's portable functions for
any other backend.
"""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Awaitable, Callable, Generator

import anyio
import anyio.lowlevel


def bind_primitives() -> tuple[Callable[[], float], Callable[[], Awaitable[None]]]:
    """``(current_time, checkpoint)`` for the backend running the calling task."""
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            pass  # Trio is imported but not running this task (asyncio, or guest mode)
        else:
            return trio.current_time, trio.lowlevel.checkpoint
    try:
        event_loop = asyncio.get_running_loop()
    except RuntimeError:
        return anyio.current_time, anyio.lowlevel.checkpoint
    return event_loop.time, _asyncio_checkpoint


@types.coroutine
def _asyncio_checkpoint() -> Generator[None, None, None]:
    # A bare yield is what asyncio.sleep(0), and so AnyIO's asyncio checkpoint,
    # does: the task goes to the back of the ready queue. AnyIO cancel scopes
    # cancel the task itself, so this is a cancellation point for them too.
    yield
