"""How a :func:`~anytasks.background` host starts its loops' tasks, on each backend.

A host starts a task for each loop it runs, and, for a loop that parks between iterations
(:mod:`anytasks._host`), one for every iteration: tens of thousands a second in a host with
100 000 loops at 1 s. Each task runs in the context that the host gives it: the starter's, or
the one the run's previous task left.

- On Trio (and wherever the fast path below is not available), the nursery's or task group's
  own ``start_soon`` (:class:`NurserySpawner`), which cancels its tasks, waits for them and
  raises what escapes them.
- On asyncio, plain tasks, made children of the host's cancel scope in AnyIO's own records, as
  AnyIO's task group makes its tasks (:class:`TaskSpawner`): AnyIO's task group also wraps
  every task in a handle with a cancel scope, an event and a coroutine of its own, for the
  caller to await or cancel it by, which a host does not need. A task started through it took
  42-62 µs to start and run, a plain task 5-6 µs (this machine, AnyIO 4.14). A cancellation
  of the host's scope, or of any scope around it, reaches these tasks as it reaches the task
  group's; the spawner waits for them and raises what escapes them, as the task group would.
  It reads AnyIO's private ``_task_states`` and ``TaskState``
  (:func:`asyncio_task_linker`): where they are missing, the host falls back to the task
  group's ``start_soon``.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, final

from .cancellation import new_host_task

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    import asyncio

    from .run import Run

#: ``start_soon(func, *args, name=...)``: how a nursery starts a task.
StartSoon = Callable[..., object]
#: The coroutine function a task runs, and its arguments.
Target = Callable[..., Coroutine[Any, Any, None]]


@final
class NurserySpawner:
    """Starts tasks in a nursery (or a task group), which ends them and waits for them."""

    __slots__ = ("_start_soon",)

    def __init__(self, start_soon: StartSoon) -> None:
        self._start_soon = start_soon

    def spawn(
        self, run: Run, target: Target, args: tuple[Any, ...], context: contextvars.Context | None
    ) -> None:
        """Start ``target(*args)`` for ``run``, in a copy of ``context`` (else of the caller's)."""
        if context is None:
            self._start_soon(target, *args, name=run.loop.name)
        else:
            # Trio's start_soon takes no context: its task gets a copy of the current one.
            context.run(self._start_soon, target, *args, name=run.loop.name)

    async def wait(self) -> None:
        """Nothing to do: the nursery waits for its tasks."""

    def raise_escaped(self) -> None:
        """Nothing to do: what escapes a task goes up through the nursery."""


#: ``link(task, scope)``: record ``task`` as a child of the AnyIO cancel ``scope``;
#: ``link(task, None)``: forget it again.
Linker = Callable[["asyncio.Task[None]", Any], None]


def asyncio_task_linker() -> Linker | None:
    """How AnyIO's asyncio backend records a task as a child of a cancel scope, if this AnyIO
    records it as 4.14-4.16 do; else None."""
    try:
        import anyio._backends._asyncio as anyio_asyncio
    except ImportError:  # pragma: no cover
        return None
    # Private to AnyIO: looked up by name, and checked.
    task_states: Any = getattr(anyio_asyncio, "_task_states", None)
    task_state: Any = getattr(anyio_asyncio, "TaskState", None)
    if task_states is None or not {"parent_id", "cancel_scope"} <= set(
        getattr(task_state, "__slots__", ())
    ):
        return None  # pragma: no cover

    def link(task: asyncio.Task[None], scope: Any) -> None:
        if scope is not None:
            host_task: object = scope._host_task
            task_states[task] = task_state(parent_id=id(host_task), cancel_scope=scope)
            scope._tasks.add(task)
        else:
            state: Any = task_states.pop(task, None)
            if state is not None and state.cancel_scope is not None:
                state.cancel_scope._tasks.discard(task)

    return link


@final
class TaskSpawner:
    """Starts plain asyncio tasks in a cancel scope, and keeps account of them until done."""

    __slots__ = ("_escaped", "_event_loop", "_idle", "_link", "_scope", "_tasks")

    def __init__(self, event_loop: asyncio.AbstractEventLoop, scope: Any, link: Linker) -> None:
        self._event_loop = event_loop
        # The host's cancel scope (AnyIO's, on asyncio), whose children the tasks are.
        self._scope = scope
        self._link = link
        # The tasks not yet done, and the run of each.
        self._tasks: dict[asyncio.Task[None], Run] = {}
        # What wait() waits on, while it does.
        self._idle: asyncio.Future[None] | None = None
        # What escaped a task (a BaseException: a daemon's run reports its Exceptions).
        self._escaped: list[BaseException] = []

    def spawn(
        self, run: Run, target: Target, args: tuple[Any, ...], context: contextvars.Context | None
    ) -> None:
        """Start ``target(*args)`` for ``run``, in ``context`` (else a copy of the caller's)."""
        coro = target(*args)
        try:
            task = new_host_task(self._event_loop, coro, run.loop.name, context)
        except BaseException:
            coro.close()
            raise
        self._link(task, self._scope)
        self._tasks[task] = run
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._link(task, None)
        run = self._tasks.pop(task)
        if task.cancelled():
            if run.record.run is run and run.parked is None and run.own_task is not task:
                # Cancelled before its first step (Task.cancel() on every task, as
                # asyncio.run() does at its end): its coroutine never ran, so nothing would
                # ever mark the loop as ended.
                run.finish()
        else:
            escaped = task.exception()
            if escaped is not None:
                # As a task group does: the host and its other loops are cancelled, and it
                # raises what escaped as it ends.
                self._escaped.append(escaped)
                self._scope.cancel()
        idle = self._idle
        if not self._tasks and idle is not None and not idle.done():
            idle.set_result(None)

    async def wait(self) -> None:
        """Return once every task started here is done."""
        while self._tasks:
            idle = self._idle = self._event_loop.create_future()
            try:
                await idle
            finally:
                self._idle = None

    def raise_escaped(self) -> None:
        """Raise what escaped the tasks, if anything did, as a task group would."""
        escaped = self._escaped
        if escaped:
            self._escaped = []
            raise BaseExceptionGroup("unhandled errors in a background host", escaped)
