"""`cron` schedules: the wall clock of a zone matched against a cron expression.

cronsim (the ``anytasks[cron]`` extra) reads the expression and finds the readings of the clock
that match it, on naive wall time; this module maps those readings to instants across DST
changes, by the rules that `Cron` documents. cronsim has DST handling of its own, but for
expressions that follow elapsed time it steps hours by 3600 s of UTC: in a zone whose clocks
change by 30 minutes (Australia/Lord_Howe) it reads 09:30 for 09:00 for the rest of a DST day,
and where they change off the hour (Pacific/Chatham, at 02:45) it skips readings.
cronsim is imported only when a cron schedule is made: ``import anytasks`` neither needs nor
pays for it.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import TYPE_CHECKING, final

from .protocol import require_aware
from .union import WallClock

if TYPE_CHECKING:
    from cronsim import CronSim

_UTC = datetime.timezone.utc
_MICROSECOND = datetime.timedelta(microseconds=1)
_SECOND = datetime.timedelta(seconds=1)
# cronsim only looks forward from a reading, and nothing comes before datetime.min, so whether
# an expression matches datetime.min (midnight, Monday 1 January) is asked of 2024-01-01, also
# Monday 1 January: every field, `L` and `#` included, reads the two alike.
_MIN_STAND_IN = datetime.datetime(2024, 1, 1)


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

    Made by `cron`, which documents the syntax. Where a DST change skips or repeats readings
    of the clock, two rules apply, as in Debian cron:

    - A 5-field expression whose minute and hour fields do not start with ``*`` (a number, a
      list or a range: ``30 2 * * *``, ``0,30 9-17 * * *``) runs once for every reading it
      matches, at the first instant the clock shows that reading or a later one. A reading
      that happens twice at a fall-back runs at its first occurrence; one skipped by a gap
      runs at the end of the gap, once however many readings the gap skipped (``30 2 * * *``
      in America/New_York runs at 03:00 EDT on the spring-forward day).
    - An expression with ``*`` at the start of the minute or hour field (``0 * * * *``,
      ``*/15 9-17 * * *``), and every 6-field expression, follows elapsed time: it runs at
      every instant whose reading matches, twice for a reading a fall-back repeats, never for
      one a gap skips. ``0 * * * *`` runs in both 02:00 hours of a fall-back night in
      Europe/Berlin.

    Only readings in a gap or a fold are affected, also where the clocks change by 30 minutes:
    Australia/Lord_Howe springs from 02:00 to 02:30, so ``15 2 * * *`` runs at 02:30 and
    ``0 * * * *`` not at 02:00, and ``*/15 9-17 * * *`` runs from 09:00 as on any other day; it
    falls back from 02:00 to 01:30, so ``45 1 * * *`` runs at the first 01:45 and
    ``*/15 * * * *`` at both.

    .. versionadded:: 0.2
    """

    __slots__ = ("_fixed_offset", "_fixed_time", "_read_as", "expr", "tz")
    __match_args__ = ("expr", "tz")

    expr: str
    """The cron expression."""
    tz: datetime.tzinfo
    """The zone whose wall clock the expression is read on."""
    # Derived: the expression as cronsim is given it (_one_value_ranges), whether the zone has
    # neither gaps nor folds, and whether the expression is a fixed-time one.
    _read_as: str
    _fixed_offset: bool
    _fixed_time: bool

    def __init__(self, expr: str, tz: datetime.tzinfo = _UTC) -> None:
        if not isinstance(expr, str):
            raise TypeError(f"`cron` must be a str, not {type(expr).__name__!r}")
        if not isinstance(tz, datetime.tzinfo):
            raise TypeError(f"`tz` must be a datetime.tzinfo, not {type(tz).__name__!r}")
        if datetime.datetime(2000, 1, 1, tzinfo=tz).utcoffset() is None:
            raise ValueError(f"`tz` must give a UTC offset, got {tz!r}")
        cron_sim, error = _cronsim()
        try:
            cron_sim(expr, datetime.datetime(2000, 1, 1))
        except error as exc:
            raise ValueError(f"`cron` expression {expr!r} is invalid: {exc}") from None
        fields = expr.split()
        self._set(
            expr=expr,
            tz=tz,
            _read_as=_one_value_ranges(fields),
            # Neither gaps nor folds: each reading happens once.
            _fixed_offset=isinstance(tz, datetime.timezone),
            # Debian cron's "fixed-time" jobs (cronsim reads them the same way): no `*` at the
            # start of the minute or hour field.
            _fixed_time=len(fields) == 5 and not any(f.startswith("*") for f in fields[:2]),
        )

    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        """Return the first match strictly after ``after``, in UTC.

        :return: the next run, or ``None`` if cronsim finds none within 50 years (``0 0 30 2 *``
            is refused by `cron` instead), or the run or the reading of the clock at it is past
            `datetime.datetime.max`
        :raises ValueError: if ``after`` is naive
        """
        require_aware(after)
        cron_sim, _ = _cronsim()
        tz = self.tz
        try:
            moment = after.astimezone(_UTC)
            if tz is _UTC:
                # No conversions: cronsim walks UTC as it is, and its first match is after
                # `after` (it drops the microseconds and starts a second later).
                return next(cron_sim(self._read_as, moment), None)
            local = moment.astimezone(tz)
        except OverflowError:
            if after.year > 1:
                # `after`, or the clock of `tz` at it, is past datetime.max: no run fits.
                return None
            # The clock of `tz` reads before datetime.min at `after`: every reading is later.
            return self._first_after(cron_sim, after, None, None)
        offset = local.utcoffset()
        assert offset is not None
        reading = _reading(moment, offset)
        repeat = None
        if not (self._fixed_time or self._fixed_offset or local.fold):
            second = _offset(tz, _again(reading))
            if second < offset:
                # `after` is in the first pass through readings a fall-back repeats.
                repeat = _second_pass_run(cron_sim, self._read_as, tz, moment, reading, second)
        return self._first_after(cron_sim, after, reading, repeat)

    def _first_after(
        self,
        cron_sim: type[CronSim],
        after: datetime.datetime,
        reading: datetime.datetime | None,
        repeat: datetime.datetime | None,
    ) -> datetime.datetime | None:
        """The first run after ``after``, whose clock shows ``reading`` (``None``: before
        datetime.min), or ``repeat`` if that is earlier."""
        if reading is not None and repeat is None:
            # Most often the first match is shown once, after `after`: that is the run, found
            # without the walk's generators.
            try:
                match = next(cron_sim(self._read_as, reading), None)
                if match is None:
                    return None
                offset = _offset(self.tz, match)
                run = _instant(match, offset)
                if run > after and (self._fixed_offset or _offset_at(self.tz, run) == offset):
                    return run
            except OverflowError:
                pass
        walk = _walk(
            cron_sim, self._read_as, self.tz, reading, self._fixed_offset, self._fixed_time
        )
        if self._fixed_time:
            # A reading the clock showed twice ran at its first occurrence; walking on from
            # the second pass of a fall-back reaches the first reading that has not run.
            for run, _ in walk:
                if run > after:
                    return run
            return None
        for run, match in walk:
            if run <= after and not self._fixed_offset:
                # Its first occurrence was not after `after` (which is in the second pass
                # through readings a fall-back repeats): its second may be.
                try:
                    run = _instant(match, _offset(self.tz, _again(match)))
                except OverflowError:
                    break
            if run > after:
                return run if repeat is None else min(run, repeat)
        return repeat

    def __repr__(self) -> str:
        if self.tz is _UTC:
            return f"cron({self.expr!r})"
        return f"cron({self.expr!r}, tz={self.tz!r})"


