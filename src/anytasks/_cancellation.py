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

Neither Trio nor asyncio is imported here: a backend nobody imported cannot be running.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    import asyncio

logger = logging.getLogger("anytasks")


def current_asyncio_task() -> asyncio.Task[Any] | None:
    """The asyncio task running the caller, or ``None`` on Trio (guest mode included)."""
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            pass  # Trio is imported but not running this task
        else:
            return None
    asyncio_module = sys.modules.get("asyncio")
    if asyncio_module is None:
        return None
    try:
        task: asyncio.Task[Any] | None = asyncio_module.current_task()
    except RuntimeError:
        return None  # no running event loop in this thread
    return task


def cancellation_requested() -> bool:
    """Whether the calling task has been asked to stop.

    True when a cancel scope around the caller (an AnyIO or Trio scope, up to the nearest
    shield) has been cancelled or, on asyncio, when ``Task.cancel()`` has been called on the
    task and not withdrawn. On Python 3.10, asyncio does not count ``Task.cancel()`` calls, so a
    cancellation that no scope asked for counts as requested unless the task is a loop's own
    fallback task (:func:`new_fallback_task`), which keeps count itself.
    """
    if anyio.current_effective_deadline() == -math.inf:
        return True
    task = current_asyncio_task()
    if task is None:
        return False  # on Trio only scopes cancel
    return native_cancel_requested(task)


def native_cancel_requested(task: asyncio.Task[Any]) -> bool:
    """Whether ``Task.cancel()`` from outside AnyIO is pending on ``task``."""
    if sys.version_info >= (3, 11):
        return task.cancelling() > 0
    return bool(getattr(task, "native_cancel_requested", True))  # pragma: no cover


def new_fallback_task(
    event_loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None], name: str
) -> asyncio.Task[None]:
    """The task of a loop started with ``start()`` on asyncio with no host."""
    if sys.version_info >= (3, 11):
        return event_loop.create_task(coro, name=name)
    return _counting_task_class()(coro, loop=event_loop, name=name)  # pragma: no cover


if sys.version_info < (3, 11):  # pragma: no cover
    _counting_task: type[asyncio.Task[None]] | None = None

    def _counting_task_class() -> type[asyncio.Task[None]]:
        """A task that remembers a native ``cancel()``, which asyncio before 3.11 forgets.

        AnyIO cancels tasks with a message of its own; any other ``cancel()`` is native.
        """
        global _counting_task
        if _counting_task is None:
            import asyncio

            class _CountingTask(asyncio.Task[None]):
                native_cancel_requested = False

                def cancel(self, msg: Any = None) -> bool:
                    if not (isinstance(msg, str) and msg.startswith("Cancelled via cancel scope")):
                        self.native_cancel_requested = True
                    return super().cancel(msg)

            _counting_task = _CountingTask
        return _counting_task


async def call_shielded(hook: Callable[[], Awaitable[object]]) -> None:
    """Await ``hook()`` to its end, shielded from every cancellation; deliver any after it.

    On asyncio the hook runs in a task of its own (with a copy of the caller's context), which
    the caller waits for without passing a native ``Task.cancel()`` on to it. If the caller was
    cancelled meanwhile, that cancellation is raised once the hook has finished, and an
    exception of the hook is then logged rather than raised.
    """
    with anyio.CancelScope(shield=True):
        task = current_asyncio_task()
        if task is None:
            await hook()
            return
        import asyncio

        async def call() -> None:
            await hook()

        hook_task = task.get_loop().create_task(call())
        pending: BaseException | None = None
        while not hook_task.done():
            try:
                # Unlike `await hook_task`, wait() does not cancel what it waits for.
                await asyncio.wait((hook_task,))
            except asyncio.CancelledError as exc:
                pending = exc
        if pending is None:
            hook_task.result()
            return
        if not hook_task.cancelled() and hook_task.exception() is not None:
            logger.error(
                "Exception in a cleanup hook, raised while its task was being cancelled",
                exc_info=hook_task.exception(),
            )
        raise pending
