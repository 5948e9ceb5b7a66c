"""`every`: an interval on the monotonic clock, the grid of ``@loop(seconds=...)``."""

from __future__ import annotations

import datetime
import math
from typing import NoReturn, final

from .._frozen import Frozen
from .protocol import require_aware

_UTC = datetime.timezone.utc
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=_UTC)
_MICROSECOND = datetime.timedelta(microseconds=1)


def validate_interval(seconds: float, minutes: float, hours: float) -> float:
    """Return the interval ``seconds + 60 * minutes + 3600 * hours`` in seconds.

    Only the total must be non-negative: a negative component is allowed when the others make up
    for it, as in discord.py.

    :param seconds: the seconds part of the interval
    :param minutes: the minutes part of the interval
    :param hours: the hours part of the interval
    :raises TypeError: if a component is not an ``int`` or ``float`` (``bool`` included)
    :raises ValueError: if a component is NaN or infinite, or the total is negative or too large
        to be finite
    """
    for name, value in (("seconds", seconds), ("minutes", minutes), ("hours", hours)):
        # bool is an int subclass, but `seconds=True` is a mistake, not one second.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"`{name}` must be a number, not {type(value).__name__!r}")
        if not math.isfinite(value):
            raise ValueError(f"`{name}` must be a finite number, got {value!r}")
    # Finite components can still overflow once scaled (hours=1e306); one may be negative if
    # the others make up for it, as in discord.py: the total is what must be in range.
    total = float(seconds + 60 * minutes + 3600 * hours)
    if not math.isfinite(total) or total < 0:
        raise ValueError(
            f"the total interval must be a non-negative finite number of seconds, got {total!r}"
        )
    return total


@final
class Every(Frozen):
    """A run every ``interval`` seconds on the monotonic clock: the grid of ``@loop(seconds=)``.

    Made by `every`. The fields keep the components as given (``every(minutes=1)`` and
    ``every(seconds=60)`` have the same `interval` but are not equal). An interval loop counts
    from its own start on the event loop's monotonic clock, so it is not a wall-clock `Schedule`
    and cannot be combined with one with ``|``.

    `next_after` is still offered for loops that must agree across processes (a grid aligned to
    the Unix epoch: slot *k* is *k* times `interval` seconds after 1970-01-01 00:00 UTC).

    .. versionadded:: 0.2
    """

    __slots__ = ("hours", "interval", "minutes", "seconds")
    __match_args__ = ("seconds", "minutes", "hours")

    seconds: float
    """The seconds component, as given."""
    minutes: float
    """The minutes component, as given."""
    hours: float
    """The hours component, as given."""
    interval: float
    """The total interval in seconds."""

    def __init__(self, seconds: float = 0, minutes: float = 0, hours: float = 0) -> None:
        interval = validate_interval(seconds, minutes, hours)
        self._set(seconds=seconds, minutes=minutes, hours=hours, interval=interval)

    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        """Return the first slot of the epoch-aligned grid strictly after ``after``, in UTC.

        The grid is computed in whole microseconds (the resolution of `datetime.datetime`), so it
        does not drift however far from the epoch ``after`` is.

        :return: the next slot, or ``None`` when it is past `datetime.datetime.max`
        :raises ValueError: if ``after`` is naive, or the interval rounds to zero microseconds (a
            zero interval means "as fast as possible" and has no wall-clock slots)
        """
        require_aware(after)
        step = round(self.interval * 1_000_000)
        if step == 0:
            raise ValueError(f"{self!r} has no wall-clock slots: its interval is zero")
        elapsed = (after - _EPOCH) // _MICROSECOND
        try:
            return _EPOCH + (elapsed // step + 1) * step * _MICROSECOND
        except OverflowError:
            return None

    def __or__(self, other: object) -> NoReturn:
        refuse_union(self)

    def __ror__(self, other: object) -> NoReturn:
        refuse_union(self)

    def __repr__(self) -> str:
        given = [
            f"{name}={value!r}"
            for name, value in (
                ("seconds", self.seconds),
                ("minutes", self.minutes),
                ("hours", self.hours),
            )
            if value != 0
        ]
        return f"every({', '.join(given) or 'seconds=0'})"


def every(seconds: float = 0, minutes: float = 0, hours: float = 0) -> Every:
    """Run every ``seconds + 60 * minutes + 3600 * hours`` seconds, on the monotonic clock.

    The same interval as ``@loop(seconds=..., minutes=..., hours=...)``: slots are counted from
    the loop's start and do not drift. Only the total must be non-negative; zero runs the loop as
    fast as possible.

    Example::

        every(minutes=5)  # every(minutes=5), interval 300.0

    :raises TypeError: if a component is not an ``int`` or ``float``
    :raises ValueError: if a component is NaN or infinite, or the total is negative

    .. versionadded:: 0.2
    """
    return Every(seconds, minutes, hours)


def refuse_union(interval: Every) -> NoReturn:
    raise TypeError(
        f"{interval!r} is an interval on the monotonic clock and cannot be combined with "
        "wall-clock schedules: use `daily()` or `cron()` for runs at fixed times"
    )
