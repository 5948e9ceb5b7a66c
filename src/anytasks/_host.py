"""The background host: a task group that ``Loop.start()`` schedules loops into."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, final

import anyio
from anyio.abc import TaskGroup

from ._engine.backend import trio_running

#: ``start_soon(func, *args, name=...)``: how a host starts a task of its own.
StartSoon = Callable[..., object]

# How the innermost active host, as seen by the calling task, starts a loop's task.
_host_start_soon: ContextVar[StartSoon | None] = ContextVar("anytasks_host", default=None)


def current_host_start_soon() -> StartSoon | None:
    """Where ``Loop.start()`` runs a loop: the innermost host's ``start_soon``, if any."""
    return _host_start_soon.get()


def _start_soon_of(task_group: TaskGroup) -> StartSoon:
    """The task group's ``start_soon``, or on Trio its nursery's.

    AnyIO's (4.14+) wraps every task it starts in a ``TaskHandle``, with a cancel scope, an
    event and a coroutine of its own, for the caller to await or cancel the task by. A host
    hands no handle out, and on Trio these were a third of the memory of an idle loop
    (benchmarks/history/2026-12-07-idle-loops-profile.md): the host starts its loops in the
    nursery underneath, which is what AnyIO's task group is on Trio, so that errors, cancel
    scopes and the end of the block are as before. On asyncio, a task of AnyIO's task group
    can be made only through the handle.
    """
    nursery: Any = getattr(task_group, "_nursery", None)
    if nursery is not None and trio_running() is not None:
        start_soon: StartSoon = nursery.start_soon
        return start_soon
    return task_group.start_soon


@final
class BackgroundHost:
    """Runs loops started with :meth:`Loop.start` as daemons until the block ends.

    Create it with :func:`background`.
    """

    __slots__ = ("_task_group", "_token")

    def __init__(self) -> None:
        self._task_group: TaskGroup | None = None
        self._token: Token[StartSoon | None] | None = None

    async def __aenter__(self) -> BackgroundHost:
        if self._task_group is not None:
            raise RuntimeError(f"{self!r} cannot be entered twice")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._token = _host_start_soon.set(_start_soon_of(task_group))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        assert self._token is not None
        _host_start_soon.reset(self._token)
        # Loops seldom end of their own accord: leaving the block is
        # what ends them, so cancel rather than wait.
        self._task_group.cancel_scope.cancel()
        try:
            return await self._task_group.__aexit__(exc_type, exc, tb)
        finally:
            self._task_group = None
            self._token = None

    def __repr__(self) -> str:
        state = "active" if self._task_group is not None else "inactive"
        return f"<anytasks.BackgroundHost ({state})>"


def background() -> BackgroundHost:
    """Open a host in which :meth:`Loop.start` runs loops in the background.

    The host is an AnyIO task group (:class:`anyio.abc.TaskGroup`, a
    :class:`trio.Nursery` on Trio). Inside ``async with background():``, and in
    every task started from inside it, ``loop.start(...)`` schedules the loop in
    the host and returns at once.
    Such a loop is a daemon: an unhandled error is reported through its
    :meth:`~Loop.error` hook (by default logged on the ``anytasks`` logger),
    :meth:`~Loop.failed` becomes ``True``, and the other loops and the body of
    the block carry on. Leaving the block cancels the loops still running there
    and waits until their :meth:`~Loop.after_loop` hooks have finished.

    Hosts nest: ``start()`` uses the innermost one.

    Synopsis::

        async with anytasks.background():
            heartbeat.start()
            await serve_forever()
    """
    return BackgroundHost()
