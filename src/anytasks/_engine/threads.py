"""A plain ``def`` as a loop's body: each call runs in a worker thread, so the event loop goes on.

A thread cannot be interrupted. When the iteration is cancelled (``cancel()``, ``timeout=``, an
enclosing scope), its call is abandoned: the iteration ends at once, and the thread runs on to its
end on its own, its result dropped. The next call of the same body waits for that thread first,
so a loop's body never runs twice at once, however it was cut short.

The threads are AnyIO's worker threads, drawn from its default capacity limiter (40 at a time,
shared with every ``anyio.to_thread.run_sync`` of the program); a loop uses at most one at a time.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, cast, final

import anyio.to_thread

_R = TypeVar("_R")


def is_async(func: object) -> bool:
    """Whether calling ``func`` makes a coroutine (or an async generator) rather than running
    it: an ``async def`` function, a partial of one, or an object whose ``__call__`` is one."""
    while isinstance(func, functools.partial):
        func = cast("functools.partial[object]", func).func
    if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
        return True
    if inspect.isroutine(func) or isinstance(func, type):
        return False
    call = inspect.getattr_static(type(func), "__call__", None)
    return inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)


def check_body(func: object, where: str) -> None:
    """Refuse what cannot be a loop's body: not callable, or an async generator function."""
    if not callable(func) or inspect.isasyncgenfunction(func):
        raise TypeError(
            f"{where} needs a function to call, `async def` or plain `def` (which runs in a "
            f"worker thread), got {func!r}"
        )


def body_of(func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """What a loop awaits for ``func``: itself if it is async, else a `ThreadedBody`."""
    return cast("Callable[..., Awaitable[Any]]", func) if is_async(func) else ThreadedBody(func)


@final
class ThreadedBody(Generic[_R]):
    """A plain function, called in a worker thread when awaited: the body of a loop made from
    a ``def``."""

    __slots__ = ("_running", "func")

    def __init__(self, func: Callable[..., _R]) -> None:
        self.func = func
        # The end of the call whose thread still runs, if its iteration was abandoned.
        self._running: threading.Event | None = None

    async def __call__(self, *args: Any, **kwargs: Any) -> _R:
        running = self._running
        if running is not None and not running.is_set():
            # The previous call was abandoned and its thread still runs: not two at once.
            await anyio.to_thread.run_sync(running.wait, abandon_on_cancel=True)
        done = self._running = threading.Event()
        call = functools.partial(self.func, *args, **kwargs)

        def in_thread() -> _R:
            try:
                return call()
            finally:
                done.set()

        # Abandoned if cancelled: the iteration (and a stop, a cancel, a timeout) does not
        # wait for a thread that cannot be interrupted.
        return await anyio.to_thread.run_sync(in_thread, abandon_on_cancel=True)

    def __repr__(self) -> str:
        return f"<anytasks body {self.func!r}, run in a thread>"
