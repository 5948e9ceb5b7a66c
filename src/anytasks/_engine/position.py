"""Where a run, or a ``ticks()`` iterator, stands on its schedule; and its waits for the next slot.

A :class:`SchedulePosition` keeps what the last slot was, when the next one is due, how many slots
were skipped and whether the schedule has run out, and does the waiting: on the event loop's
monotonic clock for an interval (each slot is the previous one's due time plus the interval, so
nothing drifts), on the wall clock for a wall-clock schedule (in steps of at most a minute, so that
a changed clock or a suspended machine is noticed). What happens to slots that were missed is
decided by the pure functions of :mod:`anytasks._schedules.missed`; this object only does what they
say, and the awaits.

The position knows nothing of hooks, bodies or states: the run that owns it (or a ``Ticks``) sets
the flags that end a wait early (``stopping``, ``paused``, ``replan``), through ``wake``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import backend, events

if TYPE_CHECKING:
    from .._outcome import SkipReason
    from .._schedules.protocol import Schedule
    from .events import AnyLoop, ListenerSource
    from .options import LoopOptions

#: How long a paused wait sleeps at a time: a virtual clock jumps to the next timer, so "for
#: ever" would be a jump to the end of time.
PAUSE_STEP = 3600.0
#: Wall-clock waits read the wall clock again this often, so that a clock change or a suspended
#: machine delays a run by at most this much.
WALL_CLOCK_RECHECK = 60.0

_ONE_MICROSECOND = datetime.timedelta(microseconds=1)
_UTC = datetime.timezone.utc
_MAX_UTC = datetime.datetime.max.replace(tzinfo=_UTC)


def _no_draws() -> float:  # pragma: no cover (only loops with jitter or a lease draw)
    raise AssertionError("this loop has neither jitter nor a lease to draw for")


class SchedulePosition:
    """One run's (or one ``ticks()`` iterator's) place on its schedule, and its waits."""

    __slots__ = (
        "_paused",
        "_replan",
        "_stopping",
        "disturbed",
        "exhausted",
        "last_began",
        "last_target",
        "next_deadline",
        "next_slot",
        "next_target",
        "options",
        "primitives",
        "random",
        "record",
        "reported_as",
        "skipped",
        "wait_scope",
        "wake",
        "wall_offset",
    )

    def __init__(
        self,
        options: LoopOptions,
        reported_as: AnyLoop | None = None,
        record: ListenerSource | None = None,
    ) -> None:
        # The settings followed: the loop's current ones (the run replaces them on a change).
        self.options = options
        # The loop whose skips this position reports, and where its listeners are; None for a
        # ticks() iterator. (Not a callback into the run: a bound method is an object per run,
        # and a cycle that would outlive the run until the garbage collector ran.)
        self.reported_as = reported_as
        self.record = record
        # The flags behind the properties below, and whether any of them is set.
        self._stopping = self._paused = self._replan = False
        self.disturbed = False
        # The backend's clock, checkpoint and sleep, bound when the run starts (start()).
        self.primitives: backend.Primitives | None = None
        # Wall-clock timestamp minus monotonic time, to show monotonic times as datetimes.
        self.wall_offset = 0.0
        # Where jitter draws from; looked up in start(), for the loops that draw only.
        self.random: Callable[[], float] = _no_draws
        # The innermost cancel scope of the waiting task, if known (backend.Wakeable).
        self.wait_scope: Any = None
        # While a wait sleeps: the function that ends it early (set by backend's sleeps).
        self.wake: Callable[[], None] | None = None
        self.reset()

    # stop(), pause() and a change of schedule each set a flag that sends a run off its plain
    # path. Their setters keep ``disturbed`` (any of them set) up to date, so that a run's hot
    # path reads one attribute where it read three (1-3 % of an empty iteration: W1, in
    # benchmarks/history/2026-12-07-issue19-host-timers.md).

    @property
    def stopping(self) -> bool:
        """Whether stop() has ended the run (the waits return at once); cleared by the run for
        a new run."""
        return self._stopping

    @stopping.setter
    def stopping(self, value: bool) -> None:
        self._stopping = value
        self.disturbed = value or self._paused or self._replan

    @property
    def paused(self) -> bool:
        """Whether pause() holds the run; cleared by the run for a new run."""
        return self._paused

    @paused.setter
    def paused(self, value: bool) -> None:
        self._paused = value
        self.disturbed = value or self._stopping or self._replan

    @property
    def replan(self) -> bool:
        """Whether the schedule changed since the wait began: it is planned anew."""
        return self._replan

    @replan.setter
    def replan(self, value: bool) -> None:
        self._replan = value
        self.disturbed = value or self._stopping or self._paused

    def reset(self) -> None:
        """Forget the previous run's place: a new run starts from its first slot."""
        # How many slots this run skipped, and whether its schedule has run out.
        self.skipped = 0
        self.exhausted = False
        # The slot of the iteration that began last: monotonic for an interval, else a
        # wall-clock time; and the wall-clock slot that ran (or was dropped) last.
        self.last_began: float | datetime.datetime | None = None
        self.last_target: datetime.datetime | None = None
        # When the next iteration is due: a monotonic deadline for an interval (jitter
        # included), the grid's time of it, or a wall-clock time for a wall-clock schedule.
        self.next_deadline: float | None = None
        self.next_slot: float | None = None
        self.next_target: datetime.datetime | None = None

    def start(self) -> float:
        """Bind the backend of the calling task, for this run; return its clock's time."""
        primitives = self.primitives = backend.bind_primitives()
        now = primitives.current_time()
        self.wall_offset = backend.wall_now().timestamp() - now
        self._bind_random()
        return now

    def bound(self) -> backend.Primitives:
        """The primitives bound by start()."""
        primitives = self.primitives
        assert primitives is not None
        return primitives

    def _bind_random(self) -> None:
        options = self.options
        if options.random is not None:
            self.random = options.random
        elif options.jitter or options.exclusive is not None:
            # A backend lookup: only for the loops that draw (made at every start otherwise).
            self.random = backend.default_random()

    def change(self, options: LoopOptions) -> None:
        """Follow ``options`` from now on; a new schedule is planned anew, from the change."""
        schedule_changed = options.schedule is not self.options.schedule
        self.options = options
        if self.primitives is not None:
            self._bind_random()
        if schedule_changed:
            self.replan = True
            if options.wall_schedule is not None:
                # A new wall-clock schedule plans from the change: its times that passed before
                # are not missed slots (the old schedule's last slot says nothing about them).
                self.last_target = backend.wall_now() - _ONE_MICROSECOND
            if self.wake is not None:
                self.wake()

    # -- reading --------------------------------------------------------------------------

    def utc(self, moment: float) -> datetime.datetime:
        """The aware UTC datetime of ``moment`` on the event loop's clock (``datetime.max``
        past the year 9999, as for ``seconds=1e12``)."""
        try:
            return datetime.datetime.fromtimestamp(self.wall_offset + moment, _UTC)
        except (OverflowError, ValueError, OSError):
            return _MAX_UTC

    def next_due(self) -> datetime.datetime | None:
        """When the next iteration is due (jitter included), if it is known."""
        if self.options.wall_schedule is not None:
            return self.next_target
        # Read once: metrics collectors call this from other threads (an HTTP server's).
        deadline = self.next_deadline
        return None if deadline is None else self.utc(deadline)

    def next_grid_slot(self) -> datetime.datetime | None:
        """The grid's time of the next interval iteration (before jitter), if known."""
        slot = self.next_slot
        return None if slot is None else self.utc(slot)

    def last_began_utc(self) -> datetime.datetime | None:
        """The slot of the iteration that began last, as an aware UTC datetime."""
        began = self.last_began
        if isinstance(began, datetime.datetime):
            return began.astimezone(_UTC)
        return None if began is None else self.utc(began)

    # -- skipping -------------------------------------------------------------------------

    def note_skipped(self, count: int, reason: SkipReason, *, report: bool = True) -> None:
        """Count ``count`` slots as skipped, and report them unless not ``report``."""
        if count:
            self.skipped += count
            loop, record = self.reported_as, self.record
            if report and events.listening and loop is not None and record is not None:
                events.emit(events.IterationSkipped(loop, reason, count), record.listeners)

    def plan_missed(self, scheduled: float, interval: float, now: float) -> float:
        """The due time of the slot to run after the one due at ``scheduled``, now behind."""
        from .._schedules.missed import plan_interval  # not at import: loops that fall behind

        options = self.options
        plan = plan_interval(scheduled, interval, 0, now, options.overrun_policy, options.grace)
        self.note_skipped(plan.skipped, "missed")
        return plan.due

    def plan_late_wake(self, due: float, start: float, interval: float) -> float | None:
        """After a wait for ``due`` (to start at ``start``) ended: None if it ended on time,
        else the due time of the slot that the policy runs instead (perhaps still to come)."""
        from .._schedules.missed import interval_wake_is_late, plan_interval

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

    def plan_next_wall_time(self) -> None:
        """Record, for ``next_due()``, which wall-clock time follows the one running now."""
        schedule = self.options.wall_schedule
        assert schedule is not None
        now = backend.wall_now()
        after = now if self.last_target is None else max(now, self.last_target)
        self.next_target = schedule.next_after(after)

    # -- waiting ----------------------------------------------------------------------------

    async def wait_next(self, scheduled: float) -> float | None:
        """Wait for the next slot; return its due time on the event loop's clock, or None if
        there is none (stopped, or the schedule has ended).

        ``scheduled`` is the due time of the last slot (for an interval; before the first, the
        start of the wait less one interval). Plans again whenever ``change()`` or a resume
        interrupts the wait.
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
                if self.stopping:
                    return None
                continue
            replanned = self.replan
            self.replan = False
            options = self.options
            interval = options.interval
            if interval is not None:
                due = scheduled + interval
                if replanned:
                    # After change_interval() the new interval counts from the last
                    # iteration's due time, with at most one run at once: not a burst of
                    # every slot of the new grid since then.
                    due = max(due, primitives.current_time())
                start = due
                if options.jitter:
                    from .._schedules.missed import jittered

                    start = jittered(due, due + interval, options.jitter, self.random)
                self.next_deadline, self.next_slot = start, due
                self.next_target = None
                await primitives.sleep_until(start, self)
                if options.plans_missed and not self.disturbed:
                    late = self.plan_late_wake(due, start, interval)
                    if late is not None and late > primitives.current_time():
                        scheduled = late - interval  # dropped up to a slot still to come
                        continue
                    if late is not None:
                        due = late
            else:
                schedule = options.wall_schedule
                assert schedule is not None
                if not await self._sleep_until_wall_time(schedule, primitives):
                    self.exhausted = True  # the schedule has no more times
                    return None
                due = primitives.current_time()
            if self.stopping:
                return None
            if not (self.replan or self.paused):
                return due

    async def _wait_paused(self, scheduled: float, primitives: backend.Primitives) -> float | None:
        """Wait while paused; count the slots that came due meanwhile; return the last one, or
        None if the schedule has ended meanwhile.

        The loop goes on on the same grid: the next iteration is the first slot after the
        resume.
        """
        self.next_deadline = None
        self.next_target = None
        while self.paused and not self.stopping:
            await primitives.sleep_until(primitives.current_time() + PAUSE_STEP, self)
        options = self.options
        interval = options.interval
        if interval is not None:
            if interval > 0:
                missed = int((primitives.current_time() - scheduled) // interval)
                self.note_skipped(missed, "paused")
                scheduled += missed * interval
            return scheduled
        schedule = options.wall_schedule
        assert schedule is not None
        # Every slot that came due while paused is skipped; the next one runs.
        from .._schedules.missed import plan_wall

        plan = plan_wall(schedule, self.last_target, backend.wall_now(), "skip", None)
        self.note_skipped(plan.skipped, "paused")
        if plan.slot is None:
            return None
        self.last_target = plan.slot - _ONE_MICROSECOND
        return scheduled

    async def _sleep_until_wall_time(
        self, schedule: Schedule, primitives: backend.Primitives
    ) -> bool:
        """Wait for the next slot of ``schedule``; False if it has none; returns early on a
        change, a pause or a stop (the caller looks at the flags)."""
        from .._schedules.missed import jittered, plan_wall, plan_woken_wall

        options = self.options
        overrun, grace = options.overrun_policy, options.grace
        plan = plan_wall(schedule, self.last_target, backend.wall_now(), overrun, grace)
        while True:
            self.note_skipped(plan.skipped, "missed")
            slot = plan.slot
            if slot is None:
                self.next_target = None
                return False
            start = slot
            if options.jitter:
                start = jittered(slot, schedule.next_after(slot), options.jitter, self.random)
            self.next_target = start
            while not self.disturbed:
                now = backend.wall_now()
                remaining = (start - now).total_seconds()
                if remaining <= 0:
                    break
                chunk = min(remaining, WALL_CLOCK_RECHECK)
                await primitives.sleep_until(primitives.current_time() + chunk, self)
            else:
                return True
            # Woken after the next slot came due too (a suspended machine, a blocked event
            # loop), or past grace: the slot was missed, and the policy says what runs.
            plan = plan_woken_wall(schedule, slot, start, now, overrun, grace)
            if plan.slot is not None and plan.slot <= now:
                self.note_skipped(plan.skipped, "missed")
                self.last_target = plan.slot
                return True
            if plan.slot is not None:
                # Dropped up to a slot still to come: wait for it.
                self.last_target = plan.slot - _ONE_MICROSECOND
