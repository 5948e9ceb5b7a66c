"""The background host: a task group that ``Loop.start()`` schedules loops into."""

from __future__ import annotations

from contextvars import Token
from types import TracebackType
from typing import final

import anyio
from anyio.abc import TaskGroup

from ._engine import host as _engine_host
from ._engine.host import LoopHost


def current_host() -> LoopHost | None:
    """Where ``Loop.start()`` runs a loop: the innermost active host, if any."""
    return _engine_host.current.get()


@final
class BackgroundHost:
    """Runs loops started with :meth:`Loop.start` as daemons until the block ends.

    Create it with :func:`background`.
    """

    __slots__ = ("_host", "_task_group", "_token")

    def __init__(self) -> None:
        self._task_group: TaskGroup | None = None
        # What starts, parks and resumes the block's loops (anytasks._engine.host).
        self._host: LoopHost | None = None
        self._token: Token[LoopHost | None] | None = None

    async def __aenter__(self) -> BackgroundHost:
        if self._task_group is not None:
            raise RuntimeError(f"{self!r} cannot be entered twice")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        host = self._host = LoopHost(task_group)
        self._token = _engine_host.current.set(host)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        task_group, host = self._task_group, self._host
        assert task_group is not None
        assert host is not None
        assert self._token is not None
        _engine_host.current.reset(self._token)
        # Loops seldom end of their own accord: leaving the block is
        # what ends them, so cancel rather than wait.
        task_group.cancel_scope.cancel()
        try:
            await host.close()
        finally:
            try:
                result = await task_group.__aexit__(exc_type, exc, tb)
            except BaseException as raised:
                host.end(raised)  # raises a group if something escaped the loops too
                raise
            else:
                host.end()
            finally:
                self._task_group = self._host = self._token = None
        return result

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
