"""The one place that asks which backend runs the calling task, and binds what a loop needs of it.

A loop needs, on every iteration and every wait, the clock, a checkpoint and a sleep that
``stop()`` or ``change_interval()`` can cut short; and, for time-of-day schedules, the wall
clock, which follows virtual time under :mod:`anytasks.testing`. AnyIO's portable functions look
the running backend up on every call, and its cancel scopes carry bookkeeping for everything a
task group needs. A loop needs far less, far more often: for a zero-interval loop the lookups
were about half the cost of an iteration, and an AnyIO cancel scope per wait roughly doubled
the memory of an idle loop (see ``benchmarks/history/2026-11-26-full-runs-before-issue8.md``).

So each run binds :class:`Primitives` once, to what AnyIO itself uses underneath on the backend
that is running — asyncio's event loop clock, a bare yield, a future with a timer; Trio's
clock, checkpoint and cancel scope — with AnyIO's portable functions as the fallback for any
other backend. Cancellation by AnyIO cancel scopes reaches all of them, since on asyncio AnyIO
cancels the task itself and on Trio its scopes are Trio's.

Trio is looked at before asyncio, because a Trio task may run inside an asyncio loop (guest
mode, trio-asyncio) and it is then Trio that governs it. Neither library is imported here: a
library nobody has imported cannot be running, so this stays cheap, and ``import anytasks``
pulls in neither.
"""

from __future__ import annotations

import contextvars
import datetime
import sys
import types
import weakref
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, Protocol, cast, final

import anyio
import anyio.lowlevel

from .._frozen import Frozen

if TYPE_CHECKING:
    import asyncio


class Wakeable(Protocol):
    """Where a sleeping loop leaves the function that ends its sleep early."""

    wake: Callable[[], None] | None

    @property
    def wait_scope(self) -> Any:
        """The innermost AnyIO cancel scope of the task while it waits, if known; else None."""
        ...


@final
class Primitives(Frozen):
    """What a loop needs of the backend running it, bound once."""

    __slots__ = ("checkpoint", "checkpoint_if_cancelled", "current_time", "sleep_until")
    __match_args__ = ("current_time", "checkpoint", "sleep_until", "checkpoint_if_cancelled")

    current_time: Callable[[], float]
    checkpoint: Callable[[], Awaitable[None]]
    #: ``sleep_until(deadline, sleeper)`` returns at ``deadline`` or when
    #: ``sleeper.wake()`` is called, whichever comes first.
    sleep_until: Callable[[float, Wakeable], Awaitable[None]]
    #: What ``anyio.lowlevel.checkpoint_if_cancelled()`` does, without its backend lookup: at
    #: every iteration of a loop that parks in a host (anytasks._engine.host).
    checkpoint_if_cancelled: Callable[[], Awaitable[None]]

    def __init__(
        self,
        current_time: Callable[[], float],
        checkpoint: Callable[[], Awaitable[None]],
        sleep_until: Callable[[float, Wakeable], Awaitable[None]],
        checkpoint_if_cancelled: Callable[[], Awaitable[None]],
    ) -> None:
        self._set(
            current_time=current_time,
            checkpoint=checkpoint,
            sleep_until=sleep_until,
            checkpoint_if_cancelled=checkpoint_if_cancelled,
        )


def trio_running() -> Any:
    """The trio module if Trio runs the calling task, else None."""
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            return None  # Trio is imported but not running this task (asyncio, or guest mode)
    return trio


def bind_primitives() -> Primitives:
    """The primitives of the backend running the calling task.

    One value per event loop, shared by its runs: each run held one of its own, 64 bytes for
    as long as it ran (W2).
    """
    global _trio_primitives, _asyncio_primitives
    trio = trio_running()
    if trio is not None:
        if _trio_primitives is None:
            _trio_primitives = Primitives(
                trio.current_time,
                trio.lowlevel.checkpoint,
                _trio_sleep_until,
                trio.lowlevel.checkpoint_if_cancelled,
            )
        return _trio_primitives
    event_loop = running_asyncio_loop()
    if event_loop is None:
        return _PORTABLE
    cached = _asyncio_primitives
    if cached is not None and cached[0]() is event_loop:
        return cached[1]
    if _Waiter is None:
        _bind_asyncio()
    primitives = Primitives(
        event_loop.time, _asyncio_checkpoint, _asyncio_sleep_until, _checkpoint_if_cancelled
    )
    _asyncio_primitives = (weakref.ref(event_loop), primitives)
    return primitives