def _one_value_ranges(fields: list[str]) -> str:
    """The expression with each range of one value and a step (``5-5/2``) written as that
    value (``5``), which it means in every cron.

    cronsim 2.7, the last release for Python 3.10, reads ``5-5/2`` as ``5/2`` (5, 7, ..., 23)."""
    return " ".join(",".join(map(_one_value_range, field.split(","))) for field in fields)


def _one_value_range(term: str) -> str:
    span, slash, step = term.partition("/")
    first, dash, last = span.partition("-")
    if slash and dash and step.isdigit() and first.lower() == last.lower():
        return first
    return term


# Instants and readings are converted by arithmetic from the two epochs: `replace(tzinfo=...)`
# costs more than everything else `next_after` does besides cronsim (missed-slot counting
# calls it a thousand times in a row).
_EPOCH = datetime.datetime(1970, 1, 1)
_UTC_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=_UTC)


def _instant(reading: datetime.datetime, offset: datetime.timedelta) -> datetime.datetime:
    """The instant, in UTC, at which a clock ``offset`` ahead of UTC shows ``reading``."""
    return _UTC_EPOCH + (reading - _EPOCH - offset)


def _reading(instant: datetime.datetime, offset: datetime.timedelta) -> datetime.datetime:
    """What a clock ``offset`` ahead of UTC shows at ``instant``, naive."""
    return _EPOCH + (instant - _UTC_EPOCH + offset)


