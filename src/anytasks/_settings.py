"""A loop's settings and schedule, as read and changed through it (a base of ``Loop``).

The settings are one frozen :class:`~anytasks._options.LoopOptions` value; changing one
makes a new value and hands it to the run in progress, if any.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast, overload

from ._attempts import utc_from_timestamp
from ._backend import wall_now
from ._hooks import Hooks
from ._options import AnySchedule, LoopOptions, parse_schedule
from ._schedules.daily import Daily
from ._schedules.every import Every
from ._schedules.preview import preview
from ._ticks import Ticks

if TYPE_CHECKING:
    from ._runner import Runner


class Settings(Hooks):
    """What a :class:`~anytasks.Loop` runs on, and how: readable, and changeable at any time.

    (A base of Hooks only so that the Loop's bases form one chain: a class can take slots
    from one line of bases only.)
    """

    __slots__ = ("_options", "_run")

    _options: LoopOptions
    # The run in progress (see _runner.Runner), or None.
    _run: Runner | None

    @property
    def count(self) -> int | None:
        """How many iterations a run has before it ends; ``None`` for no limit.

        Settable; a new value applies to the run in progress at once.
        """
        return self._options.count

    @count.setter
    def count(self, value: int | None) -> None:
        self._set_options(self._options.replace(count=value))

    @property
    def reconnect(self) -> bool:
        """Whether handled exceptions are retried with backoff (see :meth:`add_exception_type`)."""
        return self._options.reconnect

    @reconnect.setter
    def reconnect(self, value: bool) -> None:
        self._set_options(self._options.replace(reconnect=value))

    @property
    def name(self) -> str:
        """The name of the loop's task and of the loop in log messages.

        By default ``"anytasks: "`` followed by the function's qualified name.
        """
        return cast("str", self._options.name)

    @name.setter
    def name(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"`name` must be a str, not {type(value).__name__!r}")
        self._set_options(self._options.replace(name=value))

    @property
    def schedule(self) -> AnySchedule:
        """What the loop runs on: :func:`~anytasks.every` or a wall-clock schedule.

        .. versionadded:: 0.2
        """
        return self._options.schedule

    @property
    def seconds(self) -> float | None:
        """The seconds part of the interval; ``None`` for a wall-clock schedule."""
        schedule = self._options.schedule
        return schedule.seconds if isinstance(schedule, Every) else None

    @property
    def minutes(self) -> float | None:
        """The minutes part of the interval; ``None`` for a wall-clock schedule."""
        schedule = self._options.schedule
        return schedule.minutes if isinstance(schedule, Every) else None

    @property
    def hours(self) -> float | None:
        """The hours part of the interval; ``None`` for a wall-clock schedule."""
        schedule = self._options.schedule
        return schedule.hours if isinstance(schedule, Every) else None

    @property
    def time(self) -> list[datetime.time] | None:
        """The times of day the loop runs at (sorted, aware); ``None`` for other schedules."""
        schedule = self._options.schedule
        return list(schedule.times) if isinstance(schedule, Daily) else None

    def _set_options(self, options: LoopOptions) -> None:
        run = self._run
        if run is not None:
            self._check_thread(run, "change_interval")
        self._options = options
        if run is not None:
            run.apply(options)

    def preview(self, n: int = 5) -> list[datetime.datetime]:
        """The next ``n`` times the loop will run, as aware UTC datetimes, without running it.

        For a running loop, from its next iteration on (jitter included once drawn); for an
        interval loop that is not running, from now, as if it were started now. Fewer than
        ``n`` if the schedule ends first.

        :raises ValueError: if ``n`` is negative.

        .. versionadded:: 0.2
        """
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"`n` must be an int, not {type(n).__name__!r}")
        if n < 0:
            raise ValueError(f"`n` must be non-negative, got {n!r}")
        run = self._run
        next_slot = None
        next_due = run.next_iteration() if run is not None else None
        if run is not None and run.next_slot is not None and next_due is not None:
            next_slot = utc_from_timestamp(run.wall_offset + run.next_slot)
        options = self._options
        return preview(
            options.wall_schedule,
            options.interval,
            n,
            now=wall_now(),
            next_due=next_due,
            next_slot=next_slot,
        )

    def ticks(self, *, count: int | None = None) -> Ticks:
        """Iterate over this loop's schedule inline, as :func:`~anytasks.ticks` does.

        Uses the loop's schedule and timing settings, not its body or hooks, and does not
        start the loop: ``async for tick in heartbeat.ticks(count=3): ...``.

        :param count: how many ticks; ``None`` for no limit (not the loop's ``count``).

        .. versionadded:: 0.2
        """
        return Ticks(self._options.replace(count=count))

    def _check_thread(self, run: Runner, control: str) -> None:
        if run.thread is not threading.current_thread():
            # Nothing here is thread-safe, and a wake-up from another thread would not
            # even wake an asyncio event loop: refuse rather than half work.
            raise RuntimeError(
                f"{self!r}.{control}() was called from another thread than the one running "
                "the loop; call it in the loop's thread (for example with "
                "anyio.from_thread.run_sync or loop.call_soon_threadsafe)"
            )

    # -- schedule --------------------------------------------------------------------

    @overload
    def change_interval(
        self,
        *,
        seconds: float = 0,
        minutes: float = 0,
        hours: float = 0,
        time: None = None,
    ) -> None: ...

    @overload
    def change_interval(self, *, time: datetime.time | Sequence[datetime.time]) -> None: ...

    @overload
    def change_interval(self, *, cron: str, tz: datetime.tzinfo | None = None) -> None: ...

    @overload
    def change_interval(self, *, schedule: AnySchedule) -> None: ...

    def change_interval(self, **forms: Any) -> None:
        """Change the schedule, effective at once, in any state; it may switch kinds.

        Takes one form of schedule, as :func:`loop` does. If the loop is waiting
        for its next iteration, the wait is recomputed: the last iteration's
        scheduled start plus the new interval (or, for a wall-clock schedule,
        its next time), and at once if that has passed; later iterations follow
        the new interval from there. A backoff wait is not shortened.

        :raises TypeError: for a value of the wrong type, or two forms mixed.
        :raises ValueError: for a negative, NaN or infinite interval, or an empty
            ``time`` list.

        .. versionchanged:: 0.2
           Takes ``schedule=``.
        """
        self._set_options(self._options.replace(schedule=parse_schedule(forms)))