_trio_primitives: Primitives | None = None
# The primitives of the event loop that asked last (held weakly: a closed loop goes).
_asyncio_primitives: tuple[weakref.ref[asyncio.AbstractEventLoop], Primitives] | None = None


def current_asyncio_task() -> asyncio.Task[Any] | None:
    """The asyncio task running the caller, or ``None`` on Trio (guest mode included)."""
    if trio_running() is not None:
        return None
    asyncio_module = sys.modules.get("asyncio")
    if asyncio_module is None:
        return None
    try:
        task: asyncio.Task[Any] | None = asyncio_module.current_task()
    except RuntimeError:
        return None  # no running event loop in this thread
    return task


def current_task_object() -> object:
    """The task running the caller, for telling tasks apart by identity only.

    The native task object, not AnyIO's ``get_current_task().id``: holding it costs a
    reference, where holding the id costs an int (32 bytes) per running loop.
    """
    trio = trio_running()
    if trio is not None:
        return trio.lowlevel.current_task()
    task = current_asyncio_task()
    if task is None:  # pragma: no cover (AnyIO has no third backend)
        return anyio.get_current_task().id
    return task


def cancelled_exc_class() -> type[BaseException]:
    """What ``anyio.get_cancelled_exc_class()`` returns, without AnyIO's backend lookup.

    Read where a run ends, once per loop: cancelling 10 000 idle loops did 20 000 lookups.
    """
    trio = trio_running()
    if trio is not None:
        cancelled: type[BaseException] = trio.Cancelled
        return cancelled
    asyncio_module = sys.modules.get("asyncio")
    if asyncio_module is None:  # pragma: no cover (no loop runs without either)
        return anyio.get_cancelled_exc_class()
    return cast("type[BaseException]", asyncio_module.CancelledError)


def current_effective_deadline() -> float:
    """What ``anyio.current_effective_deadline()`` returns, without its backend lookup."""
    trio = trio_running()
    if trio is not None:
        deadline: float = trio.current_effective_deadline()
        return deadline
    if _Waiter is None:
        _bind_asyncio()
    return _asyncio_effective_deadline()


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


async def _asyncio_sleep_until(deadline: float, sleeper: Wakeable) -> None:
    event_loop = _get_running_loop()
    waiter = _Waiter(loop=event_loop)
    # In one shared, empty context: call_at() would otherwise copy the caller's context for
    # every wait, an object kept for the whole interval in every idle loop and promoted to
    # the collector's oldest generation, where it is garbage by the next wake. Resolving the
    # waiter runs no code of the caller's: the task resumes in its own context.
    timer = event_loop.call_at(deadline, waiter, context=_TIMER_CONTEXT)
    # The waiter is its own wake callable: no closure per wait (a function and a cell,
    # GC-tracked, alive for the whole interval in every idle loop).
    sleeper.wake = waiter
    try:
        await waiter
    except BaseException:
        timer.cancel()
        raise
    finally:
        sleeper.wake = None
    if event_loop.time() < deadline:
        # Woken early. A timer that has fired needs no cancel, which on asyncio is a few
        # Python calls at every wake; one that is about to fire finds its waiter done.
        timer.cancel()
    # AnyIO does not cancel a task whose future is already done, and leaves the
    # cancellation for its next checkpoint; so a cancel() in the very tick the timer
    # fired would let one more body begin. AnyIO's own sleep raises here instead.
    scope = sleeper.wait_scope if _walk_scopes else None
    if scope is None:
        await _checkpoint_if_cancelled()
        return
    # What checkpoint_if_cancelled() does, from the scope the sleeper knows to be the
    # task's innermost, rather than from AnyIO's per-task state (a task lookup and a
    # weak-key lookup): at every wake of every idle loop
    # (benchmarks/history/2026-11-30-issue8-closing-pass.md).
    while scope is not None:
        if scope.cancel_called:
            await _checkpoint_if_cancelled()  # which delivers the cancellation
            return
        if scope.shield:
            return
        scope = scope._parent_scope


# The context that the timers of asyncio waits run in (see _asyncio_sleep_until).
_TIMER_CONTEXT = contextvars.Context()
# Set by _bind_asyncio(), the first time a loop runs on asyncio (which is imported by then).
_Waiter: Any = None
_get_running_loop: Callable[[], asyncio.AbstractEventLoop]
_checkpoint_if_cancelled: Callable[[], Awaitable[None]]
_asyncio_effective_deadline: Callable[[], float]
# Whether AnyIO's asyncio cancel scopes link to their parents as this module expects.
_walk_scopes = False


