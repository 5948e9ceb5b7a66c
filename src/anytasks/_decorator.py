"""``@anytasks.loop(...)``: the decorator that turns a function into a Loop."""

from __future__ import annotations

import datetime
import inspect
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, cast, overload

from ._engine.options import AnySchedule, CommonKeywords, parse_options
from ._engine.threads import check_body
from ._frozen import replace
from ._loop import Loop, function_name, loop_from_options

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._engine.retry import BackoffSpec
    from ._outcome import ErrorAction, TimeoutAction
    from ._schedules.missed import Overrun
    from .lease import Lease

_P = ParamSpec("_P")
_R = TypeVar("_R")


class LoopDecorator(Protocol):
    """What ``@loop(...)`` returns: it makes a :class:`Loop` of a function, ``async def`` or a
    plain ``def`` (whose calls then run in a worker thread)."""

    @overload
    def __call__(self, func: Callable[_P, Coroutine[Any, Any, _R]], /) -> Loop[_P, _R]: ...

    @overload
    def __call__(self, func: Callable[_P, _R], /) -> Loop[_P, _R]: ...


@overload
def loop(
    *,
    seconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    time: None = None,
    **options: Unpack[CommonKeywords],
) -> LoopDecorator: ...


@overload
def loop(
    *, time: datetime.time | Sequence[datetime.time], **options: Unpack[CommonKeywords]
) -> LoopDecorator: ...


@overload
def loop(
    *, cron: str, tz: datetime.tzinfo | None = None, **options: Unpack[CommonKeywords]
) -> LoopDecorator: ...


@overload
def loop(*, schedule: AnySchedule, **options: Unpack[CommonKeywords]) -> LoopDecorator: ...


