"""The background host: a task group that ``Loop.start()`` schedules loops into."""

from __future__ import annotations

from contextvars import Context, ContextVar, Token, copy_context
from types import TracebackType
from typing import TYPE_CHECKING, Any, final

import anyio
from anyio.abc import TaskGroup

from ._engine.backend import bind_primitives, running_asyncio_loop, trio_running
from ._engine.spawner import NurserySpawner, TaskSpawner, asyncio_task_linker
from ._engine.timers import TimerQueue

if TYPE_CHECKING:
    from ._engine.run import Run

# The innermost active host, as seen by the calling task.
_current_host: ContextVar[BackgroundHost | None] = ContextVar("anytasks_host", default=None)

#: How many parked runs the host resumes before it lets their tasks run: 100 000 loops due at
#: once make no 100 000 tasks at once, and the collector, which runs when allocations outnumber
#: frees by 700, finds no more than a batch's tasks alive
#: (benchmarks/history/2026-12-07-timer-host-prototype.md).
RESUME_BATCH = 64

# The arguments of drive() for a resumed run, whose iterations are bound already (Run.call).
_NO_ARGS: tuple[Any, ...] = ()
_NO_KWARGS: dict[str, Any] = {}


def current_host() -> BackgroundHost | None:
    """Where ``Loop.start()`` runs a loop: the innermost active host, if any."""
    return _current_host.get()


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
class BackgroundHost:
    """Runs loops started with :meth:`Loop.start` as daemons until the block ends.

    Create it with :func:`background`.

    A loop on an interval that waits for its next slot on time gives its task up meanwhile:
    the host keeps the run in one timer queue, served by one task of its own, and resumes it
    in a new task when the slot is due (or when ``stop()``, ``cancel()``, ``pause()`` or a new
    schedule ends the wait early). An idle loop is then a few objects, not a suspended task
    with its frames, which the garbage collector would walk again and again
    (benchmarks/history/2026-12-07-idle-loops-profile.md).
    """

    __slots__ = ("_closing", "_serving", "_spawner", "_task_group", "_timers", "_token", "wake")

    def __init__(self) -> None:
        self._task_group: TaskGroup | None = None
        self._token: Token[BackgroundHost | None] | None = None
        self._spawner: NurserySpawner | TaskSpawner | None = None
        # The parked runs, by due time; whether the task that resumes them is running; and,
        # while it sleeps, what wakes it (backend.Wakeable).
        self._timers: TimerQueue[Run] = TimerQueue()
        self._serving = False
        self.wake: Any = None
        # Whether the block is ending: no run parks any more.
        self._closing = False

    @property
    def wait_scope(self) -> None:
        """No cancel scope of the host's own is known (backend.Wakeable)."""
        return None

    async def __aenter__(self) -> BackgroundHost:
        if self._task_group is not None:
            raise RuntimeError(f"{self!r} cannot be entered twice")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._spawner = _spawner_for(task_group)
        self._token = _current_host.set(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        task_group, spawner = self._task_group, self._spawner
        assert task_group is not None
        assert spawner is not None
        assert self._token is not None
        _current_host.reset(self._token)
        # Loops seldom end of their own accord: leaving the block is
        # what ends them, so cancel rather than wait.
        self._closing = True
        task_group.cancel_scope.cancel()
        for run in self._timers.items():
            # Resumed in the host's cancelled scope, as a sleeping task would be woken by it:
            # it runs after_loop, and ends as CANCELLED.
            self.unpark(run)
        try:
            with anyio.CancelScope(shield=True):
                await spawner.wait()
        finally:
            try:
                result = await task_group.__aexit__(exc_type, exc, tb)
            finally:
                self._task_group = None
                self._token = None
        spawner.raise_escaped()
        return result

    def __repr__(self) -> str:
        state = "active" if self._task_group is not None else "inactive"
        return f"<anytasks.BackgroundHost ({state})>"

    # -- the runs -------------------------------------------------------------------------

    def start(self, run: Run, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Run ``run`` here, as a daemon, in a task that starts in the caller's context.

        :raises RuntimeError: if the host has ended.
        """
        spawner = self._spawner
        if self._task_group is None or spawner is None:
            raise RuntimeError(f"{self!r} has ended")
        run.host = self
        spawner.spawn(run, run.drive_daemon, (args, kwargs), None)

    def park(self, run: Run, due: float) -> bool:
        """Take over ``run``'s wait for the slot due at ``due``, as its task ends: False if the
        host is ending (the run waits in its task, where the host's cancellation reaches it)."""
        if self._closing:
            return False
        # Its next iteration's task runs in what this one's context is as it ends: a context
        # variable that one iteration sets, the next one sees, as in a loop with one task.
        run.context = copy_context()
        entry = run.parked = self._timers.push(due, run)
        if not self._serving:
            self._serving = True
            assert self._task_group is not None
            # In a context of its own: not the parking run's, whose values it would keep.
            Context().run(
                self._task_group.start_soon, self._serve, name="anytasks background host timers"
            )
        elif self.wake is not None and self._timers.is_first(entry):
            self.wake()  # the wait in progress is for a later time
        return True

    def unpark(self, run: Run) -> None:
        """Take ``run`` out of the timers, and resume it now (its wait ended early)."""
        entry = run.parked
        assert entry is not None
        run.parked = None
        timers = self._timers
        first = timers.is_first(entry)
        timers.withdraw(entry)
        if first and self.wake is not None:
            # The wait in progress was for this entry: a virtual clock would jump to it.
            self.wake()
        self._resume(run, entry[0])

    def _resume(self, run: Run, due: float) -> None:
        context, run.context = run.context, None
        spawner = self._spawner
        assert spawner is not None
        spawner.spawn(
            run, run.drive, (_NO_ARGS, _NO_KWARGS, anyio.TASK_STATUS_IGNORED, True, due), context
        )

    async def _serve(self) -> None:
        """Resume the parked runs as they come due, until none is parked."""
        primitives = bind_primitives()
        current_time, checkpoint = primitives.current_time, primitives.checkpoint
        timers = self._timers
        try:
            while True:
                due = timers.next_due()
                if due is None:
                    return  # park() starts this task again
                now = current_time()
                if due > now:
                    await primitives.sleep_until(due, self)
                    continue
                for _ in range(RESUME_BATCH):
                    entry = timers.pop_due(now)
                    if entry is None:
                        break
                    run = entry[2]
                    run.parked = None
                    self._resume(run, entry[0])
                else:
                    await checkpoint()  # let the batch run before the next
        finally:
            self._serving = False


def background() -> BackgroundHost:
    """Open a host in which :meth:`Loop.start` runs loops in the background.

    The host is an AnyIO task group (:class:`anyio.abc.TaskGroup`, a
    :class:`trio.Nursery` on Trio). Inside ``async with background():``, and in
    every task started from inside it, ``loop.start(...)`` schedules the loop in
    the host and returns at once.
    Such a loop is a daemon: an unhandled error is reported through its
    :meth:`~Loop.error` hook (by default logged on the ``anytasks`` logger),
    :meth:`~Loop.failed` becomes ``True``, and the other loops and the body of
    the block carry on. Leaving the block cancels the loops still running there
    and waits until their :meth:`~Loop.after_loop` hooks have finished.

    Hosts nest: ``start()`` uses the innermost one.

    Synopsis::

        async with anytasks.background():
            heartbeat.start()
            await serve_forever()
    """
    return BackgroundHost()
