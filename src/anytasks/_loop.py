"""The ``Loop``: the public face of a coroutine function run over and over on a schedule.

A ``Loop`` holds what a loop *is* (its function, :class:`~anytasks._options.LoopOptions`,
hooks, exception types) and passes its controls on to the
:class:`~anytasks._runner.Runner` of the run in progress, which owns everything that exists
only while the loop runs.
"""

from __future__ import annotations

import datetime
import functools
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    TypeVar,
    cast,
    final,
    overload,
)

import anyio
from anyio.abc import TaskStatus

from ._backend import running_asyncio_loop, wall_now
from ._cadence import preview
from ._cancellation import new_fallback_task
from ._handled import check_exception_types, default_exception_types
from ._host import current_host_task_group
from ._options import (
    AnySchedule,
    CommonKeywords,
    LoopKeywords,
    LoopOptions,
    parse_options,
    parse_schedule,
)
from ._runner import Runner, in_own_run
from ._schedules import Daily, Every
from ._state import LoopState
from ._ticks import Ticks

if TYPE_CHECKING:
    import asyncio

    from typing_extensions import Self, Unpack

_P = ParamSpec("_P")
_P2 = ParamSpec("_P2")
_R = TypeVar("_R")
_S = TypeVar("_S")
_HookT = TypeVar("_HookT", bound=Callable[..., Coroutine[Any, Any, Any]])

logger = logging.getLogger("anytasks")

# Makes "is it running? then it is mine" one step for threads that share a Loop.
_start_lock = threading.Lock()


def _check_coroutine_function(func: object, where: str) -> None:
    if not inspect.iscoroutinefunction(func):
        raise TypeError(f"{where} needs a coroutine function (async def), got {func!r}")


def _function_name(func: Callable[..., Any], attribute: str) -> str:
    """``__name__`` or ``__qualname__`` of ``func``, seen through functools.partial."""
    while isinstance(func, functools.partial):
        func = func.func
    return str(getattr(func, attribute, type(func).__name__))


