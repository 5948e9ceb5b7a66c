"""How a :func:`~anytasks.background` host starts its loops' tasks, on each backend.

A host starts a task for each loop it runs, and, for a loop that parks between iterations
(:mod:`anytasks._engine.host`), one for every iteration: tens of thousands a second in a host with
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

    #: Whether a task runs in the very context it is given (not in a copy of it).
    runs_in_given_context = False

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

    def take_escaped(self) -> list[BaseException]:
        """Nothing: what escapes a task goes up through the nursery."""
        return []


#: ``link(scope)`` makes the pair of functions that record a task as a child of the AnyIO
#: cancel ``scope``, and forget it again.
Linker = Callable[[Any], tuple[Callable[["asyncio.Task[None]"], None], ...]]


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

    def link(scope: Any) -> tuple[Callable[[asyncio.Task[None]], None], ...]:
        parent_id = id(scope._host_task)
        add, discard = scope._tasks.add, scope._tasks.discard

        def adopt(task: asyncio.Task[None]) -> None:
            task_states[task] = task_state(parent_id, scope)
            add(task)

        def forget(task: asyncio.Task[None]) -> None:
            task_states.pop(task, None)
            discard(task)

        return adopt, forget

    return link


@final
class TaskSpawner:
    """Starts plain asyncio tasks in a cancel scope, and keeps account of them until done."""

    __slots__ = ("_adopt", "_escaped", "_event_loop", "_forget", "_idle", "_scope", "_tasks")

    #: Whether a task runs in the very context it is given: asyncio.Task(context=) does from
    #: Python 3.11 on; before, a task gets a copy.
    runs_in_given_context = sys.version_info >= (3, 11)

    def __init__(self, event_loop: asyncio.AbstractEventLoop, scope: Any, link: Linker) -> None:
        self._event_loop = event_loop
        # The host's cancel scope (AnyIO's, on asyncio), whose children the tasks are.
        self._scope = scope
        self._adopt, self._forget = link(scope)
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
        self._adopt(task)
        self._tasks[task] = run
        task.add_done_callback(self._done)
        # Known before it runs: drive() need not look it up.
        run.own_task = task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._forget(task)
        run = self._tasks.pop(task)
        if task.cancelled():
            # A run whose drive() ran has finished by the time its task is done, unless it
            # parked (and then its task was not cancelled).
            if run.record.run is run and run.parked is None:
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

    def take_escaped(self) -> list[BaseException]:
        """What escaped the tasks, for the host to raise as a task group would."""
        escaped, self._escaped = self._escaped, []
        return escaped
