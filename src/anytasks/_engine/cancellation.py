"""Cancellation as a loop sees it: which cancellations were asked for, and cleanup none cuts short.

Two facts of asyncio that AnyIO's cancel scopes do not cover:

- A ``CancelledError`` does not always mean that the task was cancelled. A body that awaits a
  future or a task that some library cancelled gets one although no scope and no
  ``Task.cancel()`` asked for it. Taken for a cancellation, it silently ended the loop and,
  in a :func:`~anytasks.background` host, the host and all its other loops. A loop treats
  such a stray ``CancelledError`` as an error of its own instead (:func:`cancellation_requested`).
- AnyIO's shield keeps out AnyIO's cancellations, not a native ``Task.cancel()``: a shutdown
  that cancels every task twice cut ``after_loop`` short. :func:`call_shielded` runs a cleanup
  hook so that nothing can, and delivers the cancellation after it.
"""

from __future__ import annotations

import contextvars
import logging
import math
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import anyio

from .backend import current_asyncio_task, current_effective_deadline

if TYPE_CHECKING:
    import asyncio

logger = logging.getLogger("anytasks")


def cancellation_requested(*, when_unknown: bool) -> bool:
    """Whether the calling task has been asked to stop.

    True when a cancel scope around the caller (an AnyIO or Trio scope, up to the nearest
    shield) has been cancelled or, on asyncio, when ``Task.cancel()`` has been called on the
    task and not withdrawn. On Python 3.10, asyncio does not count ``Task.cancel()`` calls:
    there, for a task other than a loop's own fallback task (which counts them itself), the
    answer is ``when_unknown`` — ``True`` where mistaking a real cancellation for a stray one
    would swallow it, ``False`` where a false alarm would mislead (``is_being_cancelled()``).
    """
    if current_effective_deadline() == -math.inf:
        return True
    task = current_asyncio_task()
    if task is None:
        return False  # on Trio only scopes cancel
    if sys.version_info >= (3, 11):
        return task.cancelling() > 0
    return bool(getattr(task, "native_cancel_requested", when_unknown))  # pragma: no cover


def new_fallback_task(
    event_loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None], name: str
) -> asyncio.Task[None]:
    """The task of a loop started with ``start()`` on asyncio with no host."""
    if sys.version_info >= (3, 11):
        return event_loop.create_task(coro, name=name)
    return _task_classes()[0](coro, loop=event_loop, name=name)  # pragma: no cover


def new_host_task(
    event_loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, None],
    name: str,
    context: contextvars.Context | None,
) -> asyncio.Task[None]:
    """A task of a background() host on asyncio, in ``context`` (before Python 3.11, in a copy
    of it), else in a copy of the caller's.

    Made as ``asyncio.Task`` itself, not through the event loop's task factory: an eager one
    would run the coroutine before the host has made the task a child of its cancel scope.
    """
    if sys.version_info >= (3, 11):
        import asyncio

        return asyncio.Task(coro, loop=event_loop, name=name, context=context)
    cls = _task_classes()[0]  # pragma: no cover
    if context is None:  # pragma: no cover
        return cls(coro, loop=event_loop, name=name)
    return context.run(cls, coro, loop=event_loop, name=name)  # pragma: no cover


def _task_classes() -> tuple[type[asyncio.Task[None]], type[asyncio.Task[None]]]:
    """The task that counts native cancels (3.10) and the task no cancel reaches."""
    global _classes
    if _classes is None:
        import asyncio

        class CountingTask(asyncio.Task[None]):
            """A task that remembers a native ``cancel()``, which asyncio before 3.11 forgets.

            AnyIO 4.14+ cancels tasks with a message of its own; any other ``cancel()`` is
            native.
            """

            native_cancel_requested = False

            def cancel(self, msg: Any = None) -> bool:  # pragma: no cover (3.10)
                if not (isinstance(msg, str) and msg.startswith("Cancelled via cancel scope")):
                    self.native_cancel_requested = True
                return super().cancel(msg)

        class ShieldedTask(asyncio.Task[None]):
            """A task that refuses ``cancel()``: a shutdown waits for it instead."""

            def cancel(self, msg: Any = None) -> bool:
                return False

        _classes = (CountingTask, ShieldedTask)
    return _classes


_classes: tuple[type[asyncio.Task[None]], type[asyncio.Task[None]]] | None = None


async def call_shielded(hook: Callable[[], Awaitable[object]], what: str) -> None:
    """Await ``hook()`` to its end, shielded from every cancellation; deliver any after it.

    On asyncio the hook runs in a task of its own (with a copy of the caller's context) that
    refuses ``Task.cancel()``, so that neither a cancellation of the caller nor a shutdown that
    cancels every task can cut it short. If the caller was cancelled meanwhile, that
    cancellation is raised once the hook has finished, and an exception of the hook is then
    logged rather than raised. A ``CancelledError`` that the hook raises itself is a stray
    one (nothing cancels the hook's task): it is raised as a :class:`RuntimeError` naming
    ``what``.
    """
    with anyio.CancelScope(shield=True):
        task = current_asyncio_task()
        if task is None:
            await hook()
            return
        import asyncio

        async def call() -> None:
            await hook()

        hook_task = _task_classes()[1](call(), loop=task.get_loop())
        pending: BaseException | None = None
        while not hook_task.done():
            try:
                # Unlike `await hook_task`, wait() does not cancel what it waits for.
                await asyncio.wait((hook_task,))
            except asyncio.CancelledError as exc:
                pending = exc
        error: BaseException | None = None
        if not hook_task.cancelled():
            error = hook_task.exception()
        else:
            try:
                hook_task.result()
            except asyncio.CancelledError as exc:
                error = RuntimeError(
                    f"{what} raised a CancelledError that no cancel scope and no Task.cancel() "
                    "asked for (did it await a future or task that something else cancelled?)"
                )
                error.__cause__ = exc
        if pending is None:
            if error is not None:
                raise error
            return
        if error is not None:
            logger.error(
                "Exception in %s, raised while its task was being cancelled",
                what,
                exc_info=error,
            )
        raise pending
