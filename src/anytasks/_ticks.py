"""A schedule as an async iterator: ``async for tick in anytasks.ticks(seconds=5)``.

For code that wants the loop inline, in its own task, like trio-util's ``periodic()``: the same
grid, missed-slot policy, jitter and virtual clock as a :class:`~anytasks.Loop`, without hooks
or a background task. Leaving the ``async for`` early ends it; nothing is left running.
"""

from __future__ import annotations

import datetime
from typing import Any, final

from ._engine import backend
from ._engine.options import LoopOptions, parse_options
from ._engine.position import SchedulePosition
from ._frozen import Frozen

_UTC = datetime.timezone.utc


@final
class Tick(Frozen):
    """One due time of :func:`ticks`.

    .. versionadded:: 0.2
    """

    __slots__ = ("index", "lateness", "scheduled")
    __match_args__ = ("index", "scheduled", "lateness")

    index: int
    """0 for the first tick, then 1, 2, ...; skipped slots take no index."""
    scheduled: datetime.datetime
    """When the slot was due (aware UTC): the grid's time, before any jitter."""
    lateness: float
    """Seconds from ``scheduled`` until the tick was delivered (jitter included)."""

    def __init__(self, index: int, scheduled: datetime.datetime, lateness: float) -> None:
        self._set(index=index, scheduled=scheduled, lateness=lateness)

    def __repr__(self) -> str:
        return (
            f"Tick(index={self.index!r}, scheduled={self.scheduled!r}, lateness={self.lateness!r})"
        )


@final
class Ticks:
    """The async iterator of :func:`ticks` and :meth:`Loop.ticks <anytasks.Loop.ticks>`.

    .. versionadded:: 0.2
    """

    __slots__ = ("_count", "_due", "_ended", "_index", "_position")

    def __init__(self, options: LoopOptions) -> None:
        # Where the iteration stands on the schedule: the waits of a loop's run, without a
        # body, hooks or events.
        self._position = SchedulePosition(options)
        self._count = options.count
        self._index = 0
        # The due time of the last tick, on the event loop's clock; None before the first.
        self._due: float | None = None
        self._ended = False

    @property
    def skipped(self) -> int:
        """How many slots the missed-slot policy has dropped so far."""
        return self._position.skipped

    def __aiter__(self) -> Ticks:
        return self

    async def __anext__(self) -> Tick:
        if self._ended or (self._count is not None and self._index >= self._count):
            self._ended = True
            raise StopAsyncIteration
        due = await (self._first() if self._due is None else self._next(self._due))
        if due is None:
            self._ended = True
            raise StopAsyncIteration
        self._due = due
        position = self._position
        primitives = position.primitives
        assert primitives is not None
        index, self._index = self._index, self._index + 1
        if position.options.wall_schedule is None:
            scheduled = position.utc(due)
            lateness = primitives.current_time() - due
        else:
            assert position.last_target is not None
            scheduled = position.last_target
            lateness = (backend.wall_now() - scheduled).total_seconds()
        return Tick(index, scheduled, max(lateness, 0.0))

    async def aclose(self) -> None:
        """End the iteration (``async for`` does this when left early)."""
        self._ended = True
        self._position.stopping = True

    async def _first(self) -> float | None:
        position = self._position
        now = position.start()
        if position.options.wall_schedule is None:
            return now
        return await position.wait_next(now)

    async def _next(self, due: float) -> float | None:
        # What the run's hot path does after a body, kept apart from it so that the loop's
        # per-iteration path stays one coroutine deep.
        position = self._position
        primitives = position.primitives
        assert primitives is not None
        options = position.options
        interval = options.interval
        if interval is not None:
            following = due + interval
            now = primitives.current_time()
            if following <= now and options.plans_missed:
                following = position.plan_missed(due, interval, now)
            if following <= primitives.current_time():
                await primitives.checkpoint()
                return following
            due = following - interval
        return await position.wait_next(due)


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
