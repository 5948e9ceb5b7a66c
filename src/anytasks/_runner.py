"""One run of a loop: from ``start()``/``run()`` until it has ended, restarts included.

The :class:`Runner` owns everything that exists only while a loop runs: its state, its cancel
scope, when the next iteration is due. :class:`~anytasks.Loop` is the public face that creates
one per run and passes the controls on to it.
"""

# The runner is the Loop's own machinery, kept apart so that each file answers one question; it
# reads the Loop's underscored fields (its hooks, body, exception types) by design.
# pyright: reportPrivateUsage=false

from __future__ import annotations

import datetime
import functools
import logging
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus

from . import _backend, _events
from ._attempts import utc_from_timestamp
from ._cancellation import cancellation_requested
from ._ending import Ending
from ._options import LoopOptions
from ._schedules.every import Every
from ._state import LoopState, check_transition, sticky

if TYPE_CHECKING:
    import asyncio

    from ._exclusive import Exclusive
    from ._loop import Loop
    from ._outcome import SkipReason

logger = logging.getLogger("anytasks")

_S = LoopState
_ONE_MICROSECOND = datetime.timedelta(microseconds=1)


def in_own_run(run: Runner) -> bool:
    """Whether the calling task is the one running ``run``'s body and hooks."""
    # ==, not is: where no native task is known, the token is AnyIO's task id, an int.
    return run.own_task == _backend.current_task_object()


def _no_draws() -> float:  # pragma: no cover (only loops with jitter or a lease draw)
    raise AssertionError("this loop has neither jitter nor a lease to draw for")


def _reraise(exc: BaseException) -> NoReturn:
    """Raise ``exc`` again from an ``except`` block, keeping its own ``__context__``."""
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context


