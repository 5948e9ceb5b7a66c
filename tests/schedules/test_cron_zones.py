"""`cron()` on every IANA zone's DST changes, against a brute-force oracle of the clock.

The oracle reads the zone's clock at every instant of a window around a DST change, minute by
minute (second by second for a 6-field expression whose seconds are not just ``0``), and says
which instants run, by the rules that `Cron` documents:

- a 5-field expression whose minute and hour fields do not start with ``*`` ("fixed time")
  runs at an instant when the clock shows a matching reading it has not shown before, or jumps
  past one (a gap): each matching reading runs once, at its first occurrence or at the end of
  the gap that skipped it;
- any other expression (``*`` at the start of the minute or hour field, and every 6-field
  expression) follows elapsed time: it runs at every instant whose reading matches, both
  occurrences in a fall-back, none in a gap.

It parses its own small subset of cron (numbers, ``*``, ranges, steps, lists), so it shares
nothing with cronsim or `anytasks._schedules.cron` but the rules.

Every zone whose UTC offset changes in YEAR takes part. Zones that make the same change (the
same instant, from the same offset to the same one: aliases, and neighbours that change
together) have the same clock around it, and `Cron` reads a zone only through its offsets, so
each distinct change is swept once, in the first of its zones (about 60 changes for 200
zones), and the random part draws any of its zones.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime
import functools
import zoneinfo
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anytasks._schedules.cron import Cron, cron

UTC = datetime.timezone.utc
YEAR = 2026
HOUR = datetime.timedelta(hours=1)
MINUTE = datetime.timedelta(minutes=1)
SECOND = datetime.timedelta(seconds=1)
MICROSECOND = datetime.timedelta(microseconds=1)


# The zones and their DST changes


@functools.cache
def changes() -> dict[str, tuple[datetime.datetime, ...]]:
    """Every zone whose UTC offset changes in YEAR, with the instants (UTC) it changes at."""
    start = datetime.datetime(YEAR, 1, 1, tzinfo=UTC)
    found: dict[str, tuple[datetime.datetime, ...]] = {}
    for name in sorted(zoneinfo.available_timezones()):
        tz = ZoneInfo(name)
        instants: list[datetime.datetime] = []
        offset = start.astimezone(tz).utcoffset()
        # Sampled daily, then bisected to the second: no zone changes twice within a day.
        for day in range(1, 366):
            sample = start + datetime.timedelta(days=day)
            if sample.astimezone(tz).utcoffset() == offset:
                continue
            low, high = 0, 86400
            while high - low > 1:
                middle = (low + high) // 2
                moment = sample - datetime.timedelta(seconds=middle)
                if moment.astimezone(tz).utcoffset() == offset:
                    high = middle
                else:
                    low = middle
            instants.append(sample - datetime.timedelta(seconds=low))
            offset = sample.astimezone(tz).utcoffset()
        if instants:
            found[name] = tuple(instants)
    return found


def test_the_zones_cover_every_kind_of_dst_change() -> None:
    zones = changes()
    assert len(zones) > 150
    assert zones["Australia/Lord_Howe"] == (
        datetime.datetime(2026, 4, 4, 15, tzinfo=UTC),  # 02:00 LHDT back to 01:30 LHST
        datetime.datetime(2026, 10, 3, 15, 30, tzinfo=UTC),  # 02:00 LHST on to 02:30 LHDT
    )
    # Changes are on whole minutes, so stepping by minutes visits the end of every gap.
    assert all(change.instant.second == 0 for change in distinct_changes())
    shifts = {change.after - change.before for change in distinct_changes()}
    assert {datetime.timedelta(minutes=m) for m in (-120, -60, -30, 30, 60, 120)} <= shifts
    # Zones change between 22:00 and 04:00 of their clocks: the sweep's window relies on it.
    hours = {(change.instant + change.before).hour for change in distinct_changes()}
    assert hours <= {22, 23, 0, 1, 2, 3, 4}


# The oracle


@dataclasses.dataclass(frozen=True)
class Expression:
    text: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    weekdays: frozenset[int]
    # Debian cron: either day field starting with "*" means both must match, else either.
    days_and: bool
    fixed_time: bool

    def matches(self, reading: datetime.datetime) -> bool:
        if not (
            reading.second in self.seconds
            and reading.minute in self.minutes
            and reading.hour in self.hours
        ):
            return False
        day = reading.day in self.days
        weekday = reading.isoweekday() % 7 in self.weekdays
        return (day and weekday) if self.days_and else (day or weekday)


def values(text: str, low: int, high: int) -> frozenset[int]:
    found: set[int] = set()
    for part in text.split(","):
        body, _, step = part.partition("/")
        if body == "*":
            first, last = low, high
        elif "-" in body:
            first, last = map(int, body.split("-"))
        else:
            first = int(body)
            last = high if step else first
        found.update(range(first, last + 1, int(step or 1)))
    return frozenset(found)


def parse(text: str) -> Expression:
    fields = text.split()
    seconds = values(fields.pop(0), 0, 59) if len(fields) == 6 else frozenset({0})
    minute, hour, day, month, weekday = fields
    assert month == "*"
    return Expression(
        text,
        seconds,
        values(minute, 0, 59),
        values(hour, 0, 23),
        values(day, 1, 31),
        # As in cronsim, the day of week runs to 7 (Sunday again): "5/2" is Friday and Sunday.
        frozenset(number % 7 for number in values(weekday, 0, 7)),
        days_and=day.startswith("*") or weekday.startswith("*"),
        fixed_time=len(text.split()) == 5 and "*" not in (minute[0], hour[0]),
    )


@dataclasses.dataclass(frozen=True)
class Window:
    """The instants of (``start``, ``end``] a ``step`` apart, and the zone's clock at each."""

    tz: ZoneInfo
    start: datetime.datetime
    end: datetime.datetime
    step: datetime.timedelta

    @functools.cached_property
    def readings(self) -> list[tuple[datetime.datetime, datetime.datetime]]:
        # Aware readings in one zone compare and add as the clock does: field by field.
        instants = []
        moment = self.start
        while moment < self.end:
            moment += self.step
            instants.append((moment, moment.astimezone(self.tz)))
        return instants


