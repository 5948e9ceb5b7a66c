"""A loop's settings as one frozen value, validated once, from the keywords of ``@loop(...)``.

Every form of schedule that ``@loop``, ``Loop(...)`` and ``change_interval`` accept is turned
into a schedule value here, and nowhere else: ``seconds``/``minutes``/``hours`` into
:func:`~anytasks.every`, ``time=`` into :func:`~anytasks.daily`, ``cron=`` (with ``tz=``) into
:func:`~anytasks.cron`, or ``schedule=`` as given.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict, final

from .._checks import check_optional_count
from .._frozen import Frozen
from .._schedules.cron import cron
from .._schedules.daily import daily, normalize_times
from .._schedules.every import Every, every
from .._schedules.protocol import Schedule
from .._schedules.union import Checked, WallClock

if TYPE_CHECKING:
    from .._outcome import ErrorAction, TimeoutAction
    from .._schedules.missed import Overrun
    from ..lease import Lease
    from .retry import BackoffSpec

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
    on_error: ErrorAction


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
class LoopOptions(Frozen):
    """Everything a loop was configured with, checked (built by :func:`parse_options`), and
    what follows from it, derived once: the run, ``ticks()`` and ``preview()`` read the same
    value, so they cannot disagree."""

    __slots__ = (
        "backoff",
        "count",
        "exclusive",
        "grace",
        "interval",
        "jitter",
        "max_retries",
        "name",
        "on_error",
        "on_timeout",
        "overrun",
        "overrun_policy",
        "plain",
        "plans_missed",
        "random",
        "reconnect",
        "schedule",
        "timeout",
        "wall_schedule",
    )
    __match_args__ = (
        "schedule",
        "count",
        "reconnect",
        "name",
        "overrun",
        "grace",
        "jitter",
        "random",
        "timeout",
        "on_timeout",
        "backoff",
        "max_retries",
        "exclusive",
        "on_error",
    )

    schedule: AnySchedule
    count: int | None
    reconnect: bool
    #: None: named after the function, which the options do not know.
    name: str | None
    #: None: the default of the kind of schedule (see `overrun_policy`).
    overrun: Overrun | None
    grace: float | None
    jitter: float
    #: Where jitter draws from; None: random.random (seeded under anytasks.testing).
    random: Callable[[], float] | None
    #: The bound on each call of the body, and what passing it leads to.
    timeout: float | None
    on_timeout: TimeoutAction
    #: How retries wait (None: discord.py's backoff), and how many in a row before the error
    #: counts as unhandled (None: no limit).
    backoff: BackoffSpec | None
    max_retries: int | None
    #: The lease that makes each slot run on one replica only (see .exclusive).
    exclusive: Lease | None
    #: What an iteration's unhandled error leads to: the end of the run, or the next slot.
    on_error: ErrorAction

    # -- derived --
    #: The wall-clock schedule the loop follows, or None for an interval on the event loop's
    #: monotonic clock. An exclusive loop follows the wall clock, so that replicas agree on its
    #: slots: an interval on the grid aligned to the Unix epoch (Every.next_after). A schedule
    #: of the user's own is followed through a check of its answers.
    wall_schedule: Schedule | None
    #: The interval in seconds of a loop on the monotonic clock; None for a wall-clock one.
    interval: float | None
    #: ``overrun``, or its default: ``"burst"`` for intervals, ``"coalesce"`` otherwise.
    overrun_policy: Overrun
    #: Whether missed slots are planned (by ``overrun`` and ``grace``) rather than all run
    #: back to back (``"burst"`` with no grace): read at every iteration that is behind.
    plans_missed: bool
    #: Neither a timeout nor a lease: an iteration is ``await body()`` (unless listened to).
    plain: bool

    def __init__(
        self,
        schedule: AnySchedule,
        count: int | None = None,
        reconnect: bool = True,
        name: str | None = None,
        overrun: Overrun | None = None,
        grace: float | None = None,
        jitter: float = 0.0,
        random: Callable[[], float] | None = None,
        timeout: float | None = None,
        on_timeout: TimeoutAction = "error",
        backoff: BackoffSpec | None = None,
        max_retries: int | None = None,
        exclusive: Lease | None = None,
        on_error: ErrorAction = "raise",
    ) -> None:
        check_common(count, reconnect, name)
        wall: Schedule | None
        if isinstance(schedule, Every):
            wall = schedule if exclusive is not None else None
        elif isinstance(schedule, WallClock):
            wall = schedule
        else:
            wall = Checked(schedule)
        policy: Overrun = overrun or ("burst" if isinstance(schedule, Every) else "coalesce")
        self._set(
            schedule=schedule,
            count=count,
            reconnect=reconnect,
            name=name,
            overrun=overrun,
            grace=grace,
            jitter=jitter,
            random=random,
            timeout=timeout,
            on_timeout=on_timeout,
            backoff=backoff,
            max_retries=max_retries,
            exclusive=exclusive,
            on_error=on_error,
            wall_schedule=wall,
            interval=schedule.interval if wall is None and isinstance(schedule, Every) else None,
            overrun_policy=policy,
            plans_missed=policy != "burst" or grace is not None,
            plain=timeout is None and exclusive is None,
        )

    def __repr__(self) -> str:
        given = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
        return f"LoopOptions({given})"


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
    from .._schedules.missed import check_grace, check_jitter, check_overrun

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
    return LoopOptions(parse_schedule(forms), **common)


_RETRY_KEYS = frozenset({"timeout", "on_timeout", "backoff", "max_retries", "on_error"})


def _check_retry(common: dict[str, Any]) -> None:
    from .retry import (
        check_backoff,
        check_max_retries,
        check_on_error,
        check_on_timeout,
        check_timeout,
    )

    if "timeout" in common:
        common["timeout"] = check_timeout(common["timeout"])
    if "on_timeout" in common:
        common["on_timeout"] = check_on_timeout(common["on_timeout"])
        if common["on_timeout"] != "error" and common.get("timeout") is None:
            raise TypeError(f"`on_timeout={common['on_timeout']!r}` needs a `timeout`")
    if "on_error" in common:
        common["on_error"] = check_on_error(common["on_error"])
    if "backoff" in common:
        common["backoff"] = check_backoff(common["backoff"])
    if "max_retries" in common:
        common["max_retries"] = check_max_retries(common["max_retries"])


def _check_exclusive(lease: object) -> Lease:
    from ..lease import Lease

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
    check_optional_count("count", count, positive=True)
    if not isinstance(reconnect, bool):
        raise TypeError(f"`reconnect` must be a bool, not {type(reconnect).__name__!r}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"`name` must be a str or None, not {type(name).__name__!r}")