def loop(**options: Any) -> LoopDecorator:
    """Turn a function into a :class:`Loop` that runs it on a schedule.

    The function is a coroutine function (``async def``), or a plain ``def``: then each call
    runs in a worker thread, so that a blocking body does not hold the event loop up (see
    :ref:`blocking-bodies`).

    With ``seconds``/``minutes``/``hours`` the body runs at once, then every
    interval, on a fixed grid of the event loop's monotonic clock (start + k *
    interval): no drift, and an overrun body is followed by the missed runs
    back to back until the loop is on time again. With ``time`` it runs at the
    listed times of day (wall clock; naive times mean UTC). Exactly one form of
    schedule may be given.

    :param seconds: seconds between iterations.
    :param minutes: minutes between iterations.
    :param hours: hours between iterations.
    :param time: one :class:`datetime.time` or a non-empty sequence of them:
        :func:`~anytasks.daily`.
    :param cron: a cron expression (5 fields, or 6 with seconds first):
        :func:`~anytasks.cron`; needs ``anytasks[cron]``.
    :param tz: the time zone of ``cron`` (a :class:`datetime.tzinfo`; default UTC).
    :param schedule: a schedule value: :func:`~anytasks.every`,
        :func:`~anytasks.daily`, or any object with a
        ``next_after(after)`` method (see :class:`~anytasks.Schedule`).
    :param count: how many iterations to run; ``None`` for no limit.
    :param reconnect: retry the iteration with exponential backoff when the body
        raises a handled exception (see :meth:`Loop.add_exception_type`).
    :param name: the name used for the task and in log messages.
    :param overrun: what happens to slots missed while the body ran long or the
        machine was suspended: ``"burst"`` runs them back to back (the default of
        intervals), ``"skip"`` drops them and waits for the next slot to come,
        ``"coalesce"`` runs once for all of them (the default of wall-clock
        schedules).
    :param grace: a slot that could only start more than ``grace`` seconds late is
        skipped; ``None`` (the default) for no limit.
    :param jitter: each run starts a uniformly random ``[0, jitter)`` seconds after its
        slot, never at or past the next slot; the grid does not move.
    :param random: where jitter draws from: a function returning a float in ``[0, 1)``,
        such as ``random.Random(seed).random``; default :func:`random.random`.
    :param timeout: each call of the body runs under this deadline, in seconds (a real
        cancellation); ``None`` (the default) for none.
    :param on_timeout: what an iteration that runs past ``timeout`` leads to: ``"error"``
        (the default: an :class:`~anytasks.IterationTimeout`, unhandled), ``"skip"`` (a
        warning; the iteration counts as run and as skipped, and the loop goes on to its next
        slot) or ``"retry"`` (retried with backoff, as a handled exception).
    :param backoff: how retries wait: a function making a fresh backoff (an object with a
        ``delay()`` method) for each run, or an :class:`~anytasks.ExponentialBackoff` whose
        configuration (base, cap, integral) each run copies. Default: discord.py's,
        ``ExponentialBackoff()``. A delay that is not a non-negative, finite int or float
        fails the run with a :class:`TypeError` or :class:`ValueError`, raised from the
        exception that was to be retried.
    :param max_retries: after this many retries in a row within an iteration, a handled
        exception counts as unhandled; ``None`` (the default) for no limit.
    :param on_error: what an iteration's unhandled exception leads to: ``"raise"`` (the
        default, as in discord.py: it ends the run) or ``"continue"`` (the ``error`` hook
        reports it, and the loop goes on to its next slot; :attr:`LoopEnd.errors
        <anytasks.LoopEnd.errors>` counts them).
    :param exclusive: a lease (:class:`anytasks.lease.SQLiteLease` for one host,
        :class:`~anytasks.lease.PostgresLease` or :class:`~anytasks.lease.RedisLease` for
        several, :class:`~anytasks.lease.MemoryLease` for one process, or your own
        :class:`~anytasks.lease.Lease`) that makes each slot run on one replica only; an
        interval then runs on the grid aligned to the Unix epoch. See
        :func:`~anytasks.current_lease`.
    :raises TypeError: for arguments of the wrong type, two forms of schedule
        mixed, or a decorated object that is not a coroutine function.
    :raises ValueError: for a negative, NaN or infinite interval, an empty
        ``time`` list, a ``count`` below 1, a ``timeout`` that is not positive and
        finite, or a negative ``max_retries``.

    .. versionchanged:: 0.2
       ``timeout``, ``on_timeout``, ``backoff``, ``max_retries``, ``on_error`` and
       ``exclusive``.

    Synopsis::

        @anytasks.loop(seconds=5)
        async def heartbeat():
            await send_heartbeat()
    """
    # Validate here, so that a bad argument fails at the decorator line even
    # before a function is decorated; the function's name completes the options.
    parsed = parse_options(options)

    # The options named after the last function decorated: a decorator applied to many
    # functions of one name (a factory of loops) makes them once.
    named = parsed

    def decorator(func: Callable[..., Any]) -> Loop[..., Any]:
        nonlocal named
        check_body(func, "@loop()")
        name = parsed.name or f"anytasks: {function_name(func, '__qualname__')}"
        options = named
        if options.name != name:
            options = named = replace(parsed, name=name)
        return loop_from_options(func, options)

    return cast("LoopDecorator", decorator)


def _keywords(
    *,
    seconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    time: datetime.time | Sequence[datetime.time] | None = None,
    cron: str | None = None,
    tz: datetime.tzinfo | None = None,
    schedule: AnySchedule | None = None,
    count: int | None = None,
    reconnect: bool = True,
    name: str | None = None,
    overrun: Overrun | None = None,
    grace: float | None = None,
    jitter: float = 0,
    random: Callable[[], float] | None = None,
    timeout: float | None = None,
    on_timeout: TimeoutAction = "error",
    backoff: BackoffSpec | None = None,
    max_retries: int | None = None,
    on_error: ErrorAction = "raise",
    exclusive: Lease | None = None,
) -> LoopDecorator:
    raise NotImplementedError  # never called: only its signature is used, below


# The signature that help(), inspect.signature() and the API docs show. The implementation
# takes **options, so that an unknown keyword fails with the message that names `@loop()`
# and the forms of schedule are checked in the order the caller wrote them; the overloads
# above are what type checkers read. tests/test_api.py holds this list to LoopKeywords.
loop.__signature__ = inspect.signature(_keywords)  # type: ignore[attr-defined]
