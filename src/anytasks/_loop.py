"""The ``Loop``: a coroutine function run over and over on a schedule, and its lifecycle."""

from __future__ import annotations

import datetime
import functools
import inspect
import logging
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextvars import ContextVar
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    Literal,
    NoReturn,
    ParamSpec,
    TypeVar,
    cast,
    final,
    overload,
)

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus

from . import _wallclock
from ._backoff import ExponentialBackoff
from ._cancellation import (
    call_shielded,
    cancellation_requested,
    current_asyncio_task,
    native_cancel_requested,
    new_fallback_task,
)
from ._fastpath import Primitives, bind_primitives, running_asyncio_loop
from ._handled import check_exception_types, default_exception_types, is_handled
from ._host import current_host_task_group
from ._schedule import next_time_of_day, parse_schedule

if TYPE_CHECKING:
    import asyncio

    from typing_extensions import Self

_P = ParamSpec("_P")
_P2 = ParamSpec("_P2")
_R = TypeVar("_R")
_S = TypeVar("_S")
_HookT = TypeVar("_HookT", bound=Callable[..., Coroutine[Any, Any, Any]])

logger = logging.getLogger("anytasks")

# Time-of-day waits re-read the wall clock this often, so that a clock change or a
# suspended machine delays a daily run by at most this much.
_WALL_CLOCK_RECHECK = 60.0

# Makes "is it running? then it is mine" one step for threads that share a Loop.
_start_lock = threading.Lock()

# The run whose body or hooks the calling task is in, so that join() from there, which would
# wait for itself forever, fails instead.
_current_run: ContextVar[_Run | None] = ContextVar("anytasks_current_run", default=None)

_ONE_MICROSECOND = datetime.timedelta(microseconds=1)
_FAR_FUTURE = datetime.datetime.max.replace(tzinfo=datetime.timezone.utc)


def _check_coroutine_function(func: object, where: str) -> None:
    if not inspect.iscoroutinefunction(func):
        raise TypeError(f"{where} needs a coroutine function (async def), got {func!r}")


def _reraise(exc: BaseException) -> NoReturn:
    """Raise ``exc`` again from an ``except`` block, keeping its own ``__context__``."""
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context


def _function_name(func: Callable[..., Any], attribute: str) -> str:
    """``__name__`` or ``__qualname__`` of ``func``, seen through functools.partial."""
    while isinstance(func, functools.partial):
        func = func.func
    return str(getattr(func, attribute, type(func).__name__))


