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
    from ._schedules import Schedule

# Wall-clock waits re-read the wall clock this often, so that a clock change or a suspended
# machine delays a run by at most this much.
_WALL_CLOCK_RECHECK = 60.0


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
        schedule = self.options.schedule
        assert self.interval is None
        now = _backend.wall_now()
        after = now if self.last_target is None else max(now, self.last_target)
        self.next_target = schedule.next_after(after)

    async def _sleep_until_wall_time(
        self, schedule: Schedule, primitives: _backend.Primitives
    ) -> bool:
        """Wait for the next slot of ``schedule``; False if it has none; returns early on
        change_interval(), pause() or stop()."""
        from ._missed import jittered, plan_wall

        while True:
            now = _backend.wall_now()
            plan = plan_wall(
                schedule, self.last_target, now, self.options.overrun_policy, self.options.grace
            )
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
            grace = self.options.grace
            if grace is not None and (now - start).total_seconds() > grace:
                # Woke long after the slot (a suspended machine): plan again, which
                # drops this slot as too late.
                self.last_target = slot
                self.note_skipped(1, "missed")
                continue
            self.last_target = slot
            return True
