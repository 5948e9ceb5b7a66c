"""The ``Loop``: the public face of a coroutine function run over and over on a schedule.

A ``Loop`` holds what a loop *is* (its function, :class:`~anytasks._options.LoopOptions`,
hooks, exception types) and passes its controls on to the
:class:`~anytasks._runner.Runner` of the run in progress, which owns everything that exists
only while the loop runs.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Coroutine
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

from ._backend import running_asyncio_loop
from ._cancellation import new_fallback_task
from ._controls import Controls
from ._hooks import check_coroutine_function, guess_method
from ._host import current_host_task_group
from ._options import (
    LoopKeywords,
    LoopOptions,
    parse_options,
)
from ._outcome import LoopEnd
from ._runner import Runner

if TYPE_CHECKING:
    import asyncio

    from typing_extensions import Self, Unpack

_P = ParamSpec("_P")
_P2 = ParamSpec("_P2")
_R = TypeVar("_R")
_S = TypeVar("_S")

logger = logging.getLogger("anytasks")

# Makes "is it running? then it is mine" one step for threads that share a Loop.
_start_lock = threading.Lock()


def function_name(func: Callable[..., Any], attribute: str) -> str:
    """``__name__`` or ``__qualname__`` of ``func``, seen through functools.partial."""
    while isinstance(func, functools.partial):
        func = func.func
    return str(getattr(func, attribute, type(func).__name__))


@final
class Loop(Controls, Generic[_P, _R]):
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
        "_attr_name",
        "_body",
        "_instance",
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
        check_coroutine_function(coro, "@loop()")
        parsed = parse_options(dict(options))
        if parsed.name is None:
            parsed = parsed.replace(name=f"anytasks: {function_name(coro, '__qualname__')}")
        self._setup(coro, parsed)

    def _setup(self, coro: Callable[..., Coroutine[Any, Any, _R]], options: LoopOptions) -> None:
        # The function as decorated: for a copy bound to an instance, it still takes
        # ``self``, which _P no longer has, hence the loose parameters.
        self.coro = coro
        self._options = options
        self._body: Callable[..., Coroutine[Any, Any, _R]] = coro
        self._instance: object = None
        self._attr_name = function_name(coro, "__name__")
        self._init_hooks(method=guess_method(coro))
        self._run: Runner | None = None
        self._failed = False
        self._last_end: LoopEnd | None = None

    # -- class attribute protocol ------------------------------------------------

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._attr_name = name
        if not self._method:
            # Declared on a class (perhaps made from a function defined elsewhere): its
            # hooks get ``self``.
            self._recheck_hooks(method=True)

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
        copy = loop_from_options(self.coro, self._options)
        copy._instance = instance
        get = getattr(self.coro, "__get__", None)
        # functools.partial is no descriptor: bind the instance by hand.
        copy._body = (
            get(instance, owner) if get is not None else functools.partial(self.coro, instance)
        )
        copy._attr_name = self._attr_name
        copy._copy_hooks(self)
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
        coro = run.drive_task(args, kwargs)
        try:
            task = new_fallback_task(event_loop, coro, self.name)
        except BaseException:
            # Nothing half-started is left behind: not the loop, not the coroutine.
            self._run = None
            coro.close()
            raise
        if not task.done():  # an eager task factory may have run it to its end already
            run.task = task
        # A task cancelled before its first step never runs its coroutine, so nothing
        # in drive() would ever mark the loop as ended. (drive_task() removes it again.)
        task.add_done_callback(run.forget_unstarted)
        return task

    def _claim(self) -> Runner:
        """Mark the loop as running, or raise if it is; nothing else changes yet.

        :raises TypeError: if a hook cannot be called as this run will call it: with
            ``self`` first when the loop runs as an instance's, without it otherwise.
        """
        if self._method is None or self._method != (self._instance is not None):
            self._check_hooks(self._instance is not None)
        with _start_lock:
            if self._run is not None:
                raise RuntimeError(
                    f"{self!r} is already running; to wait for it to end, "
                    "`await loop.join()`; to check first, `loop.is_running()`"
                )
            run = self._run = Runner(self)
        return run

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


def loop_from_options(
    coro: Callable[_P, Coroutine[Any, Any, _R]], options: LoopOptions
) -> Loop[_P, _R]:
    """A loop from options checked already (by loop(), or for an instance's copy)."""
    made = cast("Loop[_P, _R]", object.__new__(Loop))
    made._setup(coro, options)  # pyright: ignore[reportPrivateUsage]
    return made