def oracle(expression: Expression, window: Window) -> list[datetime.datetime]:
    """The instants of the window at which ``expression`` runs, by brute force.

    The window starts well away from any other DST change, so the clock at its start shows
    the latest reading it has shown so far.
    """
    runs = []
    shown = window.start.astimezone(window.tz)
    for moment, reading in window.readings:
        if not expression.fixed_time:
            due = expression.matches(reading)
        elif reading - shown == window.step:
            due = expression.matches(reading)
            shown = reading
        else:
            # The clock jumped (a gap) or went back (a fall-back): the readings it has not
            # shown before, up to this one, those the gap skipped included.
            due = False
            while shown < reading:
                shown += window.step
                due = due or expression.matches(shown)
        if due:
            runs.append(moment)
    return runs


def runs_of(schedule: Cron, window: Window) -> list[datetime.datetime]:
    runs = []
    moment: datetime.datetime | None = window.start
    while (moment := schedule.next_after(moment)) is not None and moment <= window.end:
        assert moment.tzinfo is UTC
        runs.append(moment)
    return runs


def check(
    expression: Expression, window: Window, probes: Sequence[datetime.datetime] = ()
) -> None:
    schedule = cron(expression.text, tz=window.tz)
    expected = oracle(expression, window)
    assert runs_of(schedule, window) == expected, (expression.text, window.tz.key)
    for after in probes:
        later = expected[bisect.bisect_right(expected, after) :]
        found = schedule.next_after(after)
        if later:
            assert found == later[0], (expression.text, window.tz.key, after)
        else:
            assert found is None or found > window.end, (expression.text, window.tz.key, after)


# Every zone, every change of 2026


@dataclasses.dataclass(frozen=True)
class Change:
    """A change of UTC offset, and the zones whose clocks make it: they agree at every instant
    of a window around it, and `Cron` reads a zone only through its UTC offsets."""

    instant: datetime.datetime
    before: datetime.timedelta
    after: datetime.timedelta
    zones: tuple[str, ...]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zones[0])

    def __str__(self) -> str:
        return f"{self.zones[0]}+{len(self.zones) - 1}@{self.instant:%m-%d}"


@functools.cache
def distinct_changes() -> tuple[Change, ...]:
    groups: dict[tuple[datetime.datetime, datetime.timedelta, datetime.timedelta], list[str]]
    groups = {}
    for name, instants in changes().items():
        tz = ZoneInfo(name)
        for instant in instants:
            before = (instant - SECOND).astimezone(tz).utcoffset()
            after = instant.astimezone(tz).utcoffset()
            assert before is not None
            assert after is not None
            groups.setdefault((instant, before, after), []).append(name)
    return tuple(Change(*key, tuple(names)) for key, names in sorted(groups.items()))


