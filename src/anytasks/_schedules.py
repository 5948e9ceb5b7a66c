"""Schedule values (placeholder until the schedules branch lands; same names and attributes)."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Protocol, final, runtime_checkable

from ._schedule import next_time_of_day, normalize_times, validate_interval


@runtime_checkable
class Schedule(Protocol):
    def next_after(self, after: datetime.datetime) -> datetime.datetime | None: ...


@final
@dataclasses.dataclass(frozen=True)
class Every:
    seconds: float = 0
    minutes: float = 0
    hours: float = 0

    def __post_init__(self) -> None:
        validate_interval(self.seconds, self.minutes, self.hours)

    @property
    def interval(self) -> float:
        return validate_interval(self.seconds, self.minutes, self.hours)


@final
@dataclasses.dataclass(frozen=True)
class Daily:
    times: tuple[datetime.time, ...]

    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        return next_time_of_day(self.times, after)


def every(seconds: float = 0, minutes: float = 0, hours: float = 0) -> Every:
    return Every(seconds, minutes, hours)


def daily(*times: datetime.time) -> Daily:
    return Daily(normalize_times(times))
