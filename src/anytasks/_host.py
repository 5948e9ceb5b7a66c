"""The background host: a task group that ``Loop.start()`` schedules loops into."""

from __future__ import annotations

from contextvars import ContextVar, Token
from types import TracebackType
from typing import final

import anyio
from anyio.abc import TaskGroup

# The task group of the innermost active host, as seen by the calling task.
_host_task_group: ContextVar[TaskGroup | None] = ContextVar("anytasks_host", default=None)


def current_host_task_group() -> TaskGroup | None:
    """Where ``Loop.start()`` runs a loop: the innermost host's task group, if any."""
    return _host_task_group.get()


@final
class BackgroundHost:
    """Runs loops started with :meth:`Loop.start` as daemons until the block ends.

    Create it with :func:`background`.
    """

    __slots__ = ("_task_group", "_token")

    def __init__(self) -> None:
        self._task_group: TaskGroup | None = None
        self._token: Token[TaskGroup | None] | None = None

    async def __aenter__(self) -> BackgroundHost:
        if self._task_group is not None:
            raise RuntimeError(f"{self!r} cannot be entered twice")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._token = _host_task_group.set(task_group)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        assert self._token is not None
        _host_task_group.reset(self._token)
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
