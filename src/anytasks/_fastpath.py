"""The backend primitives a loop uses on every iteration and every wait, bound once per run.

AnyIO's portable functions look the running backend up on every call, and its
cancel scopes carry bookkeeping for everything a task group needs. A loop needs
far less, far more often: the clock and a checkpoint on every iteration (for a
zero-interval loop the lookups were about half the cost of an iteration), and a
sleep that ``stop()`` or ``change_interval()`` can cut short in every idle loop
(an AnyIO cancel scope per wait roughly doubled the memory of an idle loop; see
``benchmarks/RESULTS.md``).

So each run binds :class:`Primitives` once, to what AnyIO itself uses underneath
on the backend that is running — asyncio's event loop clock, a bare yield, a
future with a timer; Trio's clock, checkpoint and cancel scope — with AnyIO's
portable functions as the fallback for any other backend. Cancellation by AnyIO
cancel scopes reaches all of them, since on asyncio AnyIO cancels the task itself
and on Trio its scopes are Trio's.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, NamedTuple, Protocol

import anyio
import anyio.lowlevel

if TYPE_CHECKING:
    import asyncio


class Wakeable(Protocol):
    """Where a sleeping loop leaves the function that ends its sleep early."""

    wake: Callable[[], None] | None


class Primitives(NamedTuple):
    current_time: Callable[[], float]
    checkpoint: Callable[[], Awaitable[None]]
    #: ``sleep_until(deadline, sleeper)`` returns at ``deadline`` or when
    #: ``sleeper.wake()`` is called, whichever comes first.
    sleep_until: Callable[[float, Wakeable], Awaitable[None]]


def bind_primitives() -> Primitives:
    """The primitives of the backend running the calling task."""
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            pass  # Trio is imported but not running this task (asyncio, or guest mode)
        else:
            return Primitives(trio.current_time, trio.lowlevel.checkpoint, _trio_sleep_until)
    event_loop = running_asyncio_loop()
    if event_loop is None:
        return _PORTABLE
    return Primitives(event_loop.time, _asyncio_checkpoint, _asyncio_sleep_until)


def running_asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The asyncio event loop running the calling thread, if any."""
    # Looked up rather than imported: a program that never imported asyncio cannot
    # be running on it, and Trio programs should not pay for importing it.
    asyncio_module = sys.modules.get("asyncio")
    if asyncio_module is None:
        return None
    try:
        event_loop: asyncio.AbstractEventLoop = asyncio_module.get_running_loop()
    except RuntimeError:
        return None
    return event_loop


@types.coroutine
def _asyncio_checkpoint() -> Generator[None, None, None]:
    # A bare yield is what asyncio.sleep(0), and so AnyIO's asyncio checkpoint,
    # does: the task goes to the back of the ready queue.
    yield


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _asyncio_sleep_until(deadline: float, sleeper: Wakeable) -> None:
    import asyncio

    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    timer = future.get_loop().call_at(deadline, _resolve, future)
    sleeper.wake = lambda: _resolve(future)
    try:
        await future
    finally:
        sleeper.wake = None
        timer.cancel()
    # AnyIO does not cancel a task whose future is already done, and leaves the
    # cancellation for its next checkpoint; so a cancel() in the very tick the timer
    # fired would let one more body begin. AnyIO's own sleep raises here instead.
    await anyio.lowlevel.checkpoint_if_cancelled()


async def _trio_sleep_until(deadline: float, sleeper: Wakeable) -> None:
    import trio

    with trio.CancelScope(deadline=deadline) as scope:
        sleeper.wake = scope.cancel
        try:
            await trio.sleep_forever()
        finally:
            sleeper.wake = None


async def _portable_sleep_until(deadline: float, sleeper: Wakeable) -> None:
    with anyio.CancelScope(deadline=deadline) as scope:
        sleeper.wake = scope.cancel
        try:
            await anyio.sleep_forever()
        finally:
            sleeper.wake = None


_PORTABLE = Primitives(anyio.current_time, anyio.lowlevel.checkpoint, _portable_sleep_until)
