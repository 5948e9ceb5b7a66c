"""What the type checkers must infer for schedule values and missed-slot plans.

Checked like ``check_loop_types.py``: ``assert_type`` pins a type, and a line that must be an
error carries both checkers' ignore comments.
"""

from __future__ import annotations

import datetime
import random

from typing_extensions import assert_type

from anytasks import AnyOf, Cron, Daily, Every, Schedule, cron, daily, every
from anytasks._schedules.missed import (
    IntervalPlan,
    Overrun,
    WallPlan,
    check_overrun,
    jittered,
    plan_interval,
    plan_wall,
)

NINE = datetime.time(9)
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


class Mine:
    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        return None


def check_values() -> None:
    assert_type(every(seconds=5), Every)
    assert_type(every(minutes=1).interval, float)
    assert_type(daily(NINE, NINE), Daily)
    assert_type(daily([NINE]), Daily)
    assert_type(cron("* * * * *"), Cron)
    assert_type(daily(NINE) | cron("0 * * * *"), AnyOf)
    assert_type(Mine() | daily(NINE), AnyOf)
    assert_type(daily(NINE).next_after(NOW), "datetime.datetime | None")
    schedules: list[Schedule] = [daily(NINE), cron("0 9 * * *"), Mine(), daily(NINE) | Mine()]
    assert schedules
    daily(NINE) | 3  # type: ignore[operator]  # pyright: ignore[reportOperatorIssue, reportUnusedExpression]
    daily("09:00")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    cron("* * * * *", tz="UTC")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


def check_plans(overrun: Overrun) -> None:
    assert_type(check_overrun("skip"), Overrun)
    assert_type(plan_wall(daily(NINE), None, NOW, overrun, None), WallPlan)
    assert_type(plan_interval(0.0, 1.0, None, 5.0, "coalesce", 2.0), IntervalPlan)
    assert_type(jittered(1.0, 2.0, 0.5, random.random), float)
    assert_type(jittered(NOW, None, 0.5, random.random), datetime.datetime)
    plan_wall(daily(NINE), None, NOW, "late", None)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
