"""The pure arithmetic under ``every()`` and ``daily()``, with ``now`` passed in.

An interval's total (``validate_interval``); times of day normalized (``normalize_times``), put
on a local date across DST gaps and folds (``resolve_local``), and the next run after an
instant (``next_time_of_day``), with exact cases and properties over many zones.
"""

from __future__ import annotations

import datetime
import math
import re
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from anytasks._schedules.daily import next_time_of_day, normalize_times, resolve_local
from anytasks._schedules.every import validate_interval

UTC = datetime.timezone.utc
NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
KOLKATA = ZoneInfo("Asia/Kolkata")
NUUK = ZoneInfo("America/Nuuk")
ST_JOHNS = ZoneInfo("America/St_Johns")

# Zones with 1 h and 30 min DST shifts, southern-hemisphere DST, a :45 offset, no DST at all, a
# gap that ends at midnight (Nuuk) and a fall-back across midnight (St. John's until 2011).
ZONES = [
    ZoneInfo(name)
    for name in (
        "UTC",
        "America/New_York",
        "Europe/London",
        "Europe/Berlin",
        "Australia/Sydney",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "Pacific/Chatham",
        "America/Sao_Paulo",
        "America/Nuuk",
        "America/St_Johns",
    )
]


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime.datetime:
    return datetime.datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def exists(moment: datetime.datetime) -> bool:
    """Whether the wall time of ``moment`` is really shown by its zone's clock."""
    back = moment.astimezone(UTC).astimezone(moment.tzinfo)
    return back.replace(tzinfo=None) == moment.replace(tzinfo=None)


# validate_interval


@pytest.mark.parametrize(
    ("seconds", "minutes", "hours", "total"),
    [
        (1, 2, 3, 10921.0),
        (0, 0, 0, 0.0),
        (0.5, 0, 0, 0.5),
        (0, 1.5, 0, 90.0),
        (0, 0, 0.25, 900.0),
        (-30, 1, 0, 30.0),
        (3600, 0, -1, 0.0),
    ],
)
def test_validate_interval_total(
    seconds: float, minutes: float, hours: float, total: float
) -> None:
    result = validate_interval(seconds, minutes, hours)
    assert result == total
    assert type(result) is float


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seconds": "1"}, "`seconds` must be a number, not 'str'"),
        ({"minutes": None}, "`minutes` must be a number, not 'NoneType'"),
        ({"hours": True}, "`hours` must be a number, not 'bool'"),
        ({"seconds": False}, "`seconds` must be a number, not 'bool'"),
        ({"seconds": datetime.timedelta(1)}, "`seconds` must be a number, not 'timedelta'"),
    ],
)
def test_validate_interval_type_error(kwargs: dict[str, object], message: str) -> None:
    arguments = {"seconds": 0, "minutes": 0, "hours": 0, **kwargs}
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        validate_interval(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seconds": math.nan}, "`seconds` must be a finite number, got nan"),
        ({"minutes": math.inf}, "`minutes` must be a finite number, got inf"),
        ({"hours": -math.inf}, "`hours` must be a finite number, got -inf"),
        (
            {"seconds": -5},
            "the total interval must be a non-negative finite number of seconds, got -5.0",
        ),
        (
            {"seconds": 30, "minutes": -1},
            "the total interval must be a non-negative finite number of seconds, got -30.0",
        ),
        (
            {"hours": 1e306},
            "the total interval must be a non-negative finite number of seconds, got inf",
        ),
    ],
)
def test_validate_interval_value_error(kwargs: dict[str, float], message: str) -> None:
    arguments = {"seconds": 0, "minutes": 0, "hours": 0, **kwargs}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        validate_interval(**arguments)


# normalize_times


def test_normalize_single_time() -> None:
    assert normalize_times(datetime.time(9, tzinfo=NEW_YORK)) == (
        datetime.time(9, tzinfo=NEW_YORK),
    )


def test_normalize_naive_means_utc() -> None:
    (result,) = normalize_times(datetime.time(9, 30))
    assert result == datetime.time(9, 30, tzinfo=UTC)
    assert result.tzinfo is UTC


