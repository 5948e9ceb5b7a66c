"""The ``Loop``: the public face of a coroutine function run over and over on a schedule.

A ``Loop`` holds what a loop *is*: its function, and the record it shares with its runs
(``_engine.record.LoopRecord``): its settings (one frozen ``LoopOptions``), its hooks (one frozen
``Hooks``), its listeners, and what outlives a run. Its controls go to the run in progress
(``_engine.run.Run``), which reads the same record.
"""

from __future__ import annotations

import datetime
import functools
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

from ._checks import check_count
from ._engine.backend import running_asyncio_loop, wall_now
from ._engine.cancellation import new_fallback_task
from ._engine.events import Listener, check_listener
from ._engine.hooks import Hooks, add_exception_types, guess_method
from ._engine.options import AnySchedule, LoopKeywords, LoopOptions, parse_options, parse_schedule
from ._engine.run import LoopRecord, Run
from ._engine.state import LoopState
from ._engine.threads import body_of, check_body
from ._frozen import replace
from ._host import current_host
from ._outcome import LoopEnd
from ._schedules.daily import Daily
from ._schedules.every import Every
from ._schedules.preview import preview
from ._ticks import Ticks

if TYPE_CHECKING:
    import asyncio

    from typing_extensions import Self, Unpack

_P = ParamSpec("_P")
_P2 = ParamSpec("_P2")
_R = TypeVar("_R")
_S = TypeVar("_S")

# What each hook may be, for type checkers: ``self`` comes first in a class, which the types
# cannot tell apart from a function's own first parameter, so they catch a hook with too many
# parameters (or an after_loop whose second one is not a LoopEnd), and registration checks the
# exact count.
_BeforeT = TypeVar(
    "_BeforeT",
    bound=Callable[[], Coroutine[Any, Any, Any]] | Callable[[Any], Coroutine[Any, Any, Any]],
)
_AfterT = TypeVar(
    "_AfterT",
    bound=Callable[[], Coroutine[Any, Any, Any]]
    | Callable[[Any], Coroutine[Any, Any, Any]]
    | Callable[[Any, LoopEnd], Coroutine[Any, Any, Any]],
)
_ListenerT = TypeVar("_ListenerT", bound=Listener)
_ErrorT = TypeVar(
    "_ErrorT",
    bound=Callable[[Any], Coroutine[Any, Any, Any]]
    | Callable[[Any, Any], Coroutine[Any, Any, Any]],
)

logger = logging.getLogger("anytasks")

# Makes "is it running? then it is mine" one step for threads that share a Loop.
_start_lock = threading.Lock()


