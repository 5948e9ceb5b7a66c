"""The runs of one :func:`~anytasks.background` block: their tasks, and the parked runs' timers.

A loop on an interval that waits for its next slot on time gives its task up meanwhile: the
:class:`LoopHost` keeps the run in one timer queue (:mod:`.timers`), served by one task of its
own, and resumes it in a new task (:meth:`~.run.Run.drive` with ``resumed=``) when the slot is
due, or at once when ``stop()``, ``cancel()``, ``pause()`` or a new schedule ends the wait
early. An idle loop is then a few objects, not a suspended task with its frames, which the
garbage collector would walk again and again
(benchmarks/history/2026-12-07-idle-loops-profile.md).

:class:`~anytasks.BackgroundHost` is the public face: it opens the task group and makes a
:class:`LoopHost` current for ``Loop.start()``; this object does the rest.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable
from contextvars import Context, ContextVar, copy_context
from typing import TYPE_CHECKING, Any, cast, final

import anyio
from anyio.abc import TaskGroup

from .backend import bind_primitives, cancelled_exc_class, running_asyncio_loop, trio_running
from .spawner import NurserySpawner, TaskSpawner, asyncio_task_linker
from .timers import TimerQueue

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from .run import Run

#: The innermost active host, as seen by the calling task.
current: ContextVar[LoopHost | None] = ContextVar("anytasks_host", default=None)

#: How many runs the host starts or resumes before it lets their tasks run. 100 000 loops
#: started or due at once make no 100 000 tasks at once (each is 2-3 KiB while it lives: the
#: peak memory of the process); and the fewer tasks are alive when the collector runs, the
#: fewer objects it moves to an older generation, whose collections walk every idle loop:
#: 100 000 loops at 1 s on uvloop saw 9 full collections in 15 s with batches of 64, none with
#: batches of 16 (benchmarks/history/2026-12-07-issue19-host-timers.md).
BATCH = 16

# The arguments of drive() for a resumed run, whose iterations are bound already (Run.call).
_NO_ARGS: tuple[Any, ...] = ()
_NO_KWARGS: dict[str, Any] = {}


def _nursery_start_soon(task_group: TaskGroup) -> Any:
    """On Trio, the ``start_soon`` of the nursery under AnyIO's task group; else None.

    AnyIO's (4.14+) wraps every task it starts in a ``TaskHandle``, with a cancel scope, an
    event and a coroutine of its own, for the caller to await or cancel the task by. A host
    hands no handle out, and on Trio these were a third of the memory of an idle loop
    (benchmarks/history/2026-12-07-idle-loops-profile.md): the host starts its loops in the
    nursery underneath, which is what AnyIO's task group is on Trio, so that errors, cancel
    scopes and the end of the block are as before.
    """
    nursery: Any = getattr(task_group, "_nursery", None)
    if nursery is not None and trio_running() is not None:
        return nursery.start_soon
    return None


def _spawner_for(task_group: TaskGroup) -> NurserySpawner | TaskSpawner:
    """How a host with ``task_group`` starts its tasks: see anytasks._engine.spawner."""
    start_soon = _nursery_start_soon(task_group)
    if start_soon is not None:
        return NurserySpawner(start_soon)
    event_loop = running_asyncio_loop()
    link = asyncio_task_linker() if event_loop is not None else None
    if event_loop is None or link is None or trio_running() is not None:
        return NurserySpawner(task_group.start_soon)  # pragma: no cover (the portable path)
    return TaskSpawner(event_loop, task_group.cancel_scope, link)


@final
class LoopHost:
    """Starts a host's loops, parks its idle ones, and resumes them when they are due."""

    __slots__ = (
        "_cancelled",
        "_closing",
        "_ended",
        "_ending",
        "_escaped",
        "_serving",
        "_spawner",
        "_starting",
        "_task_group",
        "_timers",
        "new_scope",
        "wake",
    )

    def __init__(self, task_group: TaskGroup) -> None:
        self._task_group = task_group
        self._spawner = _spawner_for(task_group)
        #: A new cancel scope of the running backend: the class of the task group's own,
        #: without anyio.CancelScope()'s backend lookup (2.4 of its 5.9 µs on asyncio), at
        #: every iteration of a parked loop.
        self.new_scope: Callable[[], anyio.CancelScope] = type(task_group.cancel_scope)
        # The parked runs, by due time; whether the task that resumes them is running; and,
        # while it sleeps, what wakes it (backend.Wakeable).
        self._timers: TimerQueue[Run] = TimerQueue()
        # The runs that start() was asked for, not yet given a task, with their arguments
        # and the context of the start() call.
        self._starting: deque[tuple[Run, tuple[Any, ...], dict[str, Any], Context]] = deque()
        self._serving = False
        self.wake: Any = None
        # The parked runs that cancel() ended, with the due time each waited for: the host's
        # task ends them (or resumes them, for an after_loop or a restart).
        self._ending: deque[tuple[Run, float]] = deque()
        # Whether the block is ending, or its scope was cancelled (no run parks any more
        # then), and whether it has ended.
        self._closing = False
        self._cancelled = False
        self._ended = False
        # What escaped the ending of parked runs as the block ended.
        self._escaped: list[BaseException] = []

    @property
    def wait_scope(self) -> None:
        """No cancel scope of the host's own is known (backend.Wakeable)."""
        return None

    # -- the runs -------------------------------------------------------------------------

    def start(self, run: Run, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Run ``run`` here, as a daemon, in a task that starts in the caller's context.

        :raises RuntimeError: if the host has ended.
        """
        if self._ended:
            raise RuntimeError("this anytasks.background() host has ended")
        run.host = self
        if self._closing:
            # Started as the block ends (by an after_loop): in the cancelled scope, it ends
            # before its before_loop, as in a task group.
            self._spawner.spawn(run, run.drive_daemon, (args, kwargs), None)
            return
        # Given its task by the host's own task, in batches (BATCH).
        context = copy_context()
        if self._spawner.runs_in_given_context:
            run.context = context  # what its tasks run in, one after another
        self._starting.append((run, args, kwargs, context))
        self._serve_soon()

    def park(self, run: Run, due: float) -> bool:
        """Take over ``run``'s wait for the slot due at ``due``, as its task ends: False if the
        host is ending (the run waits in its task, where the host's cancellation reaches it)."""
        if self._closing or self._cancelled:
            return False
        # Its next iteration's task runs in what this one's context is as it ends: a context
        # variable that one iteration sets, the next one sees, as in a loop with one task.
        # (Where a task runs in the very context it was given, that is the run's already.)
        if not self._spawner.runs_in_given_context:
            run.context = copy_context()
        entry = run.parked = self._timers.push(due, run)
        if not self._serving or self._timers.is_first(entry):
            self._serve_soon()  # the wait in progress, if any, is for a later time
        return True

    def _serve_soon(self) -> None:
        """Have the host's task look at its queues now: start it, or end its wait."""
        if self._closing:
            return  # close() does what is left
        if not self._serving:
            self._serving = True
            # In a context of its own: not the caller's, whose values it would keep.
            start_soon: Any = self._task_group.start_soon
            Context().run(start_soon, self._serve, name="anytasks background host")
        elif self.wake is not None:
            self.wake()

    def unpark(self, run: Run) -> None:
        """Take ``run`` out of the timers, and resume it now (its wait ended early)."""
        due = self.withdraw(run)
        self._resume(run, due)

    def end_parked(self, run: Run) -> None:
        """End a parked run that cancel() was called for: soon, in the host's task."""
        self._ending.append((run, self.withdraw(run)))
        self._serve_soon()

    def _end(self, run: Run, due: float) -> None:
        """End a cancelled parked run: in place, if nothing is left to await; else in a task."""
        if run.restart_with is None and run.record.hooks.after_loop is None:
            run.end_in_place()
        else:
            self._resume(run, due)

    def withdraw(self, run: Run) -> float:
        """Take ``run`` out of the timers; return the due time it waited for."""
        entry = run.parked
        assert entry is not None
        run.parked = None
        timers = self._timers
        first = timers.is_first(entry)
        timers.withdraw(entry)
        if first and self.wake is not None:
            # The wait in progress was for this entry: a virtual clock would jump to it.
            self.wake()
        due: float = entry[0]
        return due

    def _resume(self, run: Run, due: float) -> None:
        context = run.context
        if not self._spawner.runs_in_given_context:
            run.context = None  # its task has a copy
        self._spawner.spawn(
            run, run.drive, (_NO_ARGS, _NO_KWARGS, anyio.TASK_STATUS_IGNORED, True, due), context
        )

    async def _serve(self) -> None:
        """Start the runs asked for, and resume the parked runs as they come due, in batches,
        until there are none."""
        primitives = bind_primitives()
        current_time, checkpoint = primitives.current_time, primitives.checkpoint
        timers, starting, spawn = self._timers, self._starting, self._spawner.spawn
        ending = self._ending
        try:
            while True:
                if ending:
                    for _ in range(min(BATCH, len(ending))):
                        self._end(*ending.popleft())
                    await checkpoint()
                    continue
                if starting:
                    for _ in range(min(BATCH, len(starting))):
                        run, args, kwargs, context = starting.popleft()
                        spawn(run, run.drive_daemon, (args, kwargs), context)
                    await checkpoint()  # let the batch run before the next
                    continue
                due = timers.next_due()
                if due is None:
                    return  # start() or park() starts this task again
                now = current_time()
                if due > now:
                    await primitives.sleep_until(due, self)
                    continue
                for _ in range(BATCH):
                    entry = timers.pop_due(now)
                    if entry is None:
                        break
                    run, due = entry[2], entry[0]
                    timers.release(entry)
                    run.parked = None
                    self._resume(run, due)
                else:
                    await checkpoint()
        except cancelled_exc_class():
            # The host's scope, or one around it, was cancelled: as it would wake a task that
            # sleeps, the parked runs resume in it, run after_loop and end as CANCELLED.
            # The runs not yet started start in it too, and end before their before_loop.
            self._cancelled = True
            for run in timers.items():
                self.unpark(run)
            while ending:
                run, due = ending.popleft()
                self._resume(run, due)
            while starting:
                run, args, kwargs, context = starting.popleft()
                spawn(run, run.drive_daemon, (args, kwargs), context)
            raise
        finally:
            self._serving = False

    # -- the end of the block ----------------------------------------------------------------

    async def close(self) -> None:
        """End the runs, the block's scope being cancelled: start the ones not yet started (in
        the cancelled scope, they end before their before_loop), cancel the parked ones, and
        wait for the tasks that the task group does not wait for."""
        self._closing = True
        starting = self._starting
        while starting:
            run, args, kwargs, context = starting.popleft()
            self._spawner.spawn(run, run.drive_daemon, (args, kwargs), context)
        for run in self._timers.items():
            # As a sleeping task is woken by the scope's cancellation: it runs after_loop, in
            # a task, or ends here if it has none; either way as CANCELLED.
            run.cancel()
        ending = self._ending
        while ending:
            try:
                self._end(*ending.popleft())
            except BaseException as exc:
                self._escaped.append(exc)
        with anyio.CancelScope(shield=True):
            await self._spawner.wait()

    def end(self, raised: BaseException | None = None) -> None:
        """Mark the host as ended, once its task group has; raise what escaped the runs (their
        tasks, or their ending), where the task group would not, with what the task group
        ``raised``, if anything, as a task group does.
        """
        self._ended = True
        escaped = [*self._spawner.take_escaped(), *self._escaped]
        self._escaped = []
        if not escaped:
            return
        if isinstance(raised, BaseExceptionGroup):
            group = cast("BaseExceptionGroup[BaseException]", raised)
            escaped += group.exceptions  # one group, as a task group makes
        elif raised is not None and not isinstance(raised, cancelled_exc_class()):
            escaped.append(raised)
        raise BaseExceptionGroup("unhandled errors in a background host", escaped)
