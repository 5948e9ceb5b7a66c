"""One run of a loop, from ``start()``/``run()`` until it has ended (restarts included), and the
record it shares with its :class:`~anytasks.Loop`.

A :class:`LoopRecord` is the one mutable object of a loop's lifetime: the Loop writes its
settings, hooks and listeners there (each a value it replaces, never mutates), and the run
reads them in place, so that a change applies to the run in progress at once; the run writes
there what outlives it: whether it failed and how it ended. (It is here, beside the run, so
that each knows the other's type without an import cycle.)

A :class:`Run` owns what exists only while a loop runs: its state, its cancel scope, its task,
the iteration count, the failure that ends it, and its :class:`~.position.SchedulePosition`, which
does the waits. It reads the loop's settings and hooks in place, from the
:class:`LoopRecord` that it shares with its :class:`~anytasks.Loop`, and writes there
what outlives it (whether it failed, how it ended).

Its parts, in the order a run goes through them:

- *driving* (:meth:`Run.drive`): the runs, restarts included; ``before_loop``, the iterations,
  the error hook and ``after_loop``, and what a cancellation or an error does to them;
- *iterating* (:meth:`Run._iterate`): the hot path, one coroutine frame, on which an interval
  loop that is on time calls its body and sleeps; everything slower is a method call away;
- *attempts* (:meth:`Run._observed_iteration`): an iteration with a timeout, a lease or
  listeners, and the retries of every iteration;
- *ending* (:meth:`Run._end_run`): the run's :class:`~anytasks.LoopEnd`, the error hook and
  ``after_loop``.
"""

from __future__ import annotations

import datetime
import functools
import logging
import math
import sys
import threading
import types
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, NoReturn

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus

from .._outcome import EndReason, IterationTimeout, LoopEnd
from . import backend, events
from .cancellation import call_shielded, cancellation_requested
from .handled import fails_the_run, is_handled
from .position import SchedulePosition
from .state import RUNNING, STOPPING, WAITING, LoopState, check_transition, sticky

if TYPE_CHECKING:
    import asyncio
    import contextvars

    from .._outcome import IterationOutcome
    from .events import AnyLoop, Listener
    from .exclusive import Exclusive
    from .hooks import Hooks
    from .host import LoopHost
    from .options import LoopOptions
    from .retry import SupportsDelay

logger = logging.getLogger("anytasks")

_S = LoopState
_UTC = datetime.timezone.utc
_INF = math.inf

# The body, bound to its arguments.
Body = Callable[[], Awaitable[Any]]
# Who hears of an iteration: the listeners there were as it began (none: it is not reported).
Listeners = tuple["Listener", ...]


def _reraise(exc: BaseException) -> NoReturn:
    """Raise ``exc`` again from an ``except`` block, keeping its own ``__context__``."""
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context


class LoopRecord:
    """The state of one :class:`~anytasks.Loop`, shared with its runs."""

    __slots__ = ("failed", "hooks", "last_end", "listeners", "listeners_counted", "options", "run")

    def __init__(self, options: LoopOptions, hooks: Hooks) -> None:
        # What the loop was configured with, and its hooks: frozen values, replaced on change.
        self.options = options
        self.hooks = hooks
        # The loop's own listeners, before the global ones.
        self.listeners: tuple[Listener, ...] = ()
        # While the loop has listeners: what takes it off the count of loops with listeners
        # (run at the latest when the loop is garbage collected).
        self.listeners_counted: weakref.finalize[[int], object] | None = None
        # The run in progress, or None.
        self.run: Run | None = None
        # Whether the last run ended with an unhandled exception (reset by the next start).
        self.failed = False
        # How the latest run ended, once one has.
        self.last_end: LoopEnd | None = None

    def set_listeners(self, listeners: tuple[Listener, ...], owner: object) -> None:
        """Replace the loop's own listeners; ``owner`` is the loop, whose collection takes it
        off the count of loops with listeners (``events.listening``)."""
        self.listeners = listeners
        counted = self.listeners_counted
        if listeners and counted is None:
            events.count_loop_listeners(1)
            self.listeners_counted = weakref.finalize(owner, events.count_loop_listeners, -1)
        elif not listeners and counted is not None:
            counted()
            self.listeners_counted = None