def _check_settings(count: object, reconnect: object, name: object) -> None:
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError(f"`count` must be an int or None, not {type(count).__name__!r}")
        if count <= 0:
            raise ValueError(f"`count` must be positive or None, got {count!r}")
    if not isinstance(reconnect, bool):
        raise TypeError(f"`reconnect` must be a bool, not {type(reconnect).__name__!r}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"`name` must be a str or None, not {type(name).__name__!r}")


class _Run:
    """The state of one started loop, from ``start()``/``run()`` until it has ended.

    A restart keeps the ``_Run`` (so ``join()`` waits across it) and replaces the
    cancel scope.
    """

    __slots__ = (
        "failure",
        "finished",
        "last_target",
        "next_deadline",
        "next_target",
        "primitives",
        "replan",
        "restart_with",
        "scope",
        "stopping",
        "task",
        "thread",
        "wake",
        "wall_offset",
    )

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        # Controls are for the thread whose event loop runs the loop (see _check_thread).
        self.thread = threading.get_ident()
        # Made by the first join(): an event costs more memory than the rest of
        # an idle loop's state, and most loops are never joined.
        self.finished: anyio.Event | None = None
        # Set while waiting between iterations, so that stop() and
        # change_interval() can end the wait without touching the body.
        self.wake: Callable[[], None] | None = None
        self.replan = False
        self.primitives: Primitives | None = None
        self.stopping = False
        self.restart_with: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self.task: asyncio.Task[None] | None = None
        # The unhandled exception that ends this run, once there is one.
        self.failure: Exception | None = None
        # When the next iteration is due: a monotonic deadline for an interval
        # loop, a wall-clock time for a time-of-day loop.
        self.next_deadline: float | None = None
        self.next_target: datetime.datetime | None = None
        # The time of day the last time-of-day iteration was due at.
        self.last_target: datetime.datetime | None = None
        # Wall-clock timestamp minus monotonic time, to show deadlines as datetimes.
        self.wall_offset = 0.0


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
        "_current_loop",
        "_error",
        "_exception_types",
        "_failed",
        "_hours",
        "_instance",
        "_interval",
        "_is_being_cancelled",
        "_minutes",
        "_run",
        "_seconds",
        "_time",
        "coro",
        "count",
        "name",
        "reconnect",
    )

    coro: Callable[..., Coroutine[Any, Any, _R]]
    """The decorated coroutine function, as given to :func:`loop`.

    For a loop declared on a class it still takes ``self``, also in each instance's
    copy of the loop.
    """

    count: int | None
    """How many iterations a run has before it ends; ``None`` for no limit."""

    reconnect: bool
    """Whether handled exceptions are retried with backoff (see :meth:`add_exception_type`)."""

    name: str
    """The name of the loop's task and of the loop in log messages.

    By default ``"anytasks: "`` followed by the function's qualified name.
    """

    def __init__(
        self,
        coro: Callable[_P, Coroutine[Any, Any, _R]],
        *,
        seconds: float = 0,
        minutes: float = 0,
        hours: float = 0,
        time: datetime.time | Sequence[datetime.time] | None = None,
        count: int | None = None,
        reconnect: bool = True,
        name: str | None = None,
    ) -> None:
        _check_coroutine_function(coro, "@loop()")
        _check_settings(count, reconnect, name)
        # The function as decorated: for a copy bound to an instance, it still takes
        # ``self``, which _P no longer has, hence the loose parameters.
        self.coro = coro
        self.count = count
        self.reconnect = reconnect
        self.name = (
            name if name is not None else f"anytasks: {_function_name(coro, '__qualname__')}"
        )
        self._seconds = self._minutes = self._hours = 0.0
        self._interval = 0.0
        self._time: tuple[datetime.time, ...] | None = None
        self._set_interval(seconds, minutes, hours, time)
        self._body: Callable[..., Coroutine[Any, Any, _R]] = coro
        self._instance: object = None
        self._attr_name = _function_name(coro, "__name__")
        self._before_loop: Callable[..., Awaitable[Any]] | None = None
        self._after_loop: Callable[..., Awaitable[Any]] | None = None
        self._error: Callable[..., Awaitable[Any]] | None = None
        self._exception_types = default_exception_types()
        self._run: _Run | None = None
        self._current_loop = 0
        self._failed = False
        self._is_being_cancelled = False

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
        # wins over this non-data descriptor from then on), as discord.py does.
        copy: Loop[Any, Any] = Loop(
            self.coro,
            seconds=self._seconds,
            minutes=self._minutes,
            hours=self._hours,
            time=self._time,
            count=self.count,
            reconnect=self.reconnect,
            name=self.name,
        )
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

    # -- read-only state -----------------------------------------------------------

    @property
    def seconds(self) -> float | None:
        """The seconds part of the interval; ``None`` for a ``time=`` loop."""
        return None if self._time is not None else self._seconds

    @property
    def minutes(self) -> float | None:
        """The minutes part of the interval; ``None`` for a ``time=`` loop."""
        return None if self._time is not None else self._minutes

    @property
    def hours(self) -> float | None:
        """The hours part of the interval; ``None`` for a ``time=`` loop."""
        return None if self._time is not None else self._hours

    @property
    def time(self) -> list[datetime.time] | None:
        """The times of day the loop runs at (sorted, aware); ``None`` for an interval loop."""
        return None if self._time is None else list(self._time)

    @property
    def current_loop(self) -> int:
        """How many iterations have completed in the current run; 0 when not running."""
        return self._current_loop

    @property
    def next_iteration(self) -> datetime.datetime | None:
        """When the next iteration is due, as an aware UTC datetime.

        ``None`` when the loop is not running, is stopping, or has not scheduled
        its first iteration yet (during :meth:`before_loop`).
        """
        run = self._run
        if run is None or run.stopping:
            return None
        if self._time is not None:
            return run.next_target
        if run.next_deadline is None:
            return None
        try:
            return datetime.datetime.fromtimestamp(
                run.wall_offset + run.next_deadline, datetime.timezone.utc
            )
        except (OverflowError, ValueError, OSError):
            return _FAR_FUTURE  # past the year 9999 (``seconds=1e12``)

    def is_running(self) -> bool:
        """Whether the loop has been started and has not ended yet."""
        return self._run is not None

    def is_being_cancelled(self) -> bool:
        """Whether the loop is being cancelled (true in :meth:`after_loop` after a cancel)."""
        return self._is_being_cancelled

    def failed(self) -> bool:
        """Whether the last run ended with an unhandled exception; reset by the next start."""
        return self._failed

    def get_task(self) -> asyncio.Task[None] | None:
        """The :class:`asyncio.Task` of a loop started without a host on asyncio, else ``None``."""
        run = self._run
        return run.task if run is not None else None

    def __repr__(self) -> str:
        state = "running" if self._run is not None else "stopped"
        return f"<anytasks.Loop {self.name!r} {state} current_loop={self._current_loop}>"

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
        run = self._begin()
        await self._drive(run, args, kwargs, task_status)

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
                host.start_soon(self._drive_daemon, run, args, kwargs, name=self.name)
            except RuntimeError:
                self._run = None
                raise RuntimeError(
                    f"{self!r}.start() was called from a task that outlived its "
                    "anytasks.background() host, which has ended: start it in an "
                    "active host, or run it with `await loop.run()`"
                ) from None
            self._failed = self._is_being_cancelled = False
            return None
        event_loop = running_asyncio_loop()
        if event_loop is None:
            raise RuntimeError(
                f"{self!r}.start() found no anytasks.background() host and no running "
                "asyncio event loop; on Trio, use nursery.start_soon(loop.run) or start "
                "it inside `async with anytasks.background():`"
            )
        run = self._claim()
        self._failed = self._is_being_cancelled = False
        try:
            task = new_fallback_task(event_loop, self._drive_task(run, args, kwargs), self.name)
        except BaseException:
            self._run = None
            raise
        if not task.done():  # an eager task factory may have run it to its end already
            run.task = task
        # A task cancelled before its first step never runs its coroutine, so nothing
        # in _drive() would ever mark the loop as ended.
        task.add_done_callback(functools.partial(self._forget_unstarted, run))
        return task

    async def _drive_task(self, run: _Run, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # Set here too: an eager task factory runs this before create_task() returns.
        run.task = current_asyncio_task()
        await self._drive(run, args, kwargs, anyio.TASK_STATUS_IGNORED)
        if sys.version_info < (3, 11):
            # The loop's own cancel() and a task.cancel() in the same tick arrive as one
            # CancelledError, which the loop's scope took for its own; asyncio before
            # 3.11 keeps no count that would tell AnyIO otherwise.
            if run.task is not None and native_cancel_requested(run.task):
                raise anyio.get_cancelled_exc_class()

    def _forget_unstarted(self, run: _Run, task: asyncio.Task[None]) -> None:
        if self._run is run:
            self._finish(run)

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
        if run is None:
            return
        self._check_thread(run, "stop")
        run.stopping = True
        if run.wake is not None:
            run.wake()

    def cancel(self) -> None:
        """Cancel the loop wherever it is (body, wait, backoff, :meth:`before_loop`).

        :meth:`after_loop` then runs, shielded from this cancellation, with
        :meth:`is_being_cancelled` true. Does nothing if the loop is not running.
        """
        run = self._run
        if run is None:
            return
        self._check_thread(run, "cancel")
        self._is_being_cancelled = True
        run.scope.cancel()

    def restart(self, *args: _P.args, **kwargs: _P.kwargs) -> None:
        """Cancel the running loop, let :meth:`after_loop` finish, and start it again.

        The new run gets these arguments and runs where the old one did: in the
        same host, task, or :meth:`run` call. Does nothing if the loop is not
        running.
        """
        run = self._run
        if run is None:
            return
        self._check_thread(run, "restart")
        run.restart_with = (args, kwargs)
        self.cancel()

    async def join(self) -> None:
        """Wait until the loop, as currently started, has ended (including restarts).

        Returns at once if the loop is not running.

        :raises RuntimeError: if called from the loop's own body or hooks, where it
            would wait for itself forever.
        """
        run = self._run
        if run is not None:
            if _current_run.get() is run:
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

    def change_interval(
        self,
        *,
        seconds: float = 0,
        minutes: float = 0,
        hours: float = 0,
        time: datetime.time | Sequence[datetime.time] | None = None,
    ) -> None:
        """Change the schedule, effective at once.

        If the loop is waiting for its next iteration, the wait is recomputed:
        the last iteration's scheduled start plus the new interval (or, with
        ``time=``, the next listed time), and at once if that has passed. A
        backoff wait is not shortened.

        :raises TypeError: for a value of the wrong type, or ``time`` mixed with a
            relative interval.
        :raises ValueError: for a negative, NaN or infinite interval, or an empty
            ``time`` list.
        """
        run = self._run
        if run is not None:
            self._check_thread(run, "change_interval")
        self._set_interval(seconds, minutes, hours, time)
        if run is not None:
            run.replan = True
            if run.wake is not None:
                run.wake()

    def _set_interval(
        self,
        seconds: float,
        minutes: float,
        hours: float,
        time: datetime.time | Sequence[datetime.time] | None,
    ) -> None:
        self._interval, self._time = parse_schedule(seconds, minutes, hours, time)
        if self._time is None:
            self._seconds, self._minutes, self._hours = seconds, minutes, hours
        else:
            self._seconds = self._minutes = self._hours = 0.0

    # -- lifecycle -------------------------------------------------------------------

    def _claim(self) -> _Run:
        """Mark the loop as running, or raise if it is; nothing else changes yet."""
        run = _Run()
        with _start_lock:
            if self._run is not None:
                raise RuntimeError(
                    f"{self!r} is already running; to wait for it to end, "
                    "`await loop.join()`; to check first, `loop.is_running()`"
                )
            self._run = run
        return run

    def _begin(self) -> _Run:
        run = self._claim()
        self._failed = False
        self._is_being_cancelled = False
        return run

    def _check_thread(self, run: _Run, control: str) -> None:
        if run.thread != threading.get_ident():
            # Nothing here is thread-safe, and a wake-up from another thread would not
            # even wake an asyncio event loop: refuse rather than half work.
            raise RuntimeError(
                f"{self!r}.{control}() was called from another thread than the one running "
                "the loop; call it in the loop's thread (for example with "
                "anyio.from_thread.run_sync or loop.call_soon_threadsafe)"
            )

    def _finish(self, run: _Run) -> None:
        self._run = None
        self._current_loop = 0
        if run.finished is not None:
            run.finished.set()

    async def _drive_daemon(
        self, run: _Run, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        try:
            await self._drive(run, args, kwargs, anyio.TASK_STATUS_IGNORED)
        except Exception as exc:
            if exc is not run.failure:
                # A hook's own exception, not the body's (which went to the error
                # hook already): report it, since a daemon has nobody to raise to.
                logger.exception("Exception in a hook of loop %r", self.name, exc_info=exc)

    async def _drive(
        self,
        run: _Run,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        task_status: TaskStatus[None],
    ) -> None:
        token = _current_run.set(run)
        try:
            started = False
            while True:
                # task_group.start() returns once a run has got through before_loop,
                # even if a restart cut short the first runs' before_loop.
                started = await self._run_once(run, args, kwargs, task_status) or started
                if started:
                    task_status = anyio.TASK_STATUS_IGNORED
                if run.restart_with is None:
                    break
                args, kwargs = run.restart_with
                run.restart_with = None
                run.scope = anyio.CancelScope()
                run.stopping = False
                self._failed = False
            if not started:
                # Stopped or cancelled during before_loop: task_group.start() must
                # still return rather than complain that the loop never started.
                task_status.started()
        finally:
            _current_run.reset(token)
            self._finish(run)

    async def _run_once(
        self,
        run: _Run,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        task_status: TaskStatus[None],
    ) -> bool:
        """One run, from before_loop to after_loop; return whether before_loop finished.

        An unhandled exception is raised after after_loop, even if a cancellation cut the
        error hook short, unless a restart() was asked for meanwhile (the error hook's
        way of recovering).
        """
        self._current_loop = 0
        self._is_being_cancelled = False
        run.last_target = None
        run.failure = None
        started = False
        try:
            with run.scope:
                try:
                    try:
                        # A loop cancelled before its task got to run ends here, before
                        # before_loop, and not after its body has begun.
                        await anyio.lowlevel.checkpoint_if_cancelled()
                        await self._call_hook(self._before_loop)
                        task_status.started()
                        started = True
                        await self._iterate(run, args, kwargs)
                    except anyio.get_cancelled_exc_class() as exc:
                        if cancellation_requested():
                            raise
                        raise RuntimeError(
                            f"loop {self.name!r} raised a CancelledError that no cancel "
                            "scope and no Task.cancel() asked for (did it await a future "
                            "or task that something else cancelled?)"
                        ) from exc
                except Exception as exc:
                    self._failed = True
                    run.failure = exc
                    await self._report_failure(exc)
                finally:
                    await self._end_run(run)
        except anyio.get_cancelled_exc_class():
            # Cancelled by an enclosing scope or Task.cancel() (the loop's own scope
            # catches its own): an unhandled error still wins over the cancellation.
            if run.failure is not None:
                _reraise(run.failure)
            raise
        if run.failure is not None and run.restart_with is None:
            raise run.failure
        return started

    async def _end_run(self, run: _Run) -> None:
        run.next_deadline = None
        run.next_target = None
        if self._after_loop is None:
            self._is_being_cancelled = False
            return
        if cancellation_requested():
            self._is_being_cancelled = True
        try:
            # Only a hook needs the shield; an empty scope per loop made cancelling
            # 10 000 idle loops on Trio half as slow again.
            await call_shielded(self._after_hook)
        except Exception as exc:
            if run.failure is None:
                raise
            # The body's error stays the one that ends the run.
            logger.error(  # noqa: TRY400  (not the exception being handled)
                "Exception in after_loop of loop %r, which had failed already",
                self.name,
                exc_info=exc,
            )
        finally:
            self._is_being_cancelled = False

    async def _after_hook(self) -> None:
        await self._call_hook(self._after_loop)

    async def _iterate(self, run: _Run, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if run.stopping:
            return
        primitives = run.primitives = bind_primitives()
        current_time, checkpoint = primitives.current_time, primitives.checkpoint
        scheduled = current_time()
        run.wall_offset = _wallclock.now().timestamp() - scheduled
        if self._time is not None:
            waited = await self._wait_for_next(run, scheduled)
            if waited is None:
                return
            scheduled = waited
        body = self._body
        backoff: ExponentialBackoff[Literal[False]] | None = None
        while True:
            if self._time is None:
                run.next_deadline = scheduled + self._interval
            else:
                self._plan_next_time_of_day(run, self._time)
            while True:
                try:
                    await body(*args, **kwargs)
                    break
                except Exception as exc:
                    if not (self.reconnect and is_handled(exc, self._exception_types)):
                        raise
                    if backoff is None:
                        backoff = ExponentialBackoff(clock=current_time)
                    delay = backoff.delay()
                    logger.warning(
                        "Handled exception in loop %r; retrying in %.2f seconds",
                        self.name,
                        delay,
                        exc_info=exc,
                    )
                    # Not interruptible by stop(): the retries belong to this iteration.
                    await anyio.sleep(delay)
            self._current_loop += 1
            if self._current_loop == self.count or run.stopping:
                return
            deadline = scheduled + self._interval
            if self._time is None and not run.replan and deadline <= current_time():
                # Behind schedule (or a zero interval): run again at once, but let
                # other tasks and cancellation in first.
                await checkpoint()
                if run.stopping:
                    return
                if not run.replan:
                    scheduled = deadline
                    continue
            # On schedule, or change_interval() since the iteration began: plan anew.
            waited = await self._wait_for_next(run, scheduled)
            if waited is None:
                return
            scheduled = waited

    def _plan_next_time_of_day(self, run: _Run, times: tuple[datetime.time, ...]) -> None:
        """Record, for next_iteration, which time of day follows the one running now."""
        now = _wallclock.now()
        after = now if run.last_target is None else max(now, run.last_target)
        run.next_target = next_time_of_day(times, after)

    async def _wait_for_next(self, run: _Run, scheduled: float) -> float | None:
        """Wait for the next iteration; return its scheduled start, or None if stopped.

        ``scheduled`` is the monotonic start of the last iteration (or of the
        wait, before the first iteration of a ``time=`` loop). Re-plans whenever
        change_interval() interrupts the wait.
        """
        primitives = run.primitives
        assert primitives is not None
        while True:
            replanned = run.replan
            run.replan = False
            if self._time is None:
                deadline = scheduled + self._interval
                if replanned:
                    # After change_interval() the new interval counts from the last
                    # iteration's start, with at most one run at once: not a burst of
                    # every slot of the new grid since then.
                    deadline = max(deadline, primitives.current_time())
                run.next_deadline = deadline
                run.next_target = None
                await primitives.sleep_until(deadline, run)
            else:
                await self._sleep_until_time_of_day(run, self._time, primitives)
                deadline = primitives.current_time()
            if run.stopping:
                return None
            if not run.replan:
                return deadline

    async def _sleep_until_time_of_day(
        self, run: _Run, times: tuple[datetime.time, ...], primitives: Primitives
    ) -> None:
        now = _wallclock.now()
        # Missed times are skipped rather than replayed: after a suspend or a
        # clock jump, a daily loop should run once, not once per missed day. A loop
        # that starts exactly on one of its times runs at once, as in discord.py.
        after = now - _ONE_MICROSECOND if run.last_target is None else max(now, run.last_target)
        target = next_time_of_day(times, after)
        run.next_target = target
        while not (run.replan or run.stopping):
            remaining = (target - _wallclock.now()).total_seconds()
            if remaining <= 0:
                run.last_target = target
                return
            chunk = min(remaining, _WALL_CLOCK_RECHECK)
            await primitives.sleep_until(primitives.current_time() + chunk, run)

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


@overload
def loop(
    *,
    seconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    time: None = None,
    count: int | None = None,
    reconnect: bool = True,
    name: str | None = None,
) -> Callable[[Callable[_P, Coroutine[Any, Any, _R]]], Loop[_P, _R]]: ...


@overload
def loop(
    *,
    time: datetime.time | Sequence[datetime.time],
    count: int | None = None,
    reconnect: bool = True,
    name: str | None = None,
) -> Callable[[Callable[_P, Coroutine[Any, Any, _R]]], Loop[_P, _R]]: ...


def loop(
    *,
    seconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    time: datetime.time | Sequence[datetime.time] | None = None,
    count: int | None = None,
    reconnect: bool = True,
    name: str | None = None,
) -> Callable[[Callable[_P, Coroutine[Any, Any, _R]]], Loop[_P, _R]]:
    """Turn a coroutine function into a :class:`Loop` that runs it on a schedule.

    With ``seconds``/``minutes``/``hours`` the body runs at once, then every
    interval, on a fixed grid of the event loop's monotonic clock (start + k *
    interval): no drift, and an overrun body is followed by the missed runs
    back to back until the loop is on time again. With ``time`` it runs at the
    listed times of day (wall clock; naive times mean UTC).

    :param seconds: seconds between iterations.
    :param minutes: minutes between iterations.
    :param hours: hours between iterations.
    :param time: one :class:`datetime.time` or a non-empty sequence of them;
        cannot be combined with a relative interval.
    :param count: how many iterations to run; ``None`` for no limit.
    :param reconnect: retry the iteration with exponential backoff when the body
        raises a handled exception (see :meth:`Loop.add_exception_type`).
    :param name: the name used for the task and in log messages.
    :raises TypeError: for arguments of the wrong type, ``time`` mixed with an
        interval, or a decorated object that is not a coroutine function.
    :raises ValueError: for a negative, NaN or infinite interval, an empty
        ``time`` list, or a ``count`` below 1.

    Synopsis::

        @anytasks.loop(seconds=5)
        async def heartbeat():
            await send_heartbeat()
    """
    # Validate here, so that a bad argument fails at the decorator line even
    # before a function is decorated.
    _check_settings(count, reconnect, name)
    parse_schedule(seconds, minutes, hours, time)

    def decorator(func: Callable[_P, Coroutine[Any, Any, _R]]) -> Loop[_P, _R]:
        return Loop(
            func,
            seconds=seconds,
            minutes=minutes,
            hours=hours,
            time=time,
            count=count,
            reconnect=reconnect,
            name=name,
        )

    return decorator