def _bind_asyncio() -> None:
    global _Waiter, _get_running_loop, _checkpoint_if_cancelled, _asyncio_effective_deadline
    global _walk_scopes
    import asyncio

    class Waiter(asyncio.Future[None]):
        """A future that a call resolves, unless it is done already."""

        __slots__ = ()

        def __call__(self) -> None:
            if not self.done():
                self.set_result(None)

    _get_running_loop = asyncio.get_running_loop
    try:
        # What anyio.lowlevel.checkpoint_if_cancelled() and current_effective_deadline() call
        # on asyncio, without looking the backend up first.
        from anyio._backends._asyncio import AsyncIOBackend, CancelScope

        _checkpoint_if_cancelled = AsyncIOBackend.checkpoint_if_cancelled
        _asyncio_effective_deadline = AsyncIOBackend.current_effective_deadline
        _walk_scopes = hasattr(CancelScope(), "_parent_scope")
    except (ImportError, AttributeError):
        _checkpoint_if_cancelled = anyio.lowlevel.checkpoint_if_cancelled
        _asyncio_effective_deadline = anyio.current_effective_deadline
    _Waiter = Waiter


async def _trio_sleep_until(deadline: float, sleeper: Wakeable) -> None:
    import trio

    with trio.CancelScope(deadline=deadline) as scope:
        sleeper.wake = scope.cancel
        try:
            # What trio.sleep_forever() does, without its coroutine and the lambda it makes
            # per call: both kept for the whole interval in every idle loop (368 B,
            # benchmarks/history/2026-12-07-idle-loops-profile.md).
            await trio.lowlevel.wait_task_rescheduled(_trio_abort)
            raise RuntimeError("a sleeping loop's task was rescheduled by someone else")
        finally:
            sleeper.wake = None


def _trio_abort(raise_cancel: object) -> Any:
    """Let a cancellation (the deadline's, a wake's, or anyone's) end the wait."""
    return sys.modules["trio"].lowlevel.Abort.SUCCEEDED


async def _portable_sleep_until(deadline: float, sleeper: Wakeable) -> None:
    with anyio.CancelScope(deadline=deadline) as scope:
        sleeper.wake = scope.cancel
        try:
            await anyio.sleep_forever()
        finally:
            sleeper.wake = None


_PORTABLE = Primitives(
    anyio.current_time,
    anyio.lowlevel.checkpoint,
    _portable_sleep_until,
    anyio.lowlevel.checkpoint_if_cancelled,
)


# -- the wall clock ---------------------------------------------------------------------------

# The hook that `anytasks.testing`'s virtual event loop and virtual clock provide.
WALL_CLOCK_HOOK = "_anytasks_wall_now"


def wall_now() -> datetime.datetime:
    """Return the current wall-clock time as an aware UTC datetime.

    This is :func:`datetime.datetime.now` in UTC, unless the calling task runs under a virtual
    clock from :mod:`anytasks.testing`: then it is the virtual wall time, which starts at the
    clock's ``start`` and advances with the event loop's virtual time.
    """
    trio = trio_running()
    if trio is not None:
        return _call_wall_hook(trio.lowlevel.current_clock())
    event_loop = running_asyncio_loop()
    if event_loop is not None:
        return _call_wall_hook(event_loop)
    return datetime.datetime.now(datetime.timezone.utc)


def _call_wall_hook(owner: object) -> datetime.datetime:
    hook: Callable[[], datetime.datetime] | None = getattr(owner, WALL_CLOCK_HOOK, None)
    if hook is None:
        return datetime.datetime.now(datetime.timezone.utc)
    return hook()


def default_random() -> Callable[[], float]:
    """Where a loop draws its jitter from: seeded under :mod:`anytasks.testing`'s virtual time.

    The virtual event loop and virtual clock carry a ``random.Random(0)``, so a test that
    jitters sees the same draws on every run; anywhere else, :func:`random.random`.
    """
    trio = trio_running()
    owner: object = trio.lowlevel.current_clock() if trio is not None else running_asyncio_loop()
    draw: Callable[[], float] | None = getattr(owner, RANDOM_HOOK, None)
    if draw is not None:
        return draw
    import random

    return random.random


RANDOM_HOOK = "_anytasks_random"