def test_every_zone_with_a_change_is_in_the_sweep() -> None:
    swept = {name for change in distinct_changes() for name in change.zones}
    assert swept == set(changes())
    assert sum(len(change.zones) for change in distinct_changes()) == sum(
        len(instants) for instants in changes().values()
    )


SWEEP = [
    parse(text)
    for text in (
        "*/15 9-17 * * *",  # ran at 09:30 instead of 09:00 on Lord_Howe's DST days
        "0 0 9 * * *",  # six fields: did not run at all on 2026-10-04 in Lord_Howe
        "*/30 * * * *",  # elapsed time, around the clock
        "0,15,30,45 0-4,22,23 * * *",  # fixed times, on every hour a zone changes in
    )
]


@pytest.mark.parametrize("change", distinct_changes(), ids=str)
def test_every_dst_change_of_every_zone_agrees_with_the_oracle(change: Change) -> None:
    # Zones change between 22:00 and 04:00, so this reaches past 09:00 of the day after.
    window = Window(change.tz, change.instant - 4 * HOUR, change.instant + 12 * HOUR, MINUTE)
    # Either side of the change, and inside the readings a fall-back repeats (30 minutes or
    # more), where the second pass is still to come.
    probes = [change.instant + delta for delta in (-MICROSECOND, 0 * MINUTE, -20 * MINUTE)]
    for expression in SWEEP:
        check(expression, window, probes)


# Random expressions


def field(low: int, high: int, near: list[int]) -> st.SearchStrategy[str]:
    """A cron field: ``*``, steps, numbers, ranges, and lists of them, with numbers often
    taken from ``near``."""
    number = st.one_of(st.sampled_from(near), st.integers(low, high))
    single = number.map(str)
    span = st.tuples(number, number).map(lambda pair: "{}-{}".format(*sorted(pair)))
    step = st.integers(1, (high - low + 1) // 2)
    stepped = st.tuples(st.one_of(single, span), step).map(lambda pair: "{}/{}".format(*pair))
    part = st.one_of(single, span, stepped)
    return st.one_of(
        st.just("*"),
        step.map("*/{}".format),
        part,
        st.lists(part, min_size=2, max_size=3).map(",".join),
    )


# Few enough seconds a minute that a window stays a few thousand runs at most.
seconds_fields = st.one_of(
    st.sampled_from(["0", "30", "*/15", "*/20", "*/30", "10-40/15"]),
    st.lists(st.integers(0, 59), min_size=1, max_size=3, unique=True).map(
        lambda seconds: ",".join(map(str, seconds))
    ),
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Expression, Window, list[datetime.datetime]]:
    change = draw(st.sampled_from(distinct_changes()))
    tz = ZoneInfo(draw(st.sampled_from(change.zones)))
    before = (change.instant - SECOND).astimezone(tz)
    after = change.instant.astimezone(tz)
    hours = sorted({before.hour, after.hour, (before.hour + 1) % 24, (after.hour - 1) % 24})
    minutes = sorted({before.minute, after.minute, 0, 30, 45})
    fields = [
        draw(field(0, 59, minutes)),
        draw(field(0, 23, hours)),
        draw(st.one_of(st.just("*"), field(1, 31, [before.day, after.day]))),
        "*",
        draw(st.one_of(st.just("*"), field(0, 7, [before.isoweekday() % 7]))),
    ]
    six = draw(st.booleans())
    if six:
        fields.insert(0, draw(seconds_fields))
    expression = parse(" ".join(fields))
    if expression.seconds == {0}:
        window = Window(tz, change.instant - 3 * HOUR, change.instant + 9 * HOUR, MINUTE)
    else:
        window = Window(tz, change.instant - 90 * MINUTE, change.instant + 90 * MINUTE, SECOND)
    span = int((window.end - window.start) / MICROSECOND)
    probes = draw(
        st.lists(st.integers(0, span).map(lambda n: window.start + n * MICROSECOND), max_size=5)
    )
    return expression, window, probes


@settings(max_examples=80, deadline=None)
@given(case=cases())
def test_random_expressions_agree_with_the_oracle(
    case: tuple[Expression, Window, list[datetime.datetime]],
) -> None:
    expression, window, probes = case
    check(expression, window, probes)
