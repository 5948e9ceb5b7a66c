"""The keywords of @loop(): one form of schedule, checked at the decorator, as one frozen value."""

from __future__ import annotations

import datetime
import re
import zoneinfo

import pytest

import anytasks
from anytasks import Cron, Daily, Every, cron, daily, every
from anytasks._engine.options import parse_options

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NINE = datetime.time(9)


async def body() -> None:
    pass


@pytest.mark.parametrize(
    ("keywords", "expected"),
    [
        ({}, every()),
        ({"seconds": 5}, every(seconds=5)),
        ({"minutes": 1, "hours": 2}, every(minutes=1, hours=2)),
        ({"time": NINE}, daily(NINE)),
        ({"time": [NINE, datetime.time(17)]}, daily(NINE, datetime.time(17))),
        ({"cron": "*/5 * * * *"}, cron("*/5 * * * *")),
        ({"cron": "0 9 * * 1-5", "tz": BERLIN}, cron("0 9 * * 1-5", tz=BERLIN)),
        ({"schedule": every(hours=1)}, every(hours=1)),
        ({"schedule": daily(NINE) | cron("0 17 * * *")}, daily(NINE) | cron("0 17 * * *")),
        # Defaults mix with anything.
        ({"seconds": 0, "time": NINE}, daily(NINE)),
        ({"time": None, "cron": None, "schedule": every(seconds=3)}, every(seconds=3)),
    ],
)
def test_each_form_makes_its_schedule_value(keywords: dict[str, object], expected: object) -> None:
    made = anytasks.loop(**keywords)(body)  # type: ignore[call-overload]
    assert made.schedule == expected


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"seconds": 1, "time": NINE}, "cannot mix `time` with `seconds`, `minutes` or `hours`"),
        ({"minutes": 1, "cron": "* * * * *"}, "cannot mix `cron` with `minutes`"),
        ({"time": NINE, "cron": "* * * * *"}, "cannot mix `time` with `cron`"),
        ({"cron": "* * * * *", "schedule": every()}, "cannot mix `cron` with `schedule`"),
        ({"hours": 1, "schedule": every()}, "cannot mix `schedule` with `hours`"),
        ({"tz": BERLIN}, "`tz` goes with `cron` only"),
        ({"time": NINE, "tz": BERLIN}, "`tz` goes with `cron` only"),
        ({"cron": 5}, "`cron` must be a str, not 'int'"),
        ({"schedule": 5}, "`schedule` must be anytasks.every(...) or an object with a next_after"),
        ({"overrun": None, "random": 3}, "`random` must be callable, not 'int'"),
        ({"every": 5}, "@loop() got an unexpected keyword argument 'every'"),
    ],
)
def test_bad_forms_are_type_errors_at_the_decorator(
    keywords: dict[str, object], message: str
) -> None:
    with pytest.raises(TypeError, match=re.escape(message)):
        anytasks.loop(**keywords)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"overrun": "later"}, "`overrun` must be"),
        ({"grace": -1}, "`grace` must be a non-negative finite number or None, got -1"),
        ({"jitter": float("nan")}, "`jitter` must be a non-negative finite number"),
        ({"cron": "61 * * * *"}, "`cron` expression '61 * * * *' is invalid"),
    ],
)
def test_bad_values_are_value_errors_at_the_decorator(
    keywords: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        anytasks.loop(**keywords)  # type: ignore[call-overload]


def test_options_are_one_frozen_value_shared_by_instance_copies() -> None:
    class Cog:
        @anytasks.loop(seconds=5, count=3, overrun="skip", grace=1.5, jitter=0.5)
        async def tick(self) -> None:
            pass

    first, second = Cog(), Cog()
    schedule = Cog.tick.schedule
    assert first.tick.schedule is schedule
    assert second.tick.schedule is schedule
    options = parse_options({"seconds": 5, "count": 3, "overrun": "skip", "grace": 1.5})
    assert (options.count, options.overrun, options.grace) == (3, "skip", 1.5)
    with pytest.raises(AttributeError, match="LoopOptions is frozen: cannot set 'count'"):
        options.count = 4  # type: ignore[misc]
    # Setting a setting makes a new value for that loop only.
    first.tick.count = 4
    assert first.tick.count == 4
    assert second.tick.count == 3
    with pytest.raises(ValueError, match="`count` must be a positive int or None, got 0"):
        first.tick.count = 0
    assert first.tick.count == 4


def test_overrun_defaults_by_kind_of_schedule() -> None:
    assert parse_options({"seconds": 1}).overrun_policy == "burst"
    assert parse_options({"time": NINE}).overrun_policy == "coalesce"
    assert parse_options({"cron": "* * * * *"}).overrun_policy == "coalesce"
    assert parse_options({"cron": "* * * * *", "overrun": "burst"}).overrun_policy == "burst"


def test_change_interval_switches_between_every_kind() -> None:
    made = anytasks.loop(seconds=5)(body)
    made.change_interval(cron="0 * * * *", tz=BERLIN)
    assert isinstance(made.schedule, Cron)
    assert (made.seconds, made.time) == (None, None)
    made.change_interval(time=NINE)
    assert isinstance(made.schedule, Daily)
    assert made.time is not None
    made.change_interval(schedule=every(minutes=2))
    assert isinstance(made.schedule, Every)
    assert made.minutes == 2
    with pytest.raises(TypeError, match="cannot mix `time` with `seconds`"):
        made.change_interval(seconds=1, time=NINE)  # type: ignore[call-overload]
    assert made.schedule == every(minutes=2)


def test_a_user_schedule_object_is_accepted() -> None:
    class Never:
        def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
            return None

    never = Never()
    made = anytasks.loop(schedule=never)(body)
    assert made.schedule is never
    assert made.preview(3) == []