class Run:
    """One started loop, from ``start()``/``run()`` until it has ended.

    A restart keeps the run (so ``join()`` waits across it) and replaces the cancel scope.
    """

    __slots__ = (
        "backoff",
        "body",
        "call",
        "cancelled",
        "context",
        "current_loop",
        "end",
        "errors",
        "exclusive",
        "failure",
        "finished",
        "host",
        "instance",
        "iteration_started",
        "loop",
        "own_task",
        "parked",
        "position",
        "record",
        "restart_with",
        "scope",
        "state",
        "task",
        "thread",
    )

    def __init__(
        self,
        loop: AnyLoop,
        record: LoopRecord,
        body: Callable[..., Awaitable[Any]],
        instance: object,
    ) -> None:
        # The public face, for events and messages; what it shares with the run; the body,
        # and the instance that hooks get first, for a loop declared on a class.
        self.loop = loop
        self.record = record
        self.body = body
        self.instance = instance
        self.state = _S.STARTING
        # The run's cancel scope; None while the run is parked in its host, which gives it a
        # new one as it resumes (a scope cannot be entered twice).
        self.scope: anyio.CancelScope | None = anyio.CancelScope()
        self.position = SchedulePosition(record.options, loop, record)
        # Controls are for the thread whose event loop runs the loop (Loop._check_thread).
        # The thread object rather than its ident: an ident is an int made per run.
        self.thread = threading.current_thread()
        # The task running the body and hooks (join() from there would wait for itself): set
        # by drive(), and by after_loop's own task on asyncio while it runs (_after_hook).
        # Not a context variable, which tasks that the body starts would inherit, and which
        # costs 0.24 KiB per running loop (benchmarks/history/2026-11-30-issue8-closing-pass.md).
        self.own_task: object = None
        # Made by the first join(): an event costs more memory than the rest of an idle
        # loop's state, and most loops are never joined.
        self.finished: anyio.Event | None = None
        # The asyncio.Task of a loop started without a host on asyncio.
        self.task: asyncio.Task[None] | None = None
        # The arguments of the run that a restart() asked for, until it begins.
        self.restart_with: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        # How many iterations this run completed, and how many of them raised an unhandled
        # exception that on_error="continue" let pass.
        self.current_loop = 0
        self.errors = 0
        # The unhandled exception that ends this run, once there is one.
        self.failure: BaseException | None = None
        # Whether after_loop runs because the run was cancelled.
        self.cancelled = False
        # How the latest run ended, once it has.
        self.end: LoopEnd | None = None
        # The lease side of an exclusive loop's run.
        self.exclusive: Exclusive | None = None
        # What the run's retries wait by, made at its first retry.
        self.backoff: SupportsDelay | None = None
        # When the iteration in progress began (event loop clock), while anyone listens.
        self.iteration_started: float | None = None
        # The background() host that runs this loop, if any: between two iterations, a run in
        # a host can give its task up and wait in the host's timers instead ("parked"; see
        # anytasks._engine.host).
        self.host: LoopHost | None = None
        # The body bound to the run's arguments, as the iterations call it.
        self.call: Body | None = None
        # While parked: the host's entry for the run, and the context variables of its task,
        # which the task of its next iteration runs in.
        self.parked: list[Any] | None = None
        self.context: contextvars.Context | None = None

    # -- state --------------------------------------------------------------------------

    def enter(self, new: LoopState) -> None:
        """Move to ``new``, along the transitions of ``state.TRANSITIONS`` only."""
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
        return self.position.next_due()

    def is_own_task(self) -> bool:
        """Whether the calling task is the one running this run's body and hooks."""
        # ==, not is: where no native task is known, the token is AnyIO's task id, an int.
        return self.own_task == backend.current_task_object()

    # -- controls -----------------------------------------------------------------------

    def stop(self) -> None:
        if self.state in (_S.STARTING, _S.RUNNING, _S.BACKING_OFF, _S.WAITING, _S.PAUSED):
            self.enter(_S.STOPPING)
            self.position.stopping = True
            self.wake()

    def cancel(self) -> None:
        if self.state is not _S.FINISHING:  # after_loop is shielded: nothing to cancel
            self.enter(_S.CANCELLING)
        self.cancelled = True
        if self.parked is not None:
            host = self.host
            assert host is not None
            # Ended by the host's task, in a batch: with no after_loop there is nothing to
            # await, so it needs no task of its own (cancelling 10 000 parked loops took twice
            # as long with one each); else it resumes, in a cancelled scope.
            host.end_parked(self)
        elif self.scope is not None:
            self.scope.cancel()
        # else its task has yet to resume it, in a scope cancelled from the start (drive()).

    def restart(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """End this run as cancel() does, and begin a new one with ``args`` and ``kwargs``."""
        self.restart_with = (args, kwargs)
        self.cancel()

    def pause(self) -> None:
        position = self.position
        position.paused = True
        if self.state is WAITING:
            # Paused at once; a body or a retry in progress finishes first.
            self.enter(_S.PAUSED)
            position.next_deadline = position.next_target = None
        self.wake()

    def resume(self) -> None:
        self.position.paused = False
        if self.state is _S.PAUSED:
            self.enter(WAITING)
        self.wake()

    def apply(self, options: LoopOptions) -> None:
        """Follow the loop's new options (the record has them already): a new schedule is
        planned anew, from the change."""
        position = self.position
        position.change(options)  # which wakes a sleeping task itself
        if position.replan and self.parked is not None:
            self.unpark()

    def wake(self) -> None:
        """End the wait for the next slot early, for the run to look at its flags again."""
        wake = self.position.wake
        if wake is not None:
            wake()
        elif self.parked is not None:
            self.unpark()

    def unpark(self) -> None:
        """Take the parked run out of its host's timers, and resume it now."""
        host = self.host
        assert host is not None
        host.unpark(self)

    # -- driving a run ------------------------------------------------------------------

    async def drive(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        task_status: TaskStatus[None],
        daemon: bool = False,
        resumed: float | None = None,
    ) -> None:
        """Run the loop, and run it again after each restart(), until it ends.

        Each run goes from before_loop to after_loop. An unhandled exception is raised after
        after_loop, even if a cancellation cut the error hook short, unless a restart() was
        asked for meanwhile (the error hook's way of recovering); but not by a ``daemon`` (a
        loop in a host, :meth:`drive_daemon`), which has nobody to raise it to.

        A daemon may *park* between two iterations: its task ends, and the run waits in its
        host's timers for the slot due at ``due``; the host then calls ``drive()`` again in a
        new task, with ``resumed=due``, which goes on from the end of that wait.
        """
        if resumed is None or self.own_task is None:  # a host may have set it (spawner)
            self.own_task = backend.current_task_object()
        # Whether a run has got through before_loop: task_group.start() returns then, even if
        # a restart cut short the first runs' before_loop.
        started = resumed is not None
        # Whether the run has parked in its host: this task ends, and the run goes on.
        parked: bool | None = False
        try:
            # The runs are written out here rather than in a method per run: each coroutine
            # level costs every checkpoint of the body (about 20 ns on uvloop, 2 % of an
            # iteration; benchmarks/history/2026-11-30-issue8-closing-pass.md).
            while True:
                if resumed is None:
                    self._begin_run()
                else:
                    host = self.host
                    assert host is not None
                    self.scope = host.new_scope()
                    if self.state is _S.CANCELLING:
                        self.scope.cancel()  # cancel() came while the run was parked
                scope = self.scope
                assert scope is not None
                try:
                    with scope:
                        try:
                            try:
                                # A loop cancelled before its task got to run ends here,
                                # before before_loop, and not after its body has begun.
                                if resumed is not None:
                                    await self.position.bound().checkpoint_if_cancelled()
                                    parked = await self._iterate(args, kwargs, resumed)
                                else:
                                    await anyio.lowlevel.checkpoint_if_cancelled()
                                    await self._call_hook(self.record.hooks.before_loop)
                                    if not started:
                                        task_status.started()
                                        started = True
                                    if self.record.options.exclusive is None:
                                        parked = await self._iterate(args, kwargs)
                                    else:
                                        await self._iterate_exclusively(args, kwargs)
                            except backend.cancelled_exc_class() as exc:
                                if cancellation_requested(when_unknown=False):
                                    self.cancelled = True  # _end_run() need not ask again
                                elif not cancellation_requested(when_unknown=True):
                                    raise self._stray_cancellation() from exc
                                self.enter(_S.CANCELLING)
                                raise
                        except Exception as exc:
                            self.record.failed = True
                            self.failure = exc
                            self.enter(_S.FAILING)
                            await self._report_failure(exc)
                        except BaseException as exc:
                            if fails_the_run(exc):
                                # No cancellation, KeyboardInterrupt or SystemExit: the run
                                # fails with it (without the error hook, whose parameter is an
                                # Exception), and it goes on up.
                                self.record.failed = True
                                self.failure = exc
                            raise
                        finally:
                            if not parked:
                                await self._end_run()
                except backend.cancelled_exc_class():
                    # Cancelled by an enclosing scope or Task.cancel() (the loop's own scope
                    # catches its own): an unhandled error still wins over the cancellation.
                    if self.failure is not None:
                        _reraise(self.failure)
                    raise
                if parked:
                    return
                if self.restart_with is None:
                    if self.failure is not None:
                        raise self.failure  # noqa: TRY301 (a daemon swallows it below)
                    break
                args, kwargs = self.restart_with
                self.restart_with = resumed = None
                self.scope = anyio.CancelScope()
                self.enter(_S.STARTING)
                # A new run starts unpaused and not stopping.
                self.position.paused = self.position.stopping = False
                self.record.failed = False
            if not started:
                # Stopped or cancelled during before_loop: task_group.start() must
                # still return rather than complain that the loop never started.
                task_status.started()
        except Exception as exc:
            if not daemon:
                raise
            if exc is not self.failure:
                # A hook's own exception, not the body's (which went to the error
                # hook already): report it, since a daemon has nobody to raise to.
                logger.exception("Exception in a hook of loop %r", self.loop.name, exc_info=exc)
        finally:
            if not parked:
                self.finish()

    def _begin_run(self) -> None:
        """Reset what one run counts, and report its start."""
        self.current_loop = 0
        self.errors = 0
        self.cancelled = False
        self.exclusive = None
        self.failure = None
        self.position.reset()
        if events.listening:
            events.emit(events.LoopStarted(self.loop), self.record.listeners)

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
        self.record.run = None
        if self.finished is not None:
            self.finished.set()

    def drive_daemon(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Coroutine[Any, Any, None]:
        """drive() as a daemon: what a host runs. drive()'s own coroutine, not one that
        awaits it: a coroutine level is memory for as long as the loop runs (248 B per idle
        loop, benchmarks/history/2026-12-07-idle-loops-profile.md) and a frame at every wake."""
        return self.drive(args, kwargs, anyio.TASK_STATUS_IGNORED, daemon=True)

    async def drive_task(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # Set here too: an eager task factory runs this before create_task() returns.
        task = self.task = backend.current_asyncio_task()
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
        if self.record.run is self:
            self.finish()

    async def _iterate_exclusively(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Iterate under the lease of an exclusive loop, with the keeper beside it."""
        lease = self.record.options.exclusive
        assert lease is not None
        from .exclusive import Exclusive  # not at import: most loops have no lease

        position = self.position
        position.start()  # the keeper draws its polls from the run's random source
        exclusive = self.exclusive = Exclusive(
            lease, self.loop.name, position.random, paused=lambda: position.paused
        )
        # Kept after the run, until the next: _outcome() reads whether the lease was lost.
        await exclusive.run(functools.partial(self._iterate, args, kwargs))

    # -- iterating: the hot path --------------------------------------------------------

    async def _iterate(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], resumed: float | None = None
    ) -> bool | None:
        """The run's iterations and waits, from its first slot (or, ``resumed``, from the end
        of a parked wait for the slot due then); True if the run parked in its host."""
        if self.state is STOPPING:
            return None
        # Bound to locals once: an attribute chain per iteration costs about 1 % of an empty
        # iteration on uvloop (benchmarks/history/2026-11-30-engine-restructure.md).
        record, position = self.record, self.position
        # The innermost scope around the waits: the run's own, but for a lease's keeper.
        position.wait_scope = self.scope if self.exclusive is None else None
        call: Body
        scheduled = position.start() if resumed is None else resumed
        if resumed is None:
            exclusive = self.exclusive
            if exclusive is not None and position.last_target is None:
                # The lease remembers the last slot that ran, before this run (a restart, a
                # deploy): the slots since then were missed, and overrun= and grace= decide
                # what runs of them, as for slots missed within a run.
                position.last_target = exclusive.last_recorded()
        # Unpacked, not kept: every local of this frame is memory for as long as the loop
        # runs (tracemalloc, W2).
        primitives = position.bound()
        current_time, checkpoint = primitives.current_time, primitives.checkpoint
        sleep_until = primitives.sleep_until
        options = record.options
        interval = options.interval
        if resumed is not None:
            # It parked after the iteration of the slot due at last_began, on an interval
            # (which change_interval() may have changed since, or replaced with a wall-clock
            # schedule).
            last = position.last_began
            assert self.call is not None
            assert isinstance(last, float)
            call = self.call
            if position.disturbed or options.plans_missed:
                waited = await self._woken(last, resumed, interval)
                if waited is None:
                    return None
                scheduled = waited
                options = record.options
                interval = options.interval
        else:
            if interval is None or position.paused:
                # A wall-clock schedule waits for its first time; an interval loop paused in
                # before_loop lets its first slot (``scheduled``) pass like any other.
                waited = await self._wait(scheduled if interval is None else scheduled - interval)
                if waited is None:
                    return None
                scheduled = waited
                options = record.options
                interval = options.interval
            # Bound once: the iterations do not thread the arguments through again.
            if kwargs or len(args) > 1:
                call = functools.partial(self.body, *args, **kwargs)
            elif args:
                # One argument (``start_soon(loop.run, item)``): a bound method calls
                # ``body(item)`` as fast and is 48 bytes, against 192 for a partial with its
                # tuple and dict, kept by every loop for as long as it runs.
                call = types.MethodType(self.body, args[0])
            else:
                call = self.body
            # Kept for the iterations after a park (a local otherwise).
            self.call = call
            self.backoff = None
        while True:
            if self.state is not RUNNING:
                if self.state is WAITING:
                    # Always allowed: enter() without its checks, once per wake.
                    self.state = RUNNING
                else:
                    self.enter(RUNNING)
            if interval is not None:
                position.last_began = scheduled
                position.next_deadline = position.next_slot = scheduled + interval
            else:
                position.last_began = position.last_target
                position.plan_next_wall_time()
            if options.plain and not events.listening:
                try:
                    await call()
                except Exception as exc:
                    failed: Exception | None = exc
                else:
                    failed = None
                if failed is not None:
                    # Outside the handler: a retry is no part of the failed attempt.
                    await self._retry_or_pass_over(call, failed)
            else:
                await self._observed_iteration(call, scheduled)
            self.current_loop += 1
            # Read again: the body may have changed them (count, the schedule).
            options = record.options
            if self.current_loop == options.count or self.state is STOPPING:
                return None
            interval = options.interval
            # disturbed: replan, paused or stopping (a run in STOPPING returned above; one
            # that a cancel() took out of it ends in the wait below), in one read.
            if interval is not None and not position.disturbed:
                due = scheduled + interval
                if interval == 0 and not options.plans_missed:
                    # Always behind, with no clock read: the slots of a zero interval are
                    # all `scheduled`, which has passed, and burst plans nothing. (The read
                    # is 4% of an empty iteration on uvloop, 5% on Trio: benchmarks, W1.)
                    now = due
                else:
                    # One clock read: on Trio it is a fifth of the cost of an empty iteration.
                    now = current_time()
                    if due <= now and options.plans_missed:
                        due = position.plan_missed(scheduled, interval, now)
                if due <= now:
                    # Behind schedule (or a zero interval): run again at once, but let
                    # other tasks and cancellation in first.
                    await checkpoint()
                    if not position.disturbed:
                        scheduled = due
                        continue
                    if self.state is STOPPING:
                        return None
                    # change_interval() or pause() since the iteration began.
                    waited = await self._wait(scheduled)
                elif not options.jitter:
                    # On schedule: the plain wait, here and not in the position's, so that an
                    # idle loop sleeps one coroutine level less deep, which costs memory for
                    # as long as it sleeps and CPU at every wake
                    # (benchmarks/history/2026-11-30-issue8-w2-pass.md).
                    if self.state is RUNNING:
                        self.state = WAITING  # always allowed, as above
                    else:
                        self.enter(WAITING)
                    position.next_deadline = position.next_slot = due
                    position.next_target = None
                    host = self.host
                    if host is not None and self.exclusive is None and host.park(self, due):
                        # The task ends; the host resumes the run in a new one (drive()).
                        position.wait_scope = self.scope = self.own_task = None
                        return True
                    await sleep_until(due, position)
                    if self.state is STOPPING:
                        return None
                    if not (position.disturbed or options.plans_missed):
                        scheduled = due
                        continue
                    waited = await self._woken(due - interval, due, interval)
                else:
                    # On schedule with jitter, or change_interval() or pause() since the
                    # iteration began.
                    waited = await self._wait(due - interval)
            else:
                # A wall-clock schedule, or change_interval() or pause() since the iteration
                # began.
                waited = await self._wait(scheduled)
            if waited is None:
                return None
            scheduled = waited
            options = record.options
            interval = options.interval

    async def _woken(self, scheduled: float, due: float, interval: float | None) -> float | None:
        """After the plain wait for the slot due at ``due`` (``interval`` after the one due
        at ``scheduled``) ended, on time, early or late: the due time of the slot to run now,
        or None if the run ends instead."""
        if self.state is STOPPING:
            return None
        position = self.position
        if position.replan or position.paused:
            return await self._wait(scheduled)
        if not self.record.options.plans_missed:
            return due
        assert interval is not None  # the schedule is the one it waited on (no replan)
        # Only policies that drop slots care whether the wake was late.
        late = position.plan_late_wake(due, due, interval)
        if late is None:
            return due
        if late > position.bound().current_time():
            # Dropped up to a slot still to come: wait for it.
            return await self._wait(late - interval)
        return late

    async def _wait(self, scheduled: float) -> float | None:
        """The slow path's wait for the next slot (see SchedulePosition.wait_next), and, for an
        exclusive loop, the lease's claim of it; None if the run ends instead."""
        position = self.position
        self.enter(_S.PAUSED if position.paused else WAITING)
        while True:
            due = await position.wait_next(scheduled)
            exclusive = self.exclusive
            if due is None or exclusive is None:
                return due
            # An exclusive loop runs only the slots that its lease lets it claim.
            assert position.last_target is not None
            if await exclusive.claim(position.last_target.astimezone(_UTC)):
                return due
            if self.state is STOPPING:
                return None
            scheduled = due

    # -- attempts: an iteration that is more than `await body()` --------------------------

    async def _observed_iteration(self, call: Body, scheduled: float) -> None:
        """One iteration with a timeout, a lease or listeners: the hot path's slower twin.

        Its events go to the listeners (the loop's own, then the global ones) that there were
        as it began, and to no others: each listener hears of an iteration whole or not at
        all. One removed meanwhile still hears how the iteration ended, so that what it
        opened for the iteration (a span) is closed.
        """
        listeners = events.listeners_of(self.record.listeners) if events.listening else ()
        if listeners:
            self._report_start(scheduled, listeners)
        try:
            exclusive = self.exclusive
            if exclusive is None:
                skipped = await self._attempts(call, listeners)
                outcome: IterationOutcome = "success" if skipped is None else "timeout"
            else:
                slot = self.position.last_target
                assert slot is not None
                with exclusive.guard(slot.astimezone(_UTC)) as scope:
                    skipped = await self._attempts(call, listeners)
                    outcome = "success" if skipped is None else "timeout"
                if scope.cancelled_caught:
                    logger.warning(
                        "Loop %r lost its lease during an iteration, which was cancelled",
                        self.loop.name,
                    )
                    outcome, skipped = "lease_lost", None
        except Exception as exc:
            if listeners:
                self._report_end(listeners, "error", exc)
            if self.record.options.on_error == "raise":
                raise
            unhandled: Exception | None = exc
        except BaseException as exc:
            if listeners:
                if fails_the_run(exc):  # pytest.fail()'s, say: the run fails with it
                    self._report_end(listeners, "error", exc)
                else:
                    self._report_end(listeners, "cancelled")
            raise
        else:
            unhandled = None
            if listeners:
                self._report_end(listeners, outcome, skipped)
        if unhandled is not None:
            # Outside the handler: the error hook is no part of the failed iteration.
            await self._pass_over(unhandled)

    async def _retry_or_pass_over(self, call: Body, exc: Exception) -> None:
        """The hot path's failed attempt: retried; if the error is unhandled, it ends the run,
        or, with ``on_error="continue"``, it is reported and the loop goes on."""
        try:
            await self._retry(call, exc)
        except Exception as unhandled:
            if self.record.options.on_error == "raise":
                raise
            failed = unhandled
        else:
            return
        await self._pass_over(failed)

    async def _pass_over(self, exc: Exception) -> None:
        """Report an iteration's unhandled ``exc`` and go on (``on_error="continue"``)."""
        self.errors += 1
        await self._report_failure(exc, passed_over=True)

    async def _attempts(self, call: Body, listeners: Listeners) -> IterationTimeout | None:
        """The attempts of one iteration, with their retries: None if one succeeded, else the
        timeout that was skipped (see :meth:`_attempt`)."""
        try:
            return await self._attempt(call, listeners)
        except Exception as exc:
            failed = exc
        # Outside the handler: a retry is no part of the failed attempt.
        return await self._retry(call, failed, listeners)

    async def _attempt(self, call: Body, listeners: Listeners) -> IterationTimeout | None:
        """Call the body once, under ``timeout`` if any: None if it returned, or the
        :class:`IterationTimeout` of a timeout that is skipped (``on_timeout="skip"``).

        :raises IterationTimeout: for a timeout that is an error or retried.
        """
        options = self.record.options
        timeout = options.timeout
        if timeout is None:
            await call()
            return None
        # What the deadline raised in the body, kept as the cause of the IterationTimeout: its
        # traceback shows where the body was when the time ran out.
        cut: BaseException | None = None
        with anyio.CancelScope(deadline=anyio.current_time() + timeout) as scope:
            try:
                await call()
            except BaseException as exc:
                cut = exc
                raise
        if not scope.cancel_called:
            return None
        action, name = options.on_timeout, self.loop.name
        message = f"an iteration of loop {name!r} ran past its timeout of {timeout} s"
        if not scope.cancelled_caught:
            # The deadline passed, but the body went on to its end: something in it did not
            # let the cancellation in (a thread awaited with anyio.to_thread.run_sync, which
            # waits for its thread, or a body that swallowed the cancellation).
            message += ", and could not be cut short (it awaited something that cannot be"
            message += " cancelled, such as a thread)"
        error = IterationTimeout(message)
        error.__cause__ = cut
        if listeners:
            event = events.IterationTimedOut(self.loop, self.current_loop, timeout, action)
            events.deliver(event, listeners)
        if action == "skip":
            logger.warning(
                "Iteration of loop %r timed out after %s seconds; skipped", name, timeout
            )
            self.position.note_skipped(1, "timeout", report=False)
            if listeners:
                events.deliver(events.IterationSkipped(self.loop, "timeout", 1), listeners)
            return error  # what the iteration's end reports
        raise error

    async def _retry(
        self, call: Body, exc: Exception, listeners: Listeners = ()
    ) -> IterationTimeout | None:
        """Retry the iteration whose attempt raised ``exc``, with backoff, until an attempt
        succeeds or times out, skipped (return what :meth:`_attempt` did), or raises an
        unhandled exception.

        Not interruptible by stop(): the retries belong to the iteration.
        """
        retries = 0
        while True:
            retries += 1
            delay = self._retry_delay(exc, retries, listeners)
            if delay is None:
                raise exc
            self.enter(_S.BACKING_OFF)
            await anyio.sleep(delay)
            self.enter(RUNNING)
            try:
                return await self._attempt(call, listeners)
            except Exception as again:
                exc = again

    def _retry_delay(self, exc: Exception, retries: int, listeners: Listeners) -> float | None:
        """The delay before retry number ``retries`` after ``exc``; None if it is unhandled."""
        options = self.record.options
        if isinstance(exc, IterationTimeout):
            handled = options.on_timeout == "retry"
        else:
            handled = options.reconnect and is_handled(exc, self.record.hooks.handled)
        if not handled or (options.max_retries is not None and retries > options.max_retries):
            return None
        backoff = self.backoff
        if backoff is None:
            # Made once per run, at the first retry: discord.py's resets itself after a
            # quiet spell, so it is kept across iterations.
            from .retry import new_backoff

            primitives = self.position.primitives
            assert primitives is not None
            backoff = self.backoff = new_backoff(options.backoff, primitives.current_time)
        delay = backoff.delay()
        if type(delay) is not float or not 0.0 <= delay < _INF:
            # Not a float in range, as the default backoff's delays are: checked, before it is
            # logged or reported (an int passes; a forgotten return, None, fails the run).
            from .retry import check_delay

            delay = check_delay(delay, backoff, exc)
        name = self.loop.name
        logger.warning(
            "Handled exception in loop %r; retrying in %.2f seconds", name, delay, exc_info=exc
        )
        if listeners:
            event = events.IterationRetrying(self.loop, self.current_loop, retries, delay, exc)
            events.deliver(event, listeners)
        return delay

    def _report_start(self, scheduled: float, listeners: Listeners) -> None:
        """Tell ``listeners`` that the iteration due at ``scheduled`` begins."""
        position = self.position
        now = self.iteration_started = anyio.current_time()
        if self.record.options.wall_schedule is None:
            slot = position.utc(scheduled)
            lateness = now - scheduled
        else:
            began = position.last_began_utc()
            assert began is not None
            slot = began
            lateness = (backend.wall_now() - slot).total_seconds()
        event = events.IterationStarted(self.loop, self.current_loop, slot, lateness)
        events.deliver(event, listeners)

    def _report_end(
        self, listeners: Listeners, outcome: IterationOutcome, exc: BaseException | None = None
    ) -> None:
        # Set as the same listeners heard the iteration begin.
        started = self.iteration_started
        assert started is not None
        duration = anyio.current_time() - started
        event = events.IterationFinished(self.loop, self.current_loop, outcome, duration, exc)
        events.deliver(event, listeners)

    # -- ending -------------------------------------------------------------------------

    async def _end_run(self) -> None:
        if not self.cancelled and cancellation_requested(when_unknown=False):
            self.cancelled = True
        end = self._close()
        try:
            if self.record.hooks.after_loop is not None:
                await self._finish_with_hook(end)
        finally:
            self._closed(end)

    def end_in_place(self) -> None:
        """End a cancelled run that waits for its host, with no task: what drive() does for a
        run with no after_loop and no restart to begin."""
        self.context = None
        try:
            self._closed(self._close())
        finally:
            self.finish()

    def _close(self) -> LoopEnd:
        """How the run ended, recorded as it goes to FINISHING."""
        position = self.position
        position.next_deadline = None
        position.next_target = None
        end = self.end = self._outcome()
        self.record.last_end = end
        self.enter(_S.FINISHING)
        return end

    def _closed(self, end: LoopEnd) -> None:
        """After after_loop, if any: report the end."""
        self.cancelled = False
        if events.listening:
            events.emit(events.LoopEnded(self.loop, end), self.record.listeners)

    def _outcome(self) -> LoopEnd:
        """How the run that is ending ended."""
        position = self.position
        if self.restart_with is not None:
            reason = EndReason.RESTARTED
        elif self.failure is not None:
            reason = EndReason.FAILED
        elif self.cancelled:
            reason = EndReason.CANCELLED
        elif self.current_loop == self.record.options.count or position.exhausted:
            reason = EndReason.COMPLETED
        elif self.state is STOPPING:
            reason = EndReason.STOPPED
        else:
            # Neither its count nor its schedule ended it: a KeyboardInterrupt or SystemExit
            # went through the loop.
            reason = EndReason.CANCELLED
        exclusive = self.exclusive
        lease_lost = exclusive is not None and exclusive.lost
        slot = position.last_began_utc()
        return LoopEnd(reason, self.failure, self.current_loop, slot, lease_lost, self.errors)

    async def _finish_with_hook(self, end: LoopEnd) -> None:
        try:
            # Only a hook needs the shield; an empty scope per loop made cancelling
            # 10 000 idle loops on Trio half as slow again.
            await call_shielded(
                functools.partial(self._after_hook, end), f"after_loop of loop {self.loop.name!r}"
            )
        except Exception as exc:
            if self.failure is None:
                raise
            # The body's error stays the one that ends the run.
            logger.error(  # noqa: TRY400  (not the exception being handled)
                "Exception in after_loop of loop %r, which had failed already",
                self.loop.name,
                exc_info=exc,
            )

    async def _after_hook(self, end: LoopEnd) -> None:
        # On asyncio this is a task of its own, which join() must know as the loop's.
        driving, self.own_task = self.own_task, backend.current_task_object()
        hooks = self.record.hooks
        try:
            if hooks.takes_end(self.instance is not None):
                await self._call_hook(hooks.after_loop, end)
            else:
                await self._call_hook(hooks.after_loop)
        finally:
            self.own_task = driving

    async def _call_hook(self, hook: Callable[..., Awaitable[Any]] | None, *args: Any) -> None:
        if hook is None:
            return
        instance = self.instance
        if instance is not None:
            await hook(instance, *args)
        else:
            await hook(*args)

    async def _report_failure(self, exc: Exception, *, passed_over: bool = False) -> None:
        error, instance = self.record.hooks.error, self.instance
        if error is None:
            if passed_over:
                logger.error(
                    "Unhandled exception in an iteration of loop %r, which goes on "
                    "(on_error='continue')",
                    self.loop.name,
                    exc_info=exc,
                )
            else:
                logger.error("Unhandled exception in loop %r", self.loop.name, exc_info=exc)
        elif instance is not None:
            await error(instance, exc)
        else:
            await error(exc)
