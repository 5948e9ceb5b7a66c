"""Waiting for the next time of a wall-clock schedule (a base of :class:`Cadence`).

A wall-clock schedule is asked for its next time after the last one run (``_missed.plan_wall``
decides what happens to times that were missed), and that time is waited for in chunks of at
most a minute of the wall clock, so that a clock change or a suspended machine is noticed.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _backend
from ._attempts import Attempts
from ._state import STOPPING, LoopState

if TYPE_CHECKING:
    from ._options import LoopOptions
    from ._schedules.protocol import Schedule

# Wall-clock waits re-read the wall clock this often, so that a clock change or a suspended
# machine delays a run by at most this much.
_WALL_CLOCK_RECHECK = 60.0
_ONE_MICROSECOND = datetime.timedelta(microseconds=1)


class WallClockWaits(Attempts):
    """The waits of a loop on a wall-clock schedule."""

    __slots__ = ("last_target", "next_target")

    # The Cadence's, read here.
    options: LoopOptions
    state: LoopState
    interval: float | None
    jitter: float
    random: Callable[[], float]
    replan: bool
    paused: bool
    wake: Callable[[], None] | None
    # This part's own (the slots above): the time the next iteration is due at (jitter
    # included), and the time the last one was due at.
    next_target: datetime.datetime | None
    last_target: datetime.datetime | None

    @property
    def wait_scope(self) -> Any:
        """The innermost AnyIO cancel scope of the waiting task, if known (see the Runner's)."""
        return None

    def _plan_next_wall_time(self) -> None:
        """Record, for next_iteration, which wall-clock time follows the one running now."""
        schedule = self.options.wall_schedule
        assert schedule is not None
        now = _backend.wall_now()
        after = now if self.last_target is None else max(now, self.last_target)
        self.next_target = schedule.next_after(after)

    async def _sleep_until_wall_time(
        self, schedule: Schedule, primitives: _backend.Primitives
    ) -> bool:
        """Wait for the next slot of ``schedule``; False if it has none; returns early on
        change_interval(), pause() or stop()."""
        from ._schedules.missed import jittered, plan_wall, plan_woken_wall

        options = self.options
        overrun, grace = options.overrun_policy, options.grace
        plan = plan_wall(schedule, self.last_target, _backend.wall_now(), overrun, grace)
        while True:
            self.note_skipped(plan.skipped, "missed")
            slot = plan.slot
            if slot is None:
                self.next_target = None
                return False
            start = slot
            if self.jitter:
                start = jittered(slot, schedule.next_after(slot), self.jitter, self.random)
            self.next_target = start
            while not (self.replan or self.paused or self.state is STOPPING):
                now = _backend.wall_now()
                remaining = (start - now).total_seconds()
                if remaining <= 0:
                    break
                chunk = min(remaining, _WALL_CLOCK_RECHECK)
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