class Runner(Ending):
    """The state of one started loop, from ``start()``/``run()`` until it has ended.

    A restart keeps the runner (so ``join()`` waits across it) and replaces the cancel scope.
    """

    __slots__ = (
        "finished",
        "loop",
        "options",
        "scope",
        "task",
        "thread",
    )

    def __init__(self, loop: Loop[Any, Any]) -> None:
        self.loop = loop
        # What the iterations read, kept from loop._options by apply().
        self.options: LoopOptions = loop._options
        self.wake: Callable[[], None] | None = None
        self.replan = False
        # count, interval (None for a wall-clock schedule), plans_missed, jitter, random:
        self.apply(loop._options)
        self.state = _S.STARTING
        self.scope = anyio.CancelScope()
        # Controls are for the thread whose event loop runs the loop (Settings._check_thread).
        # The thread object rather than its ident: an ident is an int made per run.
        self.thread = threading.current_thread()
        # Set by drive(), and by after_loop's own task on asyncio while it runs (see
        # Ending._after_hook). Not a context variable, which tasks that the body starts would
        # inherit, and which costs 0.24 KiB per running loop
        # (benchmarks/history/2026-11-30-issue8-closing-pass.md).
        self.own_task = None
        # Made by the first join(): an event costs more memory than the rest of
        # an idle loop's state, and most loops are never joined.
        self.finished: anyio.Event | None = None
        # wake is set while waiting between iterations, so that stop(), pause() and
        # change_interval() can end the wait without touching the body.
        self.paused = False
        self.skipped = 0
        self.primitives: _backend.Primitives | None = None
        self.restart_with = None
        self.task: asyncio.Task[None] | None = None
        self.failure = None
        self.cancelled = False
        self.end = None
        self.iteration_started: float | None = None
        self.exclusive: Exclusive | None = None
        self.exhausted = False
        self.last_began: float | datetime.datetime | None = None
        self.current_loop = 0
        # When the next iteration is due: a monotonic deadline for an interval
        # loop, a wall-clock time for a wall-clock schedule.
        self.next_deadline: float | None = None
        self.next_slot: float | None = None
        self.next_target: datetime.datetime | None = None
        # The wall-clock time the last wall-clock iteration was due at.
        self.last_target: datetime.datetime | None = None
        # Wall-clock timestamp minus monotonic time, to show deadlines as datetimes.
        self.wall_offset = 0.0

    # -- state --------------------------------------------------------------------------

    def enter(self, new: LoopState) -> None:
        """Move to ``new``, along the transitions of ``_state.TRANSITIONS`` only."""
        current = self.state
        if current is new or sticky(current, new):
            return
        check_transition(current, new)
        self.state = new

    def is_being_cancelled(self) -> bool:
        return self.state is _S.CANCELLING or (self.state is _S.FINISHING and self.cancelled)

    def next_iteration(self) -> datetime.datetime | None:
        if self.state not in (_S.RUNNING, _S.WAITING, _S.BACKING_OFF, _S.PAUSED):
            return None
        if self.interval is None:
            return self.next_target
        # Read once: metrics collectors call this from other threads (an HTTP server's).
        deadline = self.next_deadline
        if deadline is None:
            return None
        return utc_from_timestamp(self.wall_offset + deadline)

    @property
    def wait_scope(self) -> anyio.CancelScope | None:
        """The innermost cancel scope of the run's task while it waits: its own, except under a
        lease, whose keeper's task group is in between."""
        return self.scope if self.exclusive is None else None

    def note_skipped(self, count: int, reason: SkipReason, *, report: bool = True) -> None:
        self.skipped += count
        if count and report and _events.listening:
            _events.emit(_events.IterationSkipped(self.loop, reason, count))

    # -- controls -----------------------------------------------------------------------

    def stop(self) -> None:
        if self.state in (_S.STARTING, _S.RUNNING, _S.BACKING_OFF, _S.WAITING, _S.PAUSED):
            self.enter(_S.STOPPING)
            if self.wake is not None:
                self.wake()

    def cancel(self) -> None:
        if self.state is not _S.FINISHING:  # after_loop is shielded: nothing to cancel
            self.enter(_S.CANCELLING)
        self.cancelled = True
        self.scope.cancel()

    def pause(self) -> None:
        self.paused = True
        if self.state is _S.WAITING:
            # Paused at once; a body or a retry in progress finishes first.
            self.enter(_S.PAUSED)
            self.next_deadline = self.next_target = None
        if self.wake is not None:
            self.wake()

    def resume(self) -> None:
        self.paused = False
        if self.state is _S.PAUSED:
            self.enter(_S.WAITING)
        if self.wake is not None:
            self.wake()

    def apply(self, options: LoopOptions) -> None:
        """Take new options; a new schedule is planned anew from the wait in progress."""
        schedule_changed = options.schedule is not self.options.schedule
        self.options = options
        self.count = options.count
        # Read at every iteration that is behind (each iteration of a zero interval).
        self.plans_missed = options.plans_missed
        self.jitter = options.jitter
        # Looked up only for the loops that draw (a backend lookup, at every start otherwise).
        draws = options.jitter or options.exclusive is not None
        self.random = options.random or (_backend.default_random() if draws else _no_draws)
        self.timeout = options.timeout
        self.on_timeout = options.on_timeout
        self.max_retries = options.max_retries
        schedule = options.schedule
        # None for a wall-clock schedule, and for an exclusive loop's interval, which follows
        # the wall clock (LoopOptions.wall_schedule).
        self.interval = (
            schedule.interval
            if options.wall_schedule is None and isinstance(schedule, Every)
            else None
        )
        self.plain = options.timeout is None and options.exclusive is None
        if schedule_changed:
            self.replan = True
            if self.interval is None:
                # A new wall-clock schedule plans from the change: its times that passed before
                # are not missed slots (the old schedule's last slot says nothing about them).
                self.last_target = _backend.wall_now() - _ONE_MICROSECOND
            if self.wake is not None:
                self.wake()

    # -- driving a run ------------------------------------------------------------------

    async def drive(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], task_status: TaskStatus[None]
    ) -> None:
        """Run the loop, and run it again after each restart(), until it ends.

        Each run goes from before_loop to after_loop. An unhandled exception is raised after
        after_loop, even if a cancellation cut the error hook short, unless a restart() was
        asked for meanwhile (the error hook's way of recovering).
        """
        self.own_task = _backend.current_task_object()
        # Whether a run has got through before_loop: task_group.start() returns then, even if
        # a restart cut short the first runs' before_loop.
        started = False
        try:
            # The runs are written out here rather than in a method per run: each coroutine
            # level costs every checkpoint of the body (about 20 ns on uvloop, 2 % of an
            # iteration; benchmarks/history/2026-11-30-issue8-closing-pass.md).
            while True:
                self._begin_run()
                try:
                    with self.scope:
                        try:
                            try:
                                # A loop cancelled before its task got to run ends here,
                                # before before_loop, and not after its body has begun.
                                await anyio.lowlevel.checkpoint_if_cancelled()
                                await self._call_hook(self.loop._before_loop)
                                if not started:
                                    task_status.started()
                                    started = True
                                if self.options.exclusive is None:
                                    await self._iterate(args, kwargs)
                                else:
                                    await self._iterate_exclusively(args, kwargs)
                            except _backend.cancelled_exc_class() as exc:
                                if cancellation_requested(when_unknown=False):
                                    self.cancelled = True  # _end_run() need not ask again
                                elif not cancellation_requested(when_unknown=True):
                                    raise self._stray_cancellation() from exc
                                self.enter(_S.CANCELLING)
                                raise
                        except Exception as exc:
                            self.loop._failed = True
                            self.failure = exc
                            self.enter(_S.FAILING)
                            await self._report_failure(exc)
                        except BaseException as exc:
                            self._note_base_exception(exc)
                            raise
                        finally:
                            await self._end_run()
                except _backend.cancelled_exc_class():
                    # Cancelled by an enclosing scope or Task.cancel() (the loop's own scope
                    # catches its own): an unhandled error still wins over the cancellation.
                    if self.failure is not None:
                        _reraise(self.failure)
                    raise
                if self.restart_with is None:
                    if self.failure is not None:
                        raise self.failure
                    break
                args, kwargs = self.restart_with
                self.restart_with = None
                self.scope = anyio.CancelScope()
                self.enter(_S.STARTING)
                self.loop._failed = False
            if not started:
                # Stopped or cancelled during before_loop: task_group.start() must
                # still return rather than complain that the loop never started.
                task_status.started()
        finally:
            self.finish()

    def _begin_run(self) -> None:
        """Reset what one run counts, and report its start."""
        self.current_loop = 0
        self.skipped = 0
        self.cancelled = False
        self.last_target = None
        self.last_began = None
        self.exhausted = False
        self.exclusive = None
        self.failure = None
        # A run starts unpaused, a restarted one too.
        self.paused = False
        if _events.listening:
            _events.emit(_events.LoopStarted(self.loop))

    def _stray_cancellation(self) -> RuntimeError:
        return RuntimeError(
            f"loop {self.loop.name!r} raised a CancelledError that no cancel scope and no "
            "Task.cancel() asked for (did it await a future or task that something else "
            "cancelled?)"
        )

    def finish(self) -> None:
        """Mark the loop as not running, and wake whoever joined it."""
        self.state = _S.IDLE
        self.current_loop = 0
        self.loop._run = None
        if self.finished is not None:
            self.finished.set()

    async def drive_daemon(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            await self.drive(args, kwargs, anyio.TASK_STATUS_IGNORED)
        except Exception as exc:
            if exc is not self.failure:
                # A hook's own exception, not the body's (which went to the error
                # hook already): report it, since a daemon has nobody to raise to.
                logger.exception("Exception in a hook of loop %r", self.loop.name, exc_info=exc)

    async def drive_task(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # Set here too: an eager task factory runs this before create_task() returns.
        task = self.task = _backend.current_asyncio_task()
        if task is not None:
            # Running, so drive() ends the loop however the task ends: the done callback
            # for a task cancelled before its first step has nothing left to do, and would
            # cost a callback at every end (cancelling 10 000 loops: benchmarks, W2).
            task.remove_done_callback(self.forget_unstarted)
        await self.drive(args, kwargs, anyio.TASK_STATUS_IGNORED)
        if sys.version_info < (3, 11):
            # The loop's own cancel() and a task.cancel() in the same tick arrive as one
            # CancelledError, which the loop's scope took for its own; asyncio before
            # 3.11 keeps no count that would tell AnyIO otherwise.
            if getattr(self.task, "native_cancel_requested", False):
                raise anyio.get_cancelled_exc_class()

    def forget_unstarted(self, task: asyncio.Task[None]) -> None:
        """Done callback of a fallback task: one cancelled before its first step never ran."""
        if self.loop._run is self:
            self.finish()

    async def _iterate_exclusively(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Iterate under the lease of an exclusive loop, with the keeper beside it."""
        lease = self.options.exclusive
        assert lease is not None
        from ._exclusive import Exclusive  # not at import: most loops have no lease

        exclusive = self.exclusive = Exclusive(
            lease, self.loop.name, self.random, paused=lambda: self.paused
        )
        # Kept after the run, until the next: _outcome() reads whether the lease was lost.
        await exclusive.run(functools.partial(self._iterate, args, kwargs))