@final
class Loop(Generic[_P, _R]):
    """A background loop that calls a coroutine function on a schedule.

    Create one with :func:`loop`. Start it with :meth:`run` (in the calling task,
    for example from a task group), with :meth:`start` (inside :func:`background`,
    or as an :class:`asyncio.Task` on asyncio), and end it with :meth:`stop` or
    :meth:`cancel`.

    Declared on a class, each instance gets its own copy of the loop (with the
    hooks registered on the class), and the body and hooks receive ``self``.
    """

    __slots__ = (
        "__weakref__",
        "_after_loop",
        "_attr_name",
        "_before_loop",
        "_body",
        "_error",
        "_exception_types",
        "_failed",
        "_instance",
        "_options",
        "_run",
        "coro",
    )

    coro: Callable[..., Coroutine[Any, Any, _R]]
    """The decorated coroutine function, as given to :func:`loop`.

    For a loop declared on a class it still takes ``self``, also in each instance's
    copy of the loop.
    """

    def __init__(
        self, coro: Callable[_P, Coroutine[Any, Any, _R]], **options: Unpack[LoopKeywords]
    ) -> None:
        _check_coroutine_function(coro, "@loop()")
        parsed = parse_options(dict(options))
        if parsed.name is None:
            parsed = parsed.replace(name=f"anytasks: {_function_name(coro, '__qualname__')}")
        self._setup(coro, parsed)

    def _setup(self, coro: Callable[..., Coroutine[Any, Any, _R]], options: LoopOptions) -> None:
        # The function as decorated: for a copy bound to an instance, it still takes
        # ``self``, which _P no longer has, hence the loose parameters.
        self.coro = coro
        self._options = options
        self._body: Callable[..., Coroutine[Any, Any, _R]] = coro
        self._instance: object = None
        self._attr_name = _function_name(coro, "__name__")
        self._before_loop: Callable[..., Awaitable[Any]] | None = None
        self._after_loop: Callable[..., Awaitable[Any]] | None = None
        self._error: Callable[..., Awaitable[Any]] | None = None
        self._exception_types = default_exception_types()
        self._run: Runner | None = None
        self._failed = False

    # -- class attribute protocol ------------------------------------------------

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._attr_name = name

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Self: ...

    @overload
    def __get__(
        self: Loop[Concatenate[_S, _P2], _R], instance: _S, owner: type[Any] | None = None
    ) -> Loop[_P2, _R]: ...

    def __get__(self, instance: object, owner: type[Any] | None = None) -> Any:
        if instance is None:
            return self
        # Each instance gets its own loop, cached in the instance's __dict__ (which
        # wins over this non-data descriptor from then on), as discord.py does. The
        # options are one frozen value: shared, not copied keyword by keyword.
        copy = _loop_from_options(self.coro, self._options)
        copy._instance = instance
        get = getattr(self.coro, "__get__", None)
        # functools.partial is no descriptor: bind the instance by hand.
        copy._body = (
            get(instance, owner) if get is not None else functools.partial(self.coro, instance)
        )
        copy._attr_name = self._attr_name
        copy._before_loop = self._before_loop
        copy._after_loop = self._after_loop
        copy._error = self._error
        copy._exception_types = self._exception_types
        try:
            instance.__dict__[self._attr_name] = copy
        except AttributeError:
            # Without the cache, every access would make a new loop, and cancel()
            # would silently miss the loop that start() started.
            raise TypeError(
                f"{type(instance).__name__} instances have no __dict__ to keep their "
                f"copy of loop {self._attr_name!r} in; add '__dict__' to __slots__"
            ) from None
        return copy

    # -- settings ------------------------------------------------------------------

    @property
    def count(self) -> int | None:
        """How many iterations a run has before it ends; ``None`` for no limit.

        Settable; a new value applies to the run in progress at once.
        """
        return self._options.count

    @count.setter
    def count(self, value: int | None) -> None:
        self._set_options(self._options.replace(count=value))

    @property
    def reconnect(self) -> bool:
        """Whether handled exceptions are retried with backoff (see :meth:`add_exception_type`)."""
        return self._options.reconnect

    @reconnect.setter
    def reconnect(self, value: bool) -> None:
        self._set_options(self._options.replace(reconnect=value))

    @property
    def name(self) -> str:
        """The name of the loop's task and of the loop in log messages.

        By default ``"anytasks: "`` followed by the function's qualified name.
        """
        return cast("str", self._options.name)

    @name.setter
    def name(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"`name` must be a str, not {type(value).__name__!r}")
        self._set_options(self._options.replace(name=value))

    @property
    def schedule(self) -> AnySchedule:
        """What the loop runs on: :func:`~anytasks.every` or a wall-clock schedule.

        .. versionadded:: 0.2
        """
        return self._options.schedule

    @property
    def seconds(self) -> float | None:
        """The seconds part of the interval; ``None`` for a wall-clock schedule."""
        schedule = self._options.schedule
        return schedule.seconds if isinstance(schedule, Every) else None

    @property
    def minutes(self) -> float | None:
        """The minutes part of the interval; ``None`` for a wall-clock schedule."""
        schedule = self._options.schedule
        return schedule.minutes if isinstance(schedule, Every) else None

    @property
    def hours(self) -> float | None:
        """The hours part of the interval; ``None`` for a wall-clock schedule."""
        schedule = self._options.schedule
        return schedule.hours if isinstance(schedule, Every) else None

    @property
    def time(self) -> list[datetime.time] | None:
        """The times of day the loop runs at (sorted, aware); ``None`` for other schedules."""
        schedule = self._options.schedule
        return list(schedule.times) if isinstance(schedule, Daily) else None

    def _set_options(self, options: LoopOptions) -> None:
        run = self._run
        if run is not None:
            self._check_thread(run, "change_interval")
        self._options = options
        if run is not None:
            run.apply(options)

    # -- read-only state -----------------------------------------------------------

    @property
    def state(self) -> LoopState:
        """What the loop is doing: see :class:`~anytasks.LoopState`.

        .. versionadded:: 0.2
        """
        run = self._run
        return LoopState.IDLE if run is None else run.state

    @property
    def current_loop(self) -> int:
        """How many iterations have completed in the current run; 0 when not running."""
        run = self._run
        return 0 if run is None else run.current_loop

    @property
    def next_iteration(self) -> datetime.datetime | None:
        """When the next iteration is due, as an aware UTC datetime.

        ``None`` when the loop is not running, is stopping or ending, or has not
        scheduled its first iteration yet (during :meth:`before_loop`).
        """
        run = self._run
        return None if run is None else run.next_iteration()

    @property
    def skipped(self) -> int:
        """How many due iterations the current run has skipped; 0 when not running.

        Skipped are the slots dropped by ``overrun="skip"``, ``"coalesce"`` or ``grace``, and
        those that came due while the loop was paused.

        .. versionadded:: 0.2
        """
        run = self._run
        return 0 if run is None else run.skipped

    def preview(self, n: int = 5) -> list[datetime.datetime]:
        """The next ``n`` times the loop will run, as aware UTC datetimes, without running it.

        For a running loop, from its next iteration on (jitter included once drawn); for an
        interval loop that is not running, from now, as if it were started now. Fewer than
        ``n`` if the schedule ends first.

        :raises ValueError: if ``n`` is negative.

        .. versionadded:: 0.2
        """
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"`n` must be an int, not {type(n).__name__!r}")
        if n < 0:
            raise ValueError(f"`n` must be non-negative, got {n!r}")
        run = self._run
        next_slot = None
        if run is not None and run.next_slot is not None and self.next_iteration is not None:
            next_slot = datetime.datetime.fromtimestamp(
                run.wall_offset + run.next_slot, datetime.timezone.utc
            )
        schedule = self._options.schedule
        return preview(
            schedule, n, now=wall_now(), next_due=self.next_iteration, next_slot=next_slot
        )

    def ticks(self, *, count: int | None = None) -> Ticks:
        """Iterate over this loop's schedule inline, as :func:`~anytasks.ticks` does.

        Uses the loop's schedule and timing settings, not its body or hooks, and does not
        start the loop: ``async for tick in heartbeat.ticks(count=3): ...``.

        :param count: how many ticks; ``None`` for no limit (not the loop's ``count``).

        .. versionadded:: 0.2
        """
        return Ticks(self._options.replace(count=count))

    def is_paused(self) -> bool:
        """Whether :meth:`pause` holds the loop (until :meth:`resume` or the run's end).

        .. versionadded:: 0.2
        """
        run = self._run
        return run is not None and run.paused

    def is_running(self) -> bool:
        """Whether the loop has been started and has not ended yet."""
        return self._run is not None

    def is_being_cancelled(self) -> bool:
        """Whether the loop is being cancelled (true in :meth:`after_loop` after a cancel)."""
        run = self._run
        return run is not None and run.is_being_cancelled()

    def failed(self) -> bool:
        """Whether the last run ended with an unhandled exception; reset by the next start."""
        return self._failed

    def get_task(self) -> asyncio.Task[None] | None:
        """The :class:`asyncio.Task` of a loop started without a host on asyncio, else ``None``."""
        run = self._run
        return run.task if run is not None else None

    def __repr__(self) -> str:
        state = self.state.value
        return f"<anytasks.Loop {self.name!r} {state} current_loop={self.current_loop}>"

    # -- calling and starting ------------------------------------------------------

    async def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """Call the body once, directly, without any of the loop machinery."""
        return await self._body(*args, **kwargs)

    async def run(self, *args: _P.args, **kwargs: _P.kwargs) -> None:
        """Run the loop in the calling task until it ends.

        The loop ends when ``count`` iterations have run, after :meth:`stop` or
        :meth:`cancel`, or with an unhandled exception, which is re-raised here
        after the :meth:`error` hook and :meth:`after_loop` have run. A
        :meth:`restart` starts the loop over inside this same call.

        Works with ``task_group.start_soon(loop.run, ...)`` and with
        ``await task_group.start(loop.run, ...)``, which returns once
        :meth:`before_loop` has finished and the first iteration is about to run.

        :raises RuntimeError: if the loop is already running.
        """
        # Passed by ``task_group.start(loop.run, ...)``, outside the body's parameters.
        task_status = cast(
            "TaskStatus[None]", kwargs.pop("task_status", anyio.TASK_STATUS_IGNORED)
        )
        run = self._claim()
        self._failed = False
        await run.drive(args, kwargs, task_status)

    def start(self, *args: _P.args, **kwargs: _P.kwargs) -> asyncio.Task[None] | None:
        """Start the loop in the background and return at once.

        Inside :func:`background` the loop runs in that host, as a daemon, and
        ``None`` is returned. On asyncio with no host active, the loop runs in a
        new :class:`asyncio.Task`, which is returned, exactly as with
        discord.py. :meth:`cancel` ends the loop inside that task, which then
        finishes normally; ``task.cancel()`` cancels the task itself (the loop
        still runs :meth:`after_loop`).

        :raises RuntimeError: if the loop is already running, or if there is no
            host and no running asyncio event loop (on Trio, use
            ``nursery.start_soon(loop.run)`` or :func:`background`).
        """
        host = current_host_task_group()
        if host is not None:
            run = self._claim()
            try:
                host.start_soon(run.drive_daemon, args, kwargs, name=self.name)
            except RuntimeError:
                self._run = None
                raise RuntimeError(
                    f"{self!r}.start() was called from a task that outlived its "
                    "anytasks.background() host, which has ended: start it in an "
                    "active host, or run it with `await loop.run()`"
                ) from None
            self._failed = False
            return None
        event_loop = running_asyncio_loop()
        if event_loop is None:
            raise RuntimeError(
                f"{self!r}.start() found no anytasks.background() host and no running "
                "asyncio event loop; on Trio, use nursery.start_soon(loop.run) or start "
                "it inside `async with anytasks.background():`"
            )
        run = self._claim()
        self._failed = False
        try:
            task = new_fallback_task(event_loop, run.drive_task(args, kwargs), self.name)
        except BaseException:
            self._run = None
            raise
        if not task.done():  # an eager task factory may have run it to its end already
            run.task = task
        # A task cancelled before its first step never runs its coroutine, so nothing
        # in drive() would ever mark the loop as ended.
        task.add_done_callback(run.forget_unstarted)
        return task

    def _claim(self) -> Runner:
        """Mark the loop as running, or raise if it is; nothing else changes yet."""
        with _start_lock:
            if self._run is not None:
                raise RuntimeError(
                    f"{self!r} is already running; to wait for it to end, "
                    "`await loop.join()`; to check first, `loop.is_running()`"
                )
            run = self._run = Runner(self)
        return run

    def _check_thread(self, run: Runner, control: str) -> None:
        if run.thread != threading.get_ident():
            # Nothing here is thread-safe, and a wake-up from another thread would not
            # even wake an asyncio event loop: refuse rather than half work.
            raise RuntimeError(
                f"{self!r}.{control}() was called from another thread than the one running "
                "the loop; call it in the loop's thread (for example with "
                "anyio.from_thread.run_sync or loop.call_soon_threadsafe)"
            )

    def stop(self) -> None:
        """Let the iteration in progress finish, then end the loop.

        If the loop is waiting for its next iteration, it ends at once, without
        running the body again. Called from :meth:`before_loop`, the loop ends
        before its first iteration. A handled error's retries belong to the
        current iteration: they go on until it succeeds (use :meth:`cancel` or
        :meth:`clear_exception_types` to avoid that). Does nothing if the loop
        is not running.
        """
        run = self._run
        if run is not None:
            self._check_thread(run, "stop")
            run.stop()

    def cancel(self) -> None:
        """Cancel the loop wherever it is (body, wait, backoff, :meth:`before_loop`).

        :meth:`after_loop` then runs, shielded from this cancellation, with
        :meth:`is_being_cancelled` true. Does nothing if the loop is not running.
        """
        run = self._run
        if run is not None:
            self._check_thread(run, "cancel")
            run.cancel()

    def pause(self) -> None:
        """Run no more iterations until :meth:`resume`; the slots that come due are skipped.

        The loop keeps its grid: after :meth:`resume` it runs at the first slot still to come
        (counted in :attr:`skipped` are those it let pass). Called in the body, it takes
        effect once the iteration has returned. Does nothing if the loop is not running.

        .. versionadded:: 0.2
        """
        run = self._run
        if run is not None:
            self._check_thread(run, "pause")
            run.pause()

    def resume(self) -> None:
        """Undo :meth:`pause`: the loop runs again from its next slot on.

        .. versionadded:: 0.2
        """
        run = self._run
        if run is not None:
            self._check_thread(run, "resume")
            run.resume()

    def restart(self, *args: _P.args, **kwargs: _P.kwargs) -> None:
        """Cancel the running loop, let :meth:`after_loop` finish, and start it again.

        The new run gets these arguments and runs where the old one did: in the
        same host, task, or :meth:`run` call. Does nothing if the loop is not
        running.
        """
        run = self._run
        if run is not None:
            self._check_thread(run, "restart")
            run.restart_with = (args, kwargs)
            run.cancel()

    async def join(self) -> None:
        """Wait until the loop, as currently started, has ended (including restarts).

        Returns at once if the loop is not running.

        :raises RuntimeError: if called from the loop's own body or hooks, where it
            would wait for itself forever.
        """
        run = self._run
        if run is not None:
            if in_own_run(run):
                raise RuntimeError(
                    f"{self!r}.join() was called from inside the loop's own body or hooks, "
                    "where it would wait for itself forever"
                )
            if run.finished is None:
                run.finished = anyio.Event()
            await run.finished.wait()

    # -- exception types -----------------------------------------------------------

    def add_exception_type(self, *exceptions: type[Exception]) -> None:
        """Add exception types that count as passing trouble, retried with backoff.

        :raises TypeError: if an argument is not a subclass of :class:`Exception`
            (cancellation, :class:`KeyboardInterrupt` and :class:`SystemExit` are
            never retried).
        """
        checked = check_exception_types(exceptions)
        self._exception_types = tuple(dict.fromkeys((*self._exception_types, *checked)))

    def remove_exception_type(self, *exceptions: type[BaseException]) -> bool:
        """Remove exception types from the handled ones.

        :returns: whether every one of them was handled before.
        """
        before = len(self._exception_types)
        self._exception_types = tuple(t for t in self._exception_types if t not in exceptions)
        return len(self._exception_types) == before - len(set(exceptions))

    def clear_exception_types(self) -> None:
        """Handle no exception types at all: every exception ends the loop."""
        self._exception_types = ()

    # -- hooks -----------------------------------------------------------------------

    def before_loop(self, coro: _HookT) -> _HookT:
        """Register a coroutine function to run before the first iteration.

        It takes no arguments (but ``self`` in a class). Useful to wait for
        something first, such as ``bot.wait_until_ready()``. Returns ``coro``.

        :raises TypeError: if ``coro`` is not a coroutine function.
        """
        _check_coroutine_function(coro, f"{self.name!r} before_loop")
        self._before_loop = coro
        return coro

    def after_loop(self, coro: _HookT) -> _HookT:
        """Register a coroutine function to run after the loop has ended, however it ended.

        It takes no arguments (but ``self`` in a class) and runs shielded from
        the loop's cancellation, so it can still await; check
        :meth:`is_being_cancelled` to tell a cancel from a normal end. Returns
        ``coro``.

        :raises TypeError: if ``coro`` is not a coroutine function.
        """
        _check_coroutine_function(coro, f"{self.name!r} after_loop")
        self._after_loop = coro
        return coro

    def error(self, coro: _HookT) -> _HookT:
        """Register a coroutine function to call with an unhandled exception.

        It is called with any unhandled exception of the body or of
        :meth:`before_loop`, and takes that exception (after ``self`` in a
        class). The default logs it with its traceback on the ``anytasks``
        logger. Returns ``coro``.

        :raises TypeError: if ``coro`` is not a coroutine function.
        """
        _check_coroutine_function(coro, f"{self.name!r} error")
        self._error = coro
        return coro

    async def _call_hook(self, hook: Callable[..., Awaitable[Any]] | None) -> None:
        if hook is None:
            return
        if self._instance is not None:
            await hook(self._instance)
        else:
            await hook()

    async def _report_failure(self, exc: Exception) -> None:
        if self._error is None:
            logger.error("Unhandled exception in loop %r", self.name, exc_info=exc)
        elif self._instance is not None:
            await self._error(self._instance, exc)
        else:
            await self._error(exc)

    # -- schedule --------------------------------------------------------------------

    @overload
    def change_interval(
        self,
        *,
        seconds: float = 0,
        minutes: float = 0,
        hours: float = 0,
        time: None = None,
    ) -> None: ...

    @overload
    def change_interval(self, *, time: datetime.time | Sequence[datetime.time]) -> None: ...

    @overload
    def change_interval(self, *, cron: str, tz: datetime.tzinfo | None = None) -> None: ...

    @overload
    def change_interval(self, *, schedule: AnySchedule) -> None: ...

    def change_interval(self, **forms: Any) -> None:
        """Change the schedule, effective at once, in any state; it may switch kinds.

        Takes one form of schedule, as :func:`loop` does. If the loop is waiting
        for its next iteration, the wait is recomputed: the last iteration's
        scheduled start plus the new interval (or, for a wall-clock schedule,
        its next time), and at once if that has passed; later iterations follow
        the new interval from there. A backoff wait is not shortened.

        :raises TypeError: for a value of the wrong type, or two forms mixed.
        :raises ValueError: for a negative, NaN or infinite interval, or an empty
            ``time`` list.

        .. versionchanged:: 0.2
           Takes ``schedule=``.
        """
        self._set_options(self._options.replace(schedule=parse_schedule(forms)))


