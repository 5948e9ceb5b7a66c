"""A schedule as an async iterator: ``async for tick in anytasks.ticks(seconds=5)``.

For code that wants the loop inline, in its own task, like trio-util's ``periodic()``: the same
grid, missed-slot policy, jitter and virtual clock as a :class:`~anytasks.Loop`, without hooks
or a background task. Leaving the ``async for`` early ends it; nothing is left running.
"""

from __future__ import annotations

import datetime
from typing import Any, final

from . import _backend
from ._cadence import Cadence
from ._frozen import Frozen
from ._options import LoopOptions, parse_options
from ._schedules.every import Every
from ._state import LoopState

_UTC = datetime.timezone.utc


@final
class Tick(Frozen):
    """One due time of :func:`ticks`.

    .. versionadded:: 0.2
    """

    __slots__ = ("_index", "_lateness", "_scheduled")
    __match_args__ = ("index", "scheduled", "lateness")

    def __init__(self, index: int, scheduled: datetime.datetime, lateness: float) -> None:
        self._index = index
        self._scheduled = scheduled
        self._lateness = lateness

    @property
    def index(self) -> int:
        """0 for the first tick, then 1, 2, ...; skipped slots take no index."""
        return self._index

    @property
    def scheduled(self) -> datetime.datetime:
        """When the slot was due (aware UTC): the grid's time, before any jitter."""
        return self._scheduled

    @property
    def lateness(self) -> float:
        """Seconds from ``scheduled`` until the tick was delivered (jitter included)."""
        return self._lateness

    def _fields(self) -> tuple[Any, ...]:
        return (self._index, self._scheduled, self._lateness)

    def __repr__(self) -> str:
        return (
            f"Tick(index={self._index!r}, scheduled={self._scheduled!r}, "
            f"lateness={self._lateness!r})"
        )


@final
class Ticks:
    """The async iterator of :func:`ticks` and :meth:`Loop.ticks <anytasks.Loop.ticks>`.

    .. versionadded:: 0.2
    """

    __slots__ = ("_ticker",)

    def __init__(self, options: LoopOptions) -> None:
        self._ticker = _Ticker(options)

    @property
    def skipped(self) -> int:
        """How many slots the missed-slot policy has dropped so far."""
        return self._ticker.skipped

    def __aiter__(self) -> Ticks:
        return self

    async def __anext__(self) -> Tick:
        return await self._ticker.next_tick()

    async def aclose(self) -> None:
        """End the iteration (``async for`` does this when left early)."""
        self._ticker.state = LoopState.IDLE


class _Ticker(Cadence):
    """The cadence of a :class:`Ticks`: a Runner's waits, without a body or hooks."""

    __slots__ = ("_due", "_index", "options")

    def __init__(self, options: LoopOptions) -> None:
        self.options = options
        self.state = LoopState.RUNNING
        schedule = options.schedule
        # The grid the loop itself would follow: an exclusive loop's is aligned to the epoch.
        wall = options.wall_schedule
        self.interval = schedule.interval if wall is None and isinstance(schedule, Every) else None
        self.count = options.count
        self.plans_missed = options.plans_missed
        self.jitter = options.jitter
        self.random = options.random or _backend.default_random()
        self.current_loop = self.skipped = 0
        self.paused = self.replan = False
        self.wake = None
        self.primitives = None
        self.next_deadline = None
        self.next_slot = None
        self.next_target = None
        self.last_target = None
        self.wall_offset = 0.0
        self.exclusive = None
        self.exhausted = False
        self.plain = True
        self._index = 0
        self._due: float | None = None

    def enter(self, new: LoopState) -> None:
        self.state = new

    async def next_tick(self) -> Tick:
        if self.state is LoopState.IDLE or (self.count is not None and self._index >= self.count):
            self.state = LoopState.IDLE
            raise StopAsyncIteration
        due = await (self._first() if self._due is None else self._next(self._due))
        if due is None:
            self.state = LoopState.IDLE
            raise StopAsyncIteration
        self._due = due
        primitives = self.primitives
        assert primitives is not None
        index, self._index = self._index, self._index + 1
        if self.interval is not None:
            scheduled = datetime.datetime.fromtimestamp(self.wall_offset + due, _UTC)
            lateness = primitives.current_time() - due
        else:
            assert self.last_target is not None
            scheduled = self.last_target
            lateness = (_backend.wall_now() - scheduled).total_seconds()
        return Tick(index, scheduled, max(lateness, 0.0))

    async def _first(self) -> float | None:
        primitives = self.primitives = _backend.bind_primitives()
        now = primitives.current_time()
        self.wall_offset = _backend.wall_now().timestamp() - now
        if self.interval is None:
            return await self._wait_for_next(now)
        return now

    async def _next(self, due: float) -> float | None:
        # What Cadence._iterate does after a body, kept apart from it so that the loop's
        # per-iteration path stays one coroutine deep.
        primitives = self.primitives
        assert primitives is not None
        interval = self.interval
        if interval is not None:
            following = due + interval
            now = primitives.current_time()
            if following <= now and self.plans_missed:
                following = self._plan_missed(due, interval, now)
            if following <= primitives.current_time():
                await primitives.checkpoint()
                return following
            due = following - interval
        return await self._wait_for_next(due)


def ticks(**keywords: Any) -> Ticks:
    """Iterate over a schedule inline: each iteration waits for its next due time.

    Takes one form of schedule and the timing settings of :func:`loop`:
    ``seconds``/``minutes``/``hours``, ``time``, ``cron`` (with ``tz``) or ``schedule``,
    and ``count``, ``overrun``, ``grace``, ``jitter``, ``random``. Yields a :class:`Tick`
    per due time: an interval's first tick comes at once, a wall-clock schedule's at its
    first time. The body of the ``async for`` runs in the calling task, so an iteration
    that takes longer than the interval makes the next ticks late, handled as ``overrun``
    says. Leave the ``async for`` (``break``, an exception, a cancellation) to stop.

    :raises TypeError: for an unknown keyword or two forms of schedule.
    :raises ValueError: for a value out of range.

    .. versionadded:: 0.2

    Synopsis::

        async for tick in anytasks.ticks(seconds=5, count=3):
            print(tick.index, tick.scheduled, tick.lateness)
    """
    # The settings of a body, which ticks() does not run.
    for unknown in (
        "reconnect",
        "name",
        "timeout",
        "on_timeout",
        "backoff",
        "max_retries",
        "exclusive",
    ):
        if unknown in keywords:
            raise TypeError(f"ticks() got an unexpected keyword argument {unknown!r}")
    return Ticks(parse_options(keywords, where="ticks()"))