def test_normalize_drops_duplicates_and_sorts() -> None:
    result = normalize_times(
        [
            datetime.time(18),
            datetime.time(6, tzinfo=UTC),
            datetime.time(18, tzinfo=UTC),
            datetime.time(6),
            datetime.time(0, 0, 0, 1),
        ]
    )
    assert result == (
        datetime.time(0, 0, 0, 1, tzinfo=UTC),
        datetime.time(6, tzinfo=UTC),
        datetime.time(18, tzinfo=UTC),
    )


def test_normalize_keeps_zones_distinct_in_a_stable_order() -> None:
    times = [
        datetime.time(9, tzinfo=NEW_YORK),
        datetime.time(9, tzinfo=LONDON),
        datetime.time(9),
        datetime.time(9, tzinfo=NEW_YORK),
        datetime.time(8, tzinfo=KOLKATA),
    ]
    expected = (
        datetime.time(8, tzinfo=KOLKATA),
        datetime.time(9, tzinfo=NEW_YORK),
        datetime.time(9, tzinfo=LONDON),
        datetime.time(9, tzinfo=UTC),
    )
    result = normalize_times(times)
    assert [(t, t.tzinfo) for t in result] == [(t, t.tzinfo) for t in expected]
    assert normalize_times(times[::-1]) == result


