"""`cron` schedules: the wall clock of a zone matched against a cron expression.

Evaluated by `cronsim <https://pypi.org/project/cronsim/>`_ (the ``anytasks[cron]`` extra),
imported only when a cron schedule is made: ``import anytasks`` neither needs nor pays for it.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, final

from ._schedules import WallClock, require_aware

if TYPE_CHECKING:
    from cronsim import CronSim

_UTC = datetime.timezone.utc


def _cronsim() -> tuple[type[CronSim], type[Exception]]:
    # Imported here, not at the top: `import anytasks` must not need (or pay for) cronsim.
    try:
        from cronsim import CronSim, CronSimError
    except ImportError:
        raise ImportError(
            "cron schedules need the cronsim package: install `anytasks[cron]`"
        ) from None
    return CronSim, CronSimError


@final
class Cron(WallClock):
    """Runs when the wall clock of `tz` matches the cron expression `expr`.

    Made by `cron`, which documents the syntax. Evaluated by cronsim, which follows Debian cron
    across DST changes for 5-field expressions with a fixed minute and hour: a time skipped by a
    gap runs once, at the end of the gap (``30 2 * * *`` in America/New_York runs at 03:00 EDT on
    the spring-forward day), and a time that happens twice at a fall-back runs once, at its first
    occurrence. Expressions with ``*`` in the minute or hour field, and all 6-field expressions,
    follow elapsed time instead: ``0 * * * *`` runs in both 02:00 hours of a fall-back night.

    .. versionadded:: 0.2
    """

    __slots__ = ("_expr", "_tz")
    __match_args__ = ("expr", "tz")

    def __init__(self, expr: str, tz: datetime.tzinfo = _UTC) -> None:
        if not isinstance(expr, str):
            raise TypeError(f"`cron` must be a str, not {type(expr).__name__!r}")
        if not isinstance(tz, datetime.tzinfo):
            raise TypeError(f"`tz` must be a datetime.tzinfo, not {type(tz).__name__!r}")
        if datetime.datetime(2000, 1, 1, tzinfo=tz).utcoffset() is None:
            raise ValueError(f"`tz` must give a UTC offset, got {tz!r}")
        cron_sim, error = _cronsim()
        try:
            cron_sim(expr, datetime.datetime(2000, 1, 1, tzinfo=tz))
        except error as exc:
            raise ValueError(f"`cron` expression {expr!r} is invalid: {exc}") from None
        self._expr = expr
        self._tz = tz

    @property
    def expr(self) -> str:
        """The cron expression."""
        return self._expr

    @property
    def tz(self) -> datetime.tzinfo:
        """The zone whose wall clock the expression is read on."""
        return self._tz

    def _fields(self) -> tuple[Any, ...]:
        return (self._expr, self._tz)

    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        """Return the first match strictly after ``after``, in UTC.

        :return: the next run, or ``None`` if cronsim finds none within 50 years (``0 0 30 2 *``
            is refused by `cron` instead) or it is past `datetime.datetime.max`
        :raises ValueError: if ``after`` is naive
        """
        require_aware(after)
        cron_sim, _ = _cronsim()
        runs = cron_sim(self._expr, after.astimezone(self._tz))
        try:
            while True:
                run = next(runs).astimezone(_UTC)
                # cronsim walks wall-clock time for fixed-time expressions and so forgets which
                # side of a fall-back `after` was on: from 02:10 CET (the second 02:10) it offers
                # 02:30 CEST, which is earlier. Walking on gives the next day's run.
                if run > after:
                    return run
        except (StopIteration, OverflowError):
            return None

    def __repr__(self) -> str:
        if self._tz is _UTC:
            return f"cron({self._expr!r})"
        return f"cron({self._expr!r}, tz={self._tz!r})"


def cron(expr: str, tz: datetime.tzinfo | None = None) -> Cron:
    """Run when the wall clock of ``tz`` matches the cron expression ``expr``.

    ``expr`` has 5 fields (minute, hour, day of month, month, day of week) or 6 with a leading
    seconds field, as read by cronsim: numbers, names (``MON``, ``JAN``), ``*``, ranges, lists and
    steps, ``L`` and ``LW`` in the day of month, ``L`` and ``#`` in the day of week. As in Debian
    cron, when both day fields are restricted a day matching either runs; when one starts with
    ``*``, both must match. See `Cron` for DST changes. Needs the ``anytasks[cron]`` extra.

    Example::

        cron("*/15 9-17 * * MON-FRI", tz=ZoneInfo("Europe/Berlin"))

    :param tz: the zone whose wall clock is read; ``None`` means UTC
    :raises ImportError: if cronsim is not installed
    :raises TypeError: if ``expr`` is not a ``str`` or ``tz`` is not a `datetime.tzinfo`
    :raises ValueError: if ``expr`` is not a valid cron expression

    .. versionadded:: 0.2
    """
    return Cron(expr, _UTC if tz is None else tz)
