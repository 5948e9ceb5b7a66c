"""When a running loop iterates: the iteration loop, the waits, missed slots, jitter and pauses.

:class:`Cadence` is the part of a :class:`~anytasks._runner.Runner` that follows the schedule.
Interval loops keep to a grid on the event loop's monotonic clock (each iteration's due time is
the previous one's plus the interval, so nothing drifts); wall-clock schedules are waited for by
its base, :class:`~anytasks._wall_clock.WallClockWaits`. What happens to slots that were missed
is decided by the pure functions of ``_missed``.
"""

# Part of the Runner, split out so each file answers one question; it reads the Loop's
# underscored fields by design.
# pyright: reportPrivateUsage=false

from __future__ import annotations

import datetime
import functools
import logging
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _backend, _events
from ._attempts import Body
from ._options import LoopOptions
from ._state import RUNNING, STOPPING, WAITING, LoopState
from ._wall_clock import WallClockWaits

if TYPE_CHECKING:
    from ._exclusive import Exclusive
    from ._loop import Loop
    from ._outcome import SkipReason

logger = logging.getLogger("anytasks")

_S = LoopState

_PAUSE_STEP = 3600.0
_ONE_MICROSECOND = datetime.timedelta(microseconds=1)
_UTC = datetime.timezone.utc