def test_normalize_accepts_a_tuple_and_drops_fold() -> None:
    result = normalize_times((datetime.time(1, 30, tzinfo=NEW_YORK, fold=1),))
    assert result == (datetime.time(1, 30, tzinfo=NEW_YORK),)
    assert result[0].fold == 0


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (9, TypeError, "`time` must be a datetime.time or a sequence of them, not 'int'"),
        ("09:00", TypeError, "`time` must be a datetime.time or a sequence of them, not 'str'"),
        (b"09", TypeError, "`time` must be a datetime.time or a sequence of them, not 'bytes'"),
        (
            {datetime.time(9)},
            TypeError,
            "`time` must be a datetime.time or a sequence of them, not 'set'",
        ),
        ([], ValueError, "`time` must not be empty"),
        (
            [datetime.time(1), datetime.time(2), "03:00"],
            TypeError,
            "`time[2]` must be a datetime.time, not 'str'",
        ),
        (
            (datetime.datetime(2026, 1, 1, 9),),
            TypeError,
            "`time[0]` must be a datetime.time, not 'datetime'",
        ),
    ],
)
def test_normalize_errors(value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        normalize_times(value)  # type: ignore[arg-type]


# resolve_local


def test_resolve_ordinary_time() -> None:
    result = resolve_local(datetime.date(2026, 6, 1), datetime.time(9, tzinfo=NEW_YORK))
    assert result == datetime.datetime(2026, 6, 1, 9, tzinfo=NEW_YORK)
    assert result.tzinfo is NEW_YORK
    assert result.astimezone(UTC) == utc(2026, 6, 1, 13)


def test_resolve_gap_moves_forward_by_the_gap() -> None:
    result = resolve_local(datetime.date(2026, 3, 8), datetime.time(2, 30, tzinfo=NEW_YORK))
    assert (result.hour, result.minute, result.fold) == (3, 30, 0)
    assert result.tzname() == "EDT"
    assert result.astimezone(UTC) == utc(2026, 3, 8, 7, 30)
    assert exists(result)


def test_resolve_ambiguous_takes_second_occurrence() -> None:
    result = resolve_local(datetime.date(2026, 11, 1), datetime.time(1, 30, tzinfo=NEW_YORK))
    assert (result.hour, result.minute, result.fold) == (1, 30, 1)
    assert result.tzname() == "EST"
    assert result.astimezone(UTC) == utc(2026, 11, 1, 6, 30)


def test_resolve_london() -> None:
    spring = resolve_local(datetime.date(2026, 3, 29), datetime.time(1, 15, tzinfo=LONDON))
    assert (spring.hour, spring.minute, spring.tzname()) == (2, 15, "BST")
    assert spring.astimezone(UTC) == utc(2026, 3, 29, 1, 15)

    autumn = resolve_local(datetime.date(2026, 10, 25), datetime.time(1, 15, tzinfo=LONDON))
    assert (autumn.hour, autumn.minute, autumn.fold, autumn.tzname()) == (1, 15, 1, "GMT")
    assert autumn.astimezone(UTC) == utc(2026, 10, 25, 1, 15)


def test_resolve_lord_howe_half_hour_gap() -> None:
    # Lord Howe Island goes from +10:30 to +11:00 at 02:00 local on the first Sunday of October.
    result = resolve_local(datetime.date(2026, 10, 4), datetime.time(2, 10, tzinfo=LORD_HOWE))
    assert (result.hour, result.minute, result.fold) == (2, 40, 0)
    assert result.utcoffset() == datetime.timedelta(hours=11)
    assert result.astimezone(UTC) == utc(2026, 10, 3, 15, 40)
    assert exists(result)


def test_resolve_gap_ending_at_midnight_moves_to_the_next_date() -> None:
    # Nuuk springs forward from 23:00 (-02:00) to 00:00 (-01:00) on 28 March 2026.
    result = resolve_local(datetime.date(2026, 3, 28), datetime.time(23, 30, tzinfo=NUUK))
    assert result == datetime.datetime(2026, 3, 29, 0, 30, tzinfo=NUUK)
    assert result.astimezone(UTC) == utc(2026, 3, 29, 1, 30)


def test_resolve_fixed_offset() -> None:
    plus_545 = datetime.timezone(datetime.timedelta(hours=5, minutes=45))
    result = resolve_local(datetime.date(2026, 3, 8), datetime.time(2, 30, tzinfo=plus_545))
    assert result == datetime.datetime(2026, 3, 8, 2, 30, tzinfo=plus_545)
    assert result.astimezone(UTC) == utc(2026, 3, 7, 20, 45)


def test_resolve_rejects_naive_time() -> None:
    with pytest.raises(
        ValueError,
        match=re.escape("`at` must be an aware datetime.time, got datetime.time(9, 0)"),
    ):
        resolve_local(datetime.date(2026, 1, 1), datetime.time(9))


@settings(max_examples=200, deadline=None)
@given(
    day=st.dates(min_value=datetime.date(1990, 1, 1), max_value=datetime.date(2100, 1, 1)),
    at=st.times(timezones=st.sampled_from(ZONES)),
)
def test_resolve_local_property(day: datetime.date, at: datetime.time) -> None:
    result = resolve_local(day, at)
    tz = at.tzinfo
    wall = datetime.datetime.combine(day, at.replace(tzinfo=None, fold=0))
    first = wall.replace(tzinfo=tz)
    second = wall.replace(tzinfo=tz, fold=1)

    assert result.tzinfo is tz
    assert exists(result)
    if exists(first):
        assert result.replace(tzinfo=None) == wall
        ambiguous = first.utcoffset() != second.utcoffset()
        assert result.fold == ambiguous
        assert result.astimezone(UTC) == (second if ambiguous else first).astimezone(UTC)
    else:
        # PEP 495: inside a gap, fold=0 reads the wall time with the offset from before the
        # jump, which is the instant at which the clock shows the time moved past the gap.
        assert result.astimezone(UTC) == first.astimezone(UTC)
        assert (
            datetime.timedelta(0)
            < result.replace(tzinfo=None) - wall
            <= datetime.timedelta(hours=1)
        )


# next_time_of_day


def test_next_same_day_later() -> None:
    times = normalize_times(datetime.time(12))
    assert next_time_of_day(times, utc(2026, 5, 1, 9)) == utc(2026, 5, 1, 12)


def test_next_already_passed_today_is_tomorrow() -> None:
    times = normalize_times(datetime.time(12))
    assert next_time_of_day(times, utc(2026, 5, 1, 13)) == utc(2026, 5, 2, 12)


def test_next_is_strictly_later() -> None:
    times = normalize_times([datetime.time(12), datetime.time(18)])
    assert next_time_of_day(times, utc(2026, 5, 1, 12)) == utc(2026, 5, 1, 18)
    assert next_time_of_day(times, utc(2026, 5, 1, 18)) == utc(2026, 5, 2, 12)
    just_before = utc(2026, 5, 1, 11, 59, 59, 999999)
    assert next_time_of_day(times, just_before) == utc(2026, 5, 1, 12)


def test_next_walks_through_several_times_a_day() -> None:
    times = normalize_times([datetime.time(h) for h in (18, 0, 6, 12)])
    now = utc(2026, 5, 1, 3)
    runs = []
    for _ in range(6):
        now = next_time_of_day(times, now)
        runs.append(now)
    assert runs == [
        utc(2026, 5, 1, 6),
        utc(2026, 5, 1, 12),
        utc(2026, 5, 1, 18),
        utc(2026, 5, 2, 0),
        utc(2026, 5, 2, 6),
        utc(2026, 5, 2, 12),
    ]


def test_next_wraps_past_midnight_and_year_end() -> None:
    times = normalize_times([datetime.time(0, 5), datetime.time(23, 55)])
    assert next_time_of_day(times, utc(2026, 12, 31, 23, 56)) == utc(2027, 1, 1, 0, 5)
    assert next_time_of_day(times, utc(2026, 12, 31, 0, 5)) == utc(2026, 12, 31, 23, 55)


def test_next_times_in_different_zones() -> None:
    times = normalize_times([datetime.time(9, tzinfo=NEW_YORK), datetime.time(9, tzinfo=KOLKATA)])
    # 09:00 Kolkata is 03:30 UTC, 09:00 New York (EDT) is 13:00 UTC.
    now = utc(2026, 6, 1, 4)
    assert next_time_of_day(times, now) == utc(2026, 6, 1, 13)
    assert next_time_of_day(times, utc(2026, 6, 1, 13)) == utc(2026, 6, 2, 3, 30)


def test_next_accepts_after_in_any_zone() -> None:
    times = normalize_times(datetime.time(12))
    after = datetime.datetime(2026, 5, 1, 23, tzinfo=KOLKATA)  # 17:30 UTC
    assert next_time_of_day(times, after) == utc(2026, 5, 2, 12)


def test_next_compares_instants_not_wall_times() -> None:
    times = normalize_times(datetime.time(6))
    # 01:45 in New York happens twice on 1 November 2026: at 05:45 and at 06:45 UTC.
    first = datetime.datetime(2026, 11, 1, 1, 45, tzinfo=NEW_YORK)
    assert next_time_of_day(times, first) == utc(2026, 11, 1, 6)
    assert next_time_of_day(times, first.replace(fold=1)) == utc(2026, 11, 2, 6)


def test_next_result_is_utc() -> None:
    times = normalize_times([datetime.time(9, tzinfo=NEW_YORK), datetime.time(9, tzinfo=LONDON)])
    result = next_time_of_day(times, datetime.datetime(2026, 1, 1, tzinfo=LORD_HOWE))
    assert result.tzinfo is UTC


def test_next_in_spring_forward_gap_runs_after_the_jump() -> None:
    times = normalize_times(datetime.time(2, 30, tzinfo=NEW_YORK))
    day_before = next_time_of_day(times, utc(2026, 3, 7, 12))
    assert day_before == utc(2026, 3, 8, 7, 30)
    local = day_before.astimezone(NEW_YORK)
    assert (local.hour, local.minute, local.tzname()) == (3, 30, "EDT")
    assert next_time_of_day(times, day_before) == utc(2026, 3, 9, 6, 30)


def test_next_at_fall_back_runs_once() -> None:
    times = normalize_times(datetime.time(1, 30, tzinfo=NEW_YORK))
    # 05:45 UTC is 01:45 EDT, after the first 01:30 but before the second one.
    assert next_time_of_day(times, utc(2026, 11, 1, 5)) == utc(2026, 11, 1, 6, 30)
    assert next_time_of_day(times, utc(2026, 11, 1, 5, 45)) == utc(2026, 11, 1, 6, 30)
    assert next_time_of_day(times, utc(2026, 11, 1, 6, 30)) == utc(2026, 11, 2, 6, 30)


def test_next_finds_yesterdays_time_pushed_past_midnight() -> None:
    times = normalize_times(datetime.time(23, 30, tzinfo=NUUK))
    # 01:10 UTC is 00:10 on 29 March in Nuuk; 23:30 on 28 March was skipped to 00:30.
    assert next_time_of_day(times, utc(2026, 3, 29, 1, 10)) == utc(2026, 3, 29, 1, 30)
    assert next_time_of_day(times, utc(2026, 3, 29, 1, 30)) == utc(2026, 3, 30, 0, 30)


def test_next_at_fall_back_across_midnight() -> None:
    # At 00:01 NDT on 7 November 2010 (02:31 UTC) St. John's went back to 23:01 NST on the 6th,
    # so 23:45 on the 6th and 00:00 on the 7th both happened twice: each runs the second time.
    times = normalize_times(
        [datetime.time(0, 0, tzinfo=ST_JOHNS), datetime.time(23, 45, tzinfo=ST_JOHNS)]
    )
    assert next_time_of_day(times, utc(2010, 11, 7, 2)) == utc(2010, 11, 7, 3, 15)
    # 00:00:30 NDT on the 7th: the next run is the repeated 23:45 of the 6th.
    now = utc(2010, 11, 7, 2, 30, 30)
    runs = []
    for _ in range(3):
        now = next_time_of_day(times, now)
        runs.append(now)
    assert runs == [utc(2010, 11, 7, 3, 15), utc(2010, 11, 7, 3, 30), utc(2010, 11, 8, 3, 15)]


def test_next_daily_loop_keeps_local_time_across_dst() -> None:
    times = normalize_times(datetime.time(9, tzinfo=NEW_YORK))
    now = utc(2026, 3, 6, 15)
    runs = []
    for _ in range(4):
        now = next_time_of_day(times, now)
        runs.append(now)
    # 09:00 EST is 14:00 UTC; from 8 March 09:00 EDT is 13:00 UTC.
    assert runs == [
        utc(2026, 3, 7, 14),
        utc(2026, 3, 8, 13),
        utc(2026, 3, 9, 13),
        utc(2026, 3, 10, 13),
    ]
    assert {run.astimezone(NEW_YORK).time() for run in runs} == {datetime.time(9)}

    autumn = next_time_of_day(times, utc(2026, 10, 31, 14))
    assert autumn == utc(2026, 11, 1, 14)


def test_next_rejects_naive_after() -> None:
    times = normalize_times(datetime.time(12))
    with pytest.raises(ValueError, match=r"^`after` must be an aware datetime$"):
        next_time_of_day(times, datetime.datetime(2026, 5, 1, 9))


# next_time_of_day properties

times_strategy = st.lists(
    st.times(timezones=st.none() | st.sampled_from(ZONES)), min_size=1, max_size=4
).map(normalize_times)
after_strategy = st.datetimes(
    min_value=datetime.datetime(1990, 1, 1),
    max_value=datetime.datetime(2100, 1, 1),
    timezones=st.timezones(),
)


def local_dates(
    at: datetime.time, start: datetime.datetime, end: datetime.datetime
) -> list[datetime.date]:
    """Local dates of ``at``'s zone from the day before ``start`` to the day after ``end``."""
    first = start.astimezone(at.tzinfo).date() - datetime.timedelta(days=1)
    last = end.astimezone(at.tzinfo).date() + datetime.timedelta(days=1)
    return [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]


@settings(max_examples=200, deadline=None)
@given(times=times_strategy, after=after_strategy)
# A fall-back at local midnight (America/Nuuk, 2040): the result is 23:00's second occurrence.
@example(
    times=normalize_times(
        [datetime.time(0, tzinfo=UTC), datetime.time(23, tzinfo=ZoneInfo("America/Nuuk"))]
    ),
    after=datetime.datetime(2040, 10, 28, tzinfo=UTC),
)
def test_next_time_of_day_property(
    times: tuple[datetime.time, ...], after: datetime.datetime
) -> None:
    result = next_time_of_day(times, after)

    assert result > after
    assert result.tzinfo is UTC
    assert result - after <= datetime.timedelta(days=2)

    # Nothing listed is skipped: no occurrence falls strictly between `after` and the result.
    for at in times:
        for day in local_dates(at, after, result):
            occurrence = resolve_local(day, at).astimezone(UTC)
            assert not after < occurrence < result, (at, day, occurrence)

    # The result is itself an occurrence of a listed time; the day before counts too, since a
    # gap just before midnight moves an occurrence onto the next local date.
    # (Compared in UTC: PEP 495 makes a time in a fold unequal to every time in another zone,
    # so comparing the local result itself would fail for a second occurrence.)
    assert any(
        resolve_local(
            result.astimezone(at.tzinfo).date() - datetime.timedelta(days=back), at
        ).astimezone(UTC)
        == result
        for at in times
        for back in (0, 1)
    )


@settings(max_examples=200, deadline=None)
@given(times=times_strategy, after=after_strategy)
def test_next_time_of_day_iterates_strictly(
    times: tuple[datetime.time, ...], after: datetime.datetime
) -> None:
    previous = after
    for _ in range(5):
        current = next_time_of_day(times, previous)
        assert current > previous
        assert current - previous <= datetime.timedelta(days=2)
        previous = current