def _offset(tz: datetime.tzinfo, reading: datetime.datetime) -> datetime.timedelta:
    # tzinfo.utcoffset reads only the fields and `fold` of its argument, so it is given the naive
    # reading (zoneinfo, dateutil and datetime.timezone all take one).
    offset = tz.utcoffset(reading)
    assert offset is not None
    return offset


def _again(reading: datetime.datetime) -> datetime.datetime:
    """``reading`` as its second occurrence (PEP 495's ``fold=1``), naive."""
    # Built, not `reading.replace(fold=1)`: the constructor takes half the time.
    r = reading
    return datetime.datetime(
        r.year, r.month, r.day, r.hour, r.minute, r.second, r.microsecond, fold=1
    )


def _walk(
    cron_sim: type[CronSim],
    expr: str,
    tz: datetime.tzinfo,
    start: datetime.datetime | None,
    fixed_offset: bool,
    gaps_run: bool,
) -> Iterator[tuple[datetime.datetime, datetime.datetime]]:
    """For each reading of the clock of ``tz`` that matches ``expr``, in order, strictly after
    ``start`` (``None``: from `datetime.datetime.min` on): the instant of its first occurrence,
    and the reading.

    Readings that a gap skips are left out, or, with ``gaps_run``, the first of each gap is
    given with the instant the gap ends (the others would run at the same instant). The walk
    ends past datetime.max, or after 50 years without a match.
    """
    while True:
        readings = _from_min(cron_sim, expr) if start is None else cron_sim(expr, start)
        try:
            for reading in readings:
                try:
                    offset = _offset(tz, reading)
                    run = _instant(reading, offset)
                    if not fixed_offset and _offset_at(tz, run) != offset:
                        # Skipped by a gap: read with the offset from before the gap (PEP 495's
                        # fold=0) the reading is past the jump; with the one after it, before.
                        after_gap = _offset(tz, _again(reading))
                        run = _shift(tz, _instant(reading, after_gap), run)
                        # Carry on from the reading the clock jumped to.
                        start = max(reading, _reading(run, _offset_at(tz, run)) - _MICROSECOND)
                        if gaps_run:
                            yield run, reading
                        break
                except OverflowError:
                    if reading.year > 1:
                        return
                    continue  # before datetime.min in UTC: before any `after`
                yield run, reading
            else:
                return
        except OverflowError:
            return  # the next match would be past datetime.max


def _from_min(cron_sim: type[CronSim], expr: str) -> Iterator[datetime.datetime]:
    """The readings that match ``expr`` from `datetime.datetime.min` on, that one included."""
    if next(cron_sim(expr, _MIN_STAND_IN - _SECOND), None) == _MIN_STAND_IN:
        yield datetime.datetime.min
    yield from cron_sim(expr, datetime.datetime.min)


def _offset_at(tz: datetime.tzinfo, instant: datetime.datetime) -> datetime.timedelta:
    offset = instant.astimezone(tz).utcoffset()
    assert offset is not None
    return offset


def _shift(
    tz: datetime.tzinfo, before: datetime.datetime, by: datetime.datetime
) -> datetime.datetime:
    """The first instant in (``before``, ``by``] at which the UTC offset of ``tz`` is no longer
    the one at ``before``: the instant of a DST change known to lie there (both in UTC)."""
    offset = _offset_at(tz, before)
    while by - before > _MICROSECOND:
        middle = before + (by - before) // 2
        if _offset_at(tz, middle) == offset:
            before = middle
        else:
            by = middle
    return by


def _second_pass_run(
    cron_sim: type[CronSim],
    expr: str,
    tz: datetime.tzinfo,
    moment: datetime.datetime,
    reading: datetime.datetime,
    second: datetime.timedelta,
) -> datetime.datetime | None:
    """The first run of the second pass through the readings a fall-back repeats, among those
    up to ``reading``, or ``None``: ``moment`` shows ``reading`` in the first pass, and shows it
    again with the UTC offset ``second``, so those runs come after it though their readings do
    not."""
    try:
        again = _instant(reading, second)
        fall_back = _shift(tz, moment, again)
        match = next(cron_sim(expr, _reading(fall_back, second) - _MICROSECOND), None)
    except OverflowError:
        return None
    return None if match is None or match > reading else _instant(match, second)


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