class Cadence(WallClockWaits):
    """The iterations of one run, on its schedule (a base of :class:`Runner`)."""

    __slots__ = (
        "count",
        "current_loop",
        "exclusive",
        "exhausted",
        "interval",
        "jitter",
        "last_began",
        "next_deadline",
        "next_slot",
        "paused",
        "plain",
        "plans_missed",
        "primitives",
        "random",
        "replan",
        "skipped",
        "state",
        "wake",
        "wall_offset",
    )

    # The Runner's, read here.
    loop: Loop[Any, Any]
    options: LoopOptions
    # This part's own (the slots above).
    state: LoopState
    interval: float | None
    count: int | None
    jitter: float
    random: Callable[[], float]
    current_loop: int
    skipped: int
    paused: bool
    replan: bool
    wake: Callable[[], None] | None
    primitives: _backend.Primitives | None
    next_deadline: float | None
    # The grid's time of the next iteration (next_deadline is that plus any jitter).
    next_slot: float | None
    wall_offset: float
    # The slot of the iteration that began last: monotonic for an interval, else wall-clock.
    last_began: float | datetime.datetime | None
    # Neither a timeout nor a lease: the iterations take the short path (unless listened to).
    plain: bool
    # options.plans_missed, kept: read at every iteration that is behind.
    plans_missed: bool
    # The lease side of an exclusive loop's run.
    exclusive: Exclusive | None
    # Whether the schedule has run out of times.
    exhausted: bool

    def note_skipped(self, count: int, reason: SkipReason, *, report: bool = True) -> None:
        """Count ``count`` slots as skipped (the runner reports them too, unless not
        ``report``)."""
        self.skipped += count

    async def _iterate(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self.state is STOPPING:
            return
        primitives = self.primitives = _backend.bind_primitives()
        current_time, checkpoint = primitives.current_time, primitives.checkpoint
        sleep_until = primitives.sleep_until
        scheduled = current_time()
        self.wall_offset = _backend.wall_now().timestamp() - scheduled
        if self.interval is None or self.paused:
            # A wall-clock schedule waits for its first time; an interval loop paused in
            # before_loop lets its first slot (``scheduled``) pass like any other.
            waited = await self._wait_for_next(
                scheduled if self.interval is None else scheduled - self.interval
            )
            if waited is None:
                return
            scheduled = waited
        body = self.loop._body
        # Bound once: the iterations do not thread the arguments through again.
        call: Body
        if kwargs or len(args) > 1:
            call = functools.partial(body, *args, **kwargs)
        elif args:
            # One argument (``start_soon(loop.run, item)``): a bound method calls
            # ``body(item)`` as fast and is 48 bytes, against 192 for a partial with its
            # tuple and dict, kept by every loop for as long as it runs.
            call = types.MethodType(body, args[0])
        else:
            call = body
        self.backoff = None
        while True:
            if self.state is not RUNNING:
                if self.state is WAITING:
                    # Always allowed: enter() without its checks, once per wake.
                    self.state = RUNNING
                else:
                    self.enter(RUNNING)
            interval = self.interval
            if interval is not None:
                self.last_began = scheduled
                self.next_deadline = self.next_slot = scheduled + interval
            else:
                self.last_began = self.last_target
                self._plan_next_wall_time()
            if self.plain and not _events.listening:
                try:
                    await call()
                except Exception as exc:
                    failed: Exception | None = exc
                else:
                    failed = None
                if failed is not None:
                    # Outside the handler: a retry is no part of the failed attempt.
                    await self._retry(call, failed)
            else:
                await self._observed_iteration(call, scheduled)
            self.current_loop += 1
            if self.current_loop == self.count or self.state is STOPPING:
                return
            interval = self.interval
            if interval is not None and not (self.replan or self.paused):
                due = scheduled + interval
                if interval == 0 and not self.plans_missed:
                    # Always behind, with no clock read: the slots of a zero interval are
                    # all `scheduled`, which has passed, and burst plans nothing. (The read
                    # is 4% of an empty iteration on uvloop, 5% on Trio: benchmarks, W1.)
                    now = due
                else:
                    # One clock read: on Trio it is a fifth of the cost of an empty iteration.
                    now = current_time()
                    if due <= now and self.plans_missed:
                        due = self._plan_missed(scheduled, interval, now)
                if due <= now:
                    # Behind schedule (or a zero interval): run again at once, but let
                    # other tasks and cancellation in first.
                    await checkpoint()
                    if self.state is STOPPING:
                        return
                    if not (self.replan or self.paused):
                        scheduled = due
                        continue
                elif not self.jitter:
                    # On schedule: the plain wait, here and not in _wait_for_next, so that an
                    # idle loop sleeps one coroutine level less deep, which costs memory for
                    # as long as it sleeps and CPU at every wake
                    # (benchmarks/history/2026-11-30-issue8-w2-pass.md).
                    if self.state is RUNNING:
                        self.state = WAITING  # always allowed, as above
                    else:
                        self.enter(WAITING)
                    self.next_deadline = self.next_slot = due
                    self.next_target = None
                    await sleep_until(due, self)
                    if self.state is STOPPING:
                        return
                    if not (self.replan or self.paused):
                        if self.plans_missed:
                            # Only policies that drop slots care whether the wake was late.
                            late = self._plan_late_wake(due, due, interval)
                            if late is not None:
                                due = late
                                if due > current_time():
                                    scheduled = due - interval
                                    waited = await self._wait_for_next(scheduled)
                                    if waited is None:
                                        return
                                    due = waited
                        scheduled = due
                        continue
                    scheduled = due - interval
                else:
                    scheduled = due - interval
            # On schedule, or change_interval() or pause() since the iteration began.
            waited = await self._wait_for_next(scheduled)
            if waited is None:
                return
            scheduled = waited

    def _plan_missed(self, scheduled: float, interval: float, now: float) -> float:
        """The due time of the slot to run after the one due at ``scheduled``, now behind."""
        from ._schedules.missed import plan_interval  # not at import: only loops that fall behind

        options = self.options
        plan = plan_interval(scheduled, interval, 0, now, options.overrun_policy, options.grace)
        self.note_skipped(plan.skipped, "missed")
        return plan.due

    def _plan_late_wake(self, due: float, start: float, interval: float) -> float | None:
        """After a wait for ``due`` (to start at ``start``) ended: None if it ended on time,
        else the due time of the slot that the policy runs instead (perhaps still to come)."""
        from ._schedules.missed import interval_wake_is_late, plan_interval

        primitives = self.primitives
        assert primitives is not None
        now = primitives.current_time()
        options = self.options
        if not interval_wake_is_late(due, start, interval, now, options.grace):
            return None
        plan = plan_interval(
            due - interval, interval, 0, now, options.overrun_policy, options.grace
        )
        self.note_skipped(plan.skipped, "missed")
        return plan.due

    async def _wait_for_next(self, scheduled: float) -> float | None:
        """Wait for the next iteration; return its due time, or None if the run ends.

        ``scheduled`` is the monotonic due time of the last iteration (or the start of the
        wait, before the first iteration of a wall-clock loop). Plans again whenever
        change_interval() or resume() interrupts the wait.
        """
        primitives = self.primitives
        assert primitives is not None
        while True:
            if self.paused:
                resumed = await self._wait_paused(scheduled, primitives)
                if resumed is None:
                    self.exhausted = True  # the schedule ended while the loop was paused
                    return None
                scheduled = resumed
                if self.state is STOPPING:
                    return None
                continue
            replanned = self.replan
            self.replan = False
            self.enter(WAITING)
            interval = self.interval
            if interval is not None:
                due = scheduled + interval
                if replanned:
                    # After change_interval() the new interval counts from the last
                    # iteration's due time, with at most one run at once: not a burst of
                    # every slot of the new grid since then.
                    due = max(due, primitives.current_time())
                start = due
                if self.jitter:
                    from ._schedules.missed import jittered

                    start = jittered(due, due + interval, self.jitter, self.random)
                self.next_deadline, self.next_slot = start, due
                self.next_target = None
                await primitives.sleep_until(start, self)
                if self.plans_missed and not (self.replan or self.paused):
                    late = self._plan_late_wake(due, start, interval)
                    if late is not None and late > primitives.current_time():
                        scheduled = late - interval  # dropped up to a slot still to come
                        continue
                    if late is not None:
                        due = late
            else:
                schedule = self.options.wall_schedule
                assert schedule is not None
                if not await self._sleep_until_wall_time(schedule, primitives):
                    self.exhausted = True  # the schedule has no more times
                    return None
                due = primitives.current_time()
            if self.state is STOPPING:
                return None
            if not (self.replan or self.paused):
                exclusive = self.exclusive
                if exclusive is None:
                    return due
                # An exclusive loop runs only the slots that its lease lets it claim.
                assert self.last_target is not None
                if await exclusive.claim(self.last_target.astimezone(_UTC)):
                    return due
                if self.state is STOPPING:
                    return None

    async def _wait_paused(
        self, scheduled: float, primitives: _backend.Primitives
    ) -> float | None:
        """Wait while paused; count the slots that came due meanwhile; return the last one, or
        None if the schedule has ended meanwhile.

        The loop goes on on the same grid: the next iteration is the first slot after the
        resume.
        """
        self.enter(_S.PAUSED)
        self.next_deadline = None
        self.next_target = None
        while self.paused and self.state is not STOPPING:
            # In long steps rather than forever: a virtual clock jumps to the next timer.
            await primitives.sleep_until(primitives.current_time() + _PAUSE_STEP, self)
        interval = self.interval
        if interval is not None:
            if interval > 0:
                missed = int((primitives.current_time() - scheduled) // interval)
                self.note_skipped(missed, "paused")
                scheduled += missed * interval
            return scheduled
        schedule = self.options.wall_schedule
        assert schedule is not None
        # Every slot that came due while paused is skipped; the next one runs.
        from ._schedules.missed import plan_wall

        plan = plan_wall(schedule, self.last_target, _backend.wall_now(), "skip", None)
        self.note_skipped(plan.skipped, "paused")
        if plan.slot is None:
            return None
        self.last_target = plan.slot - _ONE_MICROSECOND
        return scheduled