def function_name(func: Callable[..., Any], attribute: str) -> str:
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

    __slots__ = ("__weakref__", "_attr_name", "_body", "_instance", "_record", "coro")

    coro: Callable[..., Coroutine[Any, Any, _R]]
    """The decorated coroutine function, as given to :func:`loop`.

    For a loop declared on a class it still takes ``self``, also in each instance's
    copy of the loop.
    """

    @overload
    def __init__(
        self, coro: Callable[_P, Coroutine[Any, Any, _R]], **options: Unpack[LoopKeywords]
    ) -> None: ...

    @overload
    def __init__(self, coro: Callable[_P, _R], **options: Unpack[LoopKeywords]) -> None: ...

    def __init__(self, coro: Callable[..., Any], **options: Unpack[LoopKeywords]) -> None:
        check_body(coro, "@loop()")
        parsed = parse_options(dict(options))
        if parsed.name is None:
            parsed = replace(parsed, name=f"anytasks: {function_name(coro, '__qualname__')}")
        self._setup(coro, parsed, Hooks.none(guess_method(coro)))

    def _setup(
        self, coro: Callable[..., Coroutine[Any, Any, _R]], options: LoopOptions, hooks: Hooks
    ) -> None:
        # The function as decorated: for a copy bound to an instance, it still takes
        # ``self``, which _P no longer has, hence the loose parameters.
        self.coro = coro
        # What the runs await: the function, or for a plain `def`, its calls in a thread.
        self._body: Callable[..., Awaitable[_R]] = body_of(coro)
        self._instance: object = None
        self._attr_name = function_name(coro, "__name__")
        self._record = LoopRecord(options, hooks)

    # -- class attribute protocol ------------------------------------------------------

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._attr_name = name
        record = self._record
        if not record.hooks.method:
            # Declared on a class (perhaps made from a function defined elsewhere): its
            # hooks get ``self``.
            record.hooks = record.hooks.with_method(True, self)

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
        # options and hooks are frozen values: shared, not copied.
        record = self._record
        copy = loop_from_options(self.coro, record.options, record.hooks)
        copy._instance = instance
        get = getattr(self.coro, "__get__", None)
        # functools.partial is no descriptor: bind the instance by hand.
        bound = get(instance, owner) if get is not None else functools.partial(self.coro, instance)
        copy._body = body_of(bound)
        copy._attr_name = self._attr_name
        copy._record.set_listeners(record.listeners, copy)
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

    def __repr__(self) -> str:
        state = self.state.value
        return f"<anytasks.Loop {self.name!r} {state} current_loop={self.current_loop}>"

    # -- reading -----------------------------------------------------------------------

    @property
    def state(self) -> LoopState:
        """What the loop is doing: see :class:`~anytasks.LoopState`.

        .. versionadded:: 0.2
        """
        run = self._record.run
        return LoopState.IDLE if run is None else run.state

    @property
    def current_loop(self) -> int:
        """How many iterations have completed in the current run; 0 when not running."""
        run = self._record.run
        return 0 if run is None else run.current_loop

    @property
    def next_iteration(self) -> datetime.datetime | None:
        """When the next iteration is due, as an aware UTC datetime.

        ``None`` when the loop is not running, is stopping or ending, or has not
        scheduled its first iteration yet (during :meth:`before_loop`).
        """
        run = self._record.run
        return None if run is None else run.next_iteration()

    @property
    def skipped(self) -> int:
        """How many due iterations the current run has skipped; 0 when not running.

        Skipped are the slots dropped by ``overrun="skip"``, ``"coalesce"`` or ``grace``, and
        those that came due while the loop was paused.

        .. versionadded:: 0.2
        """
        run = self._record.run
        return 0 if run is None else run.position.skipped

    def is_paused(self) -> bool:
        """Whether :meth:`pause` holds the loop (until :meth:`resume` or the run's end).

        .. versionadded:: 0.2
        """
        run = self._record.run
        return run is not None and run.position.paused

    def is_running(self) -> bool:
        """Whether the loop has been started and has not ended yet."""
        return self._record.run is not None

    def is_being_cancelled(self) -> bool:
        """Whether the loop is being cancelled (true in :meth:`after_loop` after a cancel)."""
        run = self._record.run
        return run is not None and run.is_being_cancelled()

    def failed(self) -> bool:
        """Whether the last run ended with an unhandled exception; reset by the next start."""
        return self._record.failed

    @property
    def last_end(self) -> LoopEnd | None:
        """How the latest run ended (set as it ends, before ``after_loop``); ``None`` if
        the loop has never ended a run.

        .. versionadded:: 0.2
        """
        return self._record.last_end

    def get_task(self) -> asyncio.Task[None] | None:
        """The :class:`asyncio.Task` of a loop started without a host on asyncio, else ``None``."""
        run = self._record.run
        return run.task if run is not None else None

    # -- settings ----------------------------------------------------------------------

    @property
    def count(self) -> int | None:
        """How many iterations a run has before it ends; ``None`` for no limit.

        Settable; a new value applies to the run in progress at once.
        """
        return self._record.options.count

    @count.setter
    def count(self, value: int | None) -> None:
        self._set_options(replace(self._record.options, count=value))

    @property
    def reconnect(self) -> bool:
        """Whether handled exceptions are retried with backoff (see :meth:`add_exception_type`)."""
        return self._record.options.reconnect

    @reconnect.setter
    def reconnect(self, value: bool) -> None:
        self._set_options(replace(self._record.options, reconnect=value))

    @property
    def name(self) -> str:
        """The name of the loop's task and of the loop in log messages.

        By default ``"anytasks: "`` followed by the function's qualified name.
        """
        return cast("str", self._record.options.name)

    @name.setter
    def name(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"`name` must be a str, not {type(value).__name__!r}")
        self._set_options(replace(self._record.options, name=value))

    @property
    def schedule(self) -> AnySchedule:
        """What the loop runs on: :func:`~anytasks.every` or a wall-clock schedule.

        .. versionadded:: 0.2
        """
        return self._record.options.schedule

    @property
    def seconds(self) -> float | None:
        """The seconds part of the interval; ``None`` for a wall-clock schedule."""
        schedule = self._record.options.schedule
        return schedule.seconds if isinstance(schedule, Every) else None

    @property
    def minutes(self) -> float | None:
        """The minutes part of the interval; ``None`` for a wall-clock schedule."""
        schedule = self._record.options.schedule
        return schedule.minutes if isinstance(schedule, Every) else None

    @property
    def hours(self) -> float | None:
        """The hours part of the interval; ``None`` for a wall-clock schedule."""
        schedule = self._record.options.schedule
        return schedule.hours if isinstance(schedule, Every) else None

    @property
    def time(self) -> list[datetime.time] | None:
        """The times of day the loop runs at (sorted, aware); ``None`` for other schedules."""
        schedule = self._record.options.schedule
        return list(schedule.times) if isinstance(schedule, Daily) else None

    def _set_options(self, options: LoopOptions) -> None:
        record = self._record
        run = record.run
        if run is not None:
            self._check_thread(run, "change_interval")
        record.options = options
        if run is not None:
            run.apply(options)

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
        self._set_options(replace(self._record.options, schedule=parse_schedule(forms)))

    def preview(self, n: int = 5) -> list[datetime.datetime]:
        """The next ``n`` times the loop will run, as aware UTC datetimes, without running it.

        For a running loop, from its next iteration on (jitter included once drawn); for an
        interval loop that is not running, from now, as if it were started now. Fewer than
        ``n`` if the schedule ends first.

        :raises ValueError: if ``n`` is negative.

        .. versionadded:: 0.2
        """
        check_count("n", n)
        run = self._record.run
        next_due = next_slot = None
        if run is not None:
            next_due = run.next_iteration()
            if next_due is not None:
                next_slot = run.position.next_grid_slot()
        options = self._record.options
        return preview(
            options.wall_schedule,
            options.interval,
            n,
            now=wall_now(),
            next_due=next_due,
            next_slot=next_slot,
        )

    def ticks(self, *, count: int | None = None) -> Ticks:
        """Iterate over this loop's schedule inline, as :func:`~anytasks.ticks` does.

        Uses the loop's schedule and timing settings, not its body or hooks, and does not
        start the loop: ``async for tick in heartbeat.ticks(count=3): ...``.

        :param count: how many ticks; ``None`` for no limit (not the loop's ``count``).

        .. versionadded:: 0.2
        """
        return Ticks(replace(self._record.options, count=count))

    # -- steering ----------------------------------------------------------------------

    def _check_thread(self, run: Run, control: str) -> None:
        if run.thread is not threading.current_thread():
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
        run = self._record.run
        if run is not None:
            self._check_thread(run, "stop")
            run.stop()

    def cancel(self) -> None:
        """Cancel the loop wherever it is (body, wait, backoff, :meth:`before_loop`).

        :meth:`after_loop` then runs, shielded from this cancellation, with
        :meth:`is_being_cancelled` true. Does nothing if the loop is not running.
        """
        run = self._record.run
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
        run = self._record.run
        if run is not None:
            self._check_thread(run, "pause")
            run.pause()

    def resume(self) -> None:
        """Undo :meth:`pause`: the loop runs again from its next slot on.

        .. versionadded:: 0.2
        """
        run = self._record.run
        if run is not None:
            self._check_thread(run, "resume")
            run.resume()

    def restart(self, *args: _P.args, **kwargs: _P.kwargs) -> None:
        """Cancel the running loop, let :meth:`after_loop` finish, and start it again.

        The new run gets these arguments and runs where the old one did: in the
        same host, task, or :meth:`run` call. Does nothing if the loop is not
        running.
        """
        run = self._record.run
        if run is not None:
            self._check_thread(run, "restart")
            run.restart(args, kwargs)

    async def join(self) -> LoopEnd | None:
        """Wait until the loop, as currently started, has ended (including restarts).

        Returns at once if the loop is not running.

        :returns: how the run ended (:attr:`last_end`): for a loop that restarted, the run
            it ended with; ``None`` only if the loop has never ended a run.

        :raises RuntimeError: if called from the loop's own body or hooks, where it
            would wait for itself forever.

        .. versionchanged:: 0.2
           Returns the :class:`~anytasks.LoopEnd`.
        """
        record = self._record
        run = record.run
        if run is not None:
            if run.is_own_task():
                raise RuntimeError(
                    f"{self!r}.join() was called from inside the loop's own body or hooks, "
                    "where it would wait for itself forever"
                )
            if run.finished is None:
                run.finished = anyio.Event()
            await run.finished.wait()
            if run.end is not None:
                return run.end
            # A fallback task cancelled before it ran ended no run.
        return record.last_end

    # -- calling and starting ----------------------------------------------------------

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
        self._record.failed = False
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
        record = self._record
        host = current_host()
        if host is not None:
            run = self._claim()
            try:
                host.start(run, args, kwargs)
            except RuntimeError:
                record.run = None
                raise RuntimeError(
                    f"{self!r}.start() was called from a task that outlived its "
                    "anytasks.background() host, which has ended: start it in an "
                    "active host, or run it with `await loop.run()`"
                ) from None
            record.failed = False
            return None
        event_loop = running_asyncio_loop()
        if event_loop is None:
            raise RuntimeError(
                f"{self!r}.start() found no anytasks.background() host and no running "
                "asyncio event loop; on Trio, use nursery.start_soon(loop.run) or start "
                "it inside `async with anytasks.background():`"
            )
        run = self._claim()
        record.failed = False
        coro = run.drive_task(args, kwargs)
        try:
            task = new_fallback_task(event_loop, coro, self.name)
        except BaseException:
            # Nothing half-started is left behind: not the loop, not the coroutine.
            record.run = None
            coro.close()
            raise
        if not task.done():  # an eager task factory may have run it to its end already
            run.task = task
        # A task cancelled before its first step never runs its coroutine, so nothing
        # in drive() would ever mark the loop as ended. (drive_task() removes it again.)
        task.add_done_callback(run.forget_unstarted)
        return task

    def _claim(self) -> Run:
        """Mark the loop as running, or raise if it is; nothing else changes yet.

        :raises TypeError: if a hook cannot be called as this run will call it: with
            ``self`` first when the loop runs as an instance's, without it otherwise.
        """
        record = self._record
        hooks, method = record.hooks, self._instance is not None
        if hooks.method is None or hooks.method != method:
            hooks.check(method, self)
        with _start_lock:
            if record.run is not None:
                raise RuntimeError(
                    f"{self!r} is already running; to wait for it to end, "
                    "`await loop.join()`; to check first, `loop.is_running()`"
                )
            run = record.run = Run(self, record, self._body, self._instance)
        return run

    # -- hooks ---------------------------------------------------------------------------

    def before_loop(self, coro: _BeforeT) -> _BeforeT:
        """Register a coroutine function to run before the first iteration.

        It takes no arguments (but ``self`` in a class). Useful to wait for
        something first, such as ``bot.wait_until_ready()``. Returns ``coro``.

        :raises TypeError: if ``coro`` is not a coroutine function, or takes other
            arguments.

        .. versionchanged:: 0.2
           The number of parameters is checked here.
        """
        record = self._record
        record.hooks = record.hooks.with_hook("before_loop", coro, self)
        return coro

    def after_loop(self, coro: _AfterT) -> _AfterT:
        """Register a coroutine function to run after the loop has ended, however it ended.

        It takes no arguments, or one: the run's :class:`~anytasks.LoopEnd`, which says
        why it ended (after ``self`` in a class; decided from its signature here). It runs
        shielded from the loop's cancellation, so it can still await. Returns ``coro``.

        :raises TypeError: if ``coro`` is not a coroutine function, or takes other
            arguments.

        Synopsis::

            @report.after_loop
            async def report_end(end: anytasks.LoopEnd) -> None:
                if end.reason is anytasks.EndReason.FAILED:
                    await alert(f"report failed: {end.exception!r}")

        .. versionchanged:: 0.2
           It may take the :class:`~anytasks.LoopEnd`.
        """
        record = self._record
        record.hooks = record.hooks.with_hook("after_loop", coro, self)
        return coro

    def error(self, coro: _ErrorT) -> _ErrorT:
        """Register a coroutine function to call with an unhandled exception.

        It is called with any unhandled exception of the body or of
        :meth:`before_loop`, and takes that exception (after ``self`` in a
        class). The default logs it with its traceback on the ``anytasks``
        logger. Returns ``coro``. It is not called for a :class:`BaseException` that
        is no :class:`Exception` (such as ``pytest.fail()``'s): that fails the run
        and goes on up (:attr:`EndReason.FAILED <anytasks.EndReason.FAILED>`).

        :raises TypeError: if ``coro`` is not a coroutine function, or does not take
            one argument.

        .. versionchanged:: 0.2
           The number of parameters is checked here.
        """
        record = self._record
        record.hooks = record.hooks.with_hook("error", coro, self)
        return coro

    # -- exception types -------------------------------------------------------------------

    def add_exception_type(self, *exceptions: type[Exception]) -> None:
        """Add exception types that count as passing trouble, retried with backoff.

        :raises TypeError: if an argument is not a subclass of :class:`Exception`
            (cancellation, :class:`KeyboardInterrupt` and :class:`SystemExit` are
            never retried).
        """
        record = self._record
        record.hooks = add_exception_types(record.hooks, exceptions)

    def remove_exception_type(self, *exceptions: type[BaseException]) -> bool:
        """Remove exception types from the handled ones.

        :returns: whether every one of them was handled before.
        """
        record = self._record
        handled = record.hooks.handled
        kept = tuple(t for t in handled if t not in exceptions)
        record.hooks = record.hooks.with_handled(kept)
        return len(kept) == len(handled) - len(set(exceptions))

    def clear_exception_types(self) -> None:
        """Handle no exception types at all: every exception ends the loop."""
        record = self._record
        record.hooks = record.hooks.with_handled(())

    # -- listeners -------------------------------------------------------------------------

    def add_listener(self, listener: _ListenerT) -> _ListenerT:
        """Deliver this loop's events to ``listener``, a function of one
        :class:`~anytasks.LoopEvent`.

        It is called synchronously in the loop's task, before the global listeners of
        :func:`~anytasks.add_listener` (see there), so it cannot be an ``async def``
        function. Added to a loop declared on a class, it goes to the copies of the instances
        made from then on. Returns ``listener``.

        :raises TypeError: if ``listener`` is not callable, or is an async function (also a
            :func:`functools.partial` of one, or an object whose ``__call__`` is one).

        .. versionadded:: 0.2
        """
        check_listener(listener)
        record = self._record
        record.set_listeners((*record.listeners, listener), self)
        return listener

    def remove_listener(self, listener: Listener) -> None:
        """Stop delivering this loop's events to ``listener`` (added with :meth:`add_listener`).

        :raises ValueError: if it is not one of this loop's listeners.

        .. versionadded:: 0.2
        """
        record = self._record
        listeners = list(record.listeners)
        try:
            listeners.remove(listener)
        except ValueError:
            raise ValueError(f"{listener!r} is not a listener of {self!r}") from None
        record.set_listeners(tuple(listeners), self)


def loop_from_options(
    coro: Callable[_P, Coroutine[Any, Any, _R]], options: LoopOptions, hooks: Hooks | None = None
) -> Loop[_P, _R]:
    """A loop from options checked already (by loop(), or for an instance's copy), with
    ``hooks`` (an instance's copy shares its class's) or none."""
    made = cast("Loop[_P, _R]", object.__new__(Loop))
    hooks = Hooks.none(guess_method(coro)) if hooks is None else hooks
    # Loop's own set-up, for the constructor that parses no keywords (public face: none).
    made._setup(coro, options, hooks)  # pyright: ignore[reportPrivateUsage]
    return made