def _loop_from_options(
    coro: Callable[_P, Coroutine[Any, Any, _R]], options: LoopOptions
) -> Loop[_P, _R]:
    """A loop from options checked already (by loop(), or for an instance's copy)."""
    made = cast("Loop[_P, _R]", object.__new__(Loop))
    made._setup(coro, options)  # pyright: ignore[reportPrivateUsage]
    return made


@overload
def loop(
    *,
    seconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    time: None = None,
    **options: Unpack[CommonKeywords],
) -> Callable[[Callable[_P, Coroutine[Any, Any, _R]]], Loop[_P, _R]]: ...


@overload
def loop(
    *, time: datetime.time | Sequence[datetime.time], **options: Unpack[CommonKeywords]
) -> Callable[[Callable[_P, Coroutine[Any, Any, _R]]], Loop[_P, _R]]: ...


@overload
def loop(
    *, cron: str, tz: datetime.tzinfo | None = None, **options: Unpack[CommonKeywords]
) -> Callable[[Callable[_P, Coroutine[Any, Any, _R]]], Loop[_P, _R]]: ...


@overload
def loop(
    *, schedule: AnySchedule, **options: Unpack[CommonKeywords]
) -> Callable[[Callable[_P, Coroutine[Any, Any, _R]]], Loop[_P, _R]]: ...


def loop(**options: Any) -> Callable[[Callable[_P, Coroutine[Any, Any, _R]]], Loop[_P, _R]]:
    """Turn a coroutine function into a :class:`Loop` that runs it on a schedule.

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
    :raises TypeError: for arguments of the wrong type, two forms of schedule
        mixed, or a decorated object that is not a coroutine function.
    :raises ValueError: for a negative, NaN or infinite interval, an empty
        ``time`` list, or a ``count`` below 1.

    Synopsis::

        @anytasks.loop(seconds=5)
        async def heartbeat():
            await send_heartbeat()
    """
    # Validate here, so that a bad argument fails at the decorator line even
    # before a function is decorated; the function's name completes the options.
    parsed = parse_options(options)

    def decorator(func: Callable[_P, Coroutine[Any, Any, _R]]) -> Loop[_P, _R]:
        _check_coroutine_function(func, "@loop()")
        name = parsed.name or f"anytasks: {_function_name(func, '__qualname__')}"
        return _loop_from_options(func, parsed.replace(name=name))

    return decorator
