"""A loop's settings as one frozen value, validated once, from the keywords of ``@loop(...)``.

Every form of schedule that ``@loop``, ``Loop(...)`` and ``change_interval`` accept is turned
into a schedule value here, and nowhere else: ``seconds``/``minutes``/``hours`` into
:func:`~anytasks.every`, ``time=`` into :func:`~anytasks.daily`, ``cron=`` (with ``tz=``) into
:func:`~anytasks.cron`, or ``schedule=`` as given.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict, final

from ._cron import cron
from ._schedule import normalize_times
from ._schedules import Checked, Every, Schedule, WallClock, daily, every

if TYPE_CHECKING:
    from ._missed import Overrun
    from ._outcome import TimeoutAction
    from ._retry import BackoffSpec
    from .lease import Lease

#: What a loop runs on: the monotonic grid of :class:`Every`, or a wall-clock :class:`Schedule`.
AnySchedule = Every | Schedule


class CommonKeywords(TypedDict, total=False):
    """The settings of ``@loop(...)`` that go with every form of schedule."""

    count: int | None
    reconnect: bool
    name: str | None
    overrun: Overrun | None
    grace: float | None
    jitter: float
    random: Callable[[], float] | None
    timeout: float | None
    on_timeout: TimeoutAction
    backoff: BackoffSpec | None
    max_retries: int | None
    exclusive: Lease | None


class ScheduleKeywords(TypedDict, total=False):
    """The forms of schedule: exactly one of them, or none for ``seconds=0``."""

    seconds: float
    minutes: float
    hours: float
    time: datetime.time | Sequence[datetime.time] | None
    cron: str | None
    tz: datetime.tzinfo | None
    schedule: AnySchedule | None


class LoopKeywords(CommonKeywords, ScheduleKeywords, total=False):
    """Every keyword of ``@loop(...)`` and ``Loop(...)``."""


_INTERVAL_KEYS = ("seconds", "minutes", "hours")
_SCHEDULE_KEYS = frozenset(ScheduleKeywords.__annotations__)
_COMMON_KEYS = frozenset(CommonKeywords.__annotations__)


@final
@dataclasses.dataclass(frozen=True, slots=True)
class LoopOptions:
    """Everything a loop was configured with, checked: built by :func:`parse_options`."""

    schedule: AnySchedule
    count: int | None = None
    reconnect: bool = True
    # None: named after the function, which the options do not know.
    name: str | None = None
    # None: the default of the kind of schedule (see `overrun_policy`).
    overrun: Overrun | None = None
    grace: float | None = None
    jitter: float = 0.0
    # Where jitter draws from; None: random.random (seeded under anytasks.testing).
    random: Callable[[], float] | None = None
    # The bound on each call of the body, and what passing it leads to.
    timeout: float | None = None
    on_timeout: TimeoutAction = "error"
    # How retries wait (None: discord.py's backoff), and how many in a row before the error
    # counts as unhandled (None: no limit).
    backoff: BackoffSpec | None = None
    max_retries: int | None = None
    # The lease that makes each slot run on one replica only (see _exclusive).
    exclusive: Lease | None = None
    # Derived in __post_init__: the wall-clock schedule the loop follows, or None for an
    # interval on the event loop's monotonic clock.
    wall_schedule: Schedule | None = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        schedule = self.schedule
        wall: Schedule | None
        if isinstance(schedule, Every):
            # An exclusive loop follows the wall clock, so that replicas agree on its slots:
            # an interval on the grid aligned to the Unix epoch (Every.next_after).
            wall = schedule if self.exclusive is not None else None
        elif isinstance(schedule, WallClock):
            wall = schedule
        else:
            wall = Checked(schedule)
        object.__setattr__(self, "wall_schedule", wall)

    @property
    def overrun_policy(self) -> Overrun:
        """``overrun``, or its default: ``"burst"`` for intervals, ``"coalesce"`` otherwise."""
        if self.overrun is not None:
            return self.overrun
        return "burst" if isinstance(self.schedule, Every) else "coalesce"

    @property
    def plans_missed(self) -> bool:
        """Whether slots missed while behind are planned (by ``overrun`` and ``grace``) rather
        than all run back to back (``"burst"`` with no grace)."""
        return self.overrun_policy != "burst" or self.grace is not None

    def replace(self, **changes: Any) -> LoopOptions:
        """A copy with ``changes``, each checked as :func:`parse_options` checks it."""
        options = dataclasses.replace(self, **changes)
        check_common(options.count, options.reconnect, options.name)
        return options


def parse_options(keywords: dict[str, Any], where: str = "@loop()") -> LoopOptions:
    """Check the keywords of ``@loop(...)`` (or of ``where``, which errors name) and turn them
    into :class:`LoopOptions`.

    :raises TypeError: for an unknown keyword, a value of the wrong type, or two forms of
        schedule at once.
    :raises ValueError: for a value out of range.
    """
    unknown = sorted(set(keywords) - _SCHEDULE_KEYS - _COMMON_KEYS)
    if unknown:
        raise TypeError(f"{where} got an unexpected keyword argument {unknown[0]!r}")
    # In the order given, so that an error names the forms as the caller wrote them.
    common = {key: value for key, value in keywords.items() if key in _COMMON_KEYS}
    forms = {key: value for key, value in keywords.items() if key in _SCHEDULE_KEYS}
    # Imported here: most loops set none of these, and `import anytasks` stays small.
    from ._missed import check_grace, check_jitter, check_overrun

    if common.get("overrun") is not None:
        common["overrun"] = check_overrun(common["overrun"])
    if "grace" in common:
        common["grace"] = check_grace(common["grace"])
    if "jitter" in common:
        common["jitter"] = check_jitter(common["jitter"])
    if common.get("random") is not None and not callable(common["random"]):
        raise TypeError(f"`random` must be callable, not {type(common['random']).__name__!r}")
    if _RETRY_KEYS & common.keys():
        _check_retry(common)
    if common.get("exclusive") is not None:
        common["exclusive"] = _check_exclusive(common["exclusive"])
    options = LoopOptions(parse_schedule(forms), **common)
    check_common(options.count, options.reconnect, options.name)
    return options


_RETRY_KEYS = frozenset({"timeout", "on_timeout", "backoff", "max_retries"})


def _check_retry(common: dict[str, Any]) -> None:
    from ._retry import check_backoff, check_max_retries, check_on_timeout, check_timeout

    if "timeout" in common:
        common["timeout"] = check_timeout(common["timeout"])
    if "on_timeout" in common:
        common["on_timeout"] = check_on_timeout(common["on_timeout"])
        if common["on_timeout"] != "error" and common.get("timeout") is None:
            raise TypeError(f"`on_timeout={common['on_timeout']!r}` needs a `timeout`")
    if "backoff" in common:
        common["backoff"] = check_backoff(common["backoff"])
    if "max_retries" in common:
        common["max_retries"] = check_max_retries(common["max_retries"])


def _check_exclusive(lease: object) -> Lease:
    from .lease import Lease

    if not isinstance(lease, Lease):
        raise TypeError(
            "`exclusive` must be a lease (anytasks.lease.SQLiteLease, PostgresLease, "
            f"RedisLease, MemoryLease or your own Lease), not {type(lease).__name__!r}"
        )
    return lease


def parse_schedule(forms: dict[str, Any]) -> AnySchedule:
    """The schedule value of the ``seconds``/``time``/``schedule`` keywords (exactly one form)."""
    given = [key for key, value in forms.items() if key != "tz" and not _is_unset(key, value)]
    interval = [key for key in given if key in _INTERVAL_KEYS]
    others = [key for key in given if key not in _INTERVAL_KEYS]
    if len(others) > 1 or (others and interval):
        if others == ["time"]:
            # The message of earlier versions, kept for code that matches on it.
            raise TypeError("cannot mix `time` with `seconds`, `minutes` or `hours`")
        first, second = (*others, *interval)[:2]
        raise TypeError(f"cannot mix `{first}` with `{second}`: give one form of schedule")
    if forms.get("tz") is not None and others != ["cron"]:
        raise TypeError("`tz` goes with `cron` only (the zone of a time of day is its tzinfo)")
    if others == ["time"]:
        return daily(*normalize_times(forms["time"]))
    if others == ["cron"]:
        expr = forms["cron"]
        if not isinstance(expr, str):
            raise TypeError(f"`cron` must be a str, not {type(expr).__name__!r}")
        return cron(expr, forms.get("tz"))
    if others == ["schedule"]:
        return check_schedule(forms["schedule"])
    return every(*(forms.get(key, 0) for key in _INTERVAL_KEYS))


def _is_unset(key: str, value: object) -> bool:
    # `seconds=0` and `time=None` are the defaults, which mix with anything.
    if key in _INTERVAL_KEYS:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0
    return value is None


def check_schedule(schedule: object) -> AnySchedule:
    """``schedule`` if it is an :class:`Every` or has ``next_after``, else a TypeError."""
    if isinstance(schedule, (Every, Schedule)):
        return schedule
    raise TypeError(
        "`schedule` must be anytasks.every(...) or an object with a next_after(after) method, "
        f"not {type(schedule).__name__!r}"
    )


def check_common(count: object, reconnect: object, name: object) -> None:
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError(f"`count` must be an int or None, not {type(count).__name__!r}")
        if count <= 0:
            raise ValueError(f"`count` must be positive or None, got {count!r}")
    if not isinstance(reconnect, bool):
        raise TypeError(f"`reconnect` must be a bool, not {type(reconnect).__name__!r}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"`name` must be a str or None, not {type(name).__name__!r}")
