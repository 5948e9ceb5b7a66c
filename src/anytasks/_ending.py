"""How a run ends: its outcome, the error hook and ``after_loop`` (a base of :class:`Runner`).

Once the iterations have stopped, for whatever reason, :meth:`Ending._end_run` decides what the
run's :class:`~anytasks.LoopEnd` is and calls ``after_loop`` with it, shielded; an unhandled
exception first goes to the error hook (:meth:`Ending._report_failure`).
"""

# Part of the Loop's own machinery, like the runner: it reads the Loop's underscored fields.
# pyright: reportPrivateUsage=false

from __future__ import annotations

import datetime
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from . import _backend, _events
from ._attempts import utc_from_timestamp
from ._cadence import Cadence
from ._cancellation import call_shielded, cancellation_requested
from ._handled import fails_the_run
from ._outcome import EndReason, LoopEnd
from ._state import STOPPING, LoopState

if TYPE_CHECKING:
    from ._loop import Loop

logger = logging.getLogger("anytasks")

_S = LoopState


class Ending(Cadence):
    """The end of each run of a loop: what ended it, and the hooks that hear of it."""

    __slots__ = ("cancelled", "end", "failure", "own_task", "restart_with")

    # The Runner's, read here.
    loop: Loop[Any, Any]
    # This part's own (the slots above).
    # Whether after_loop runs because the run was cancelled.
    cancelled: bool
    # How the latest run ended, once it has.
    end: LoopEnd | None
    # The unhandled exception that ends this run, once there is one.
    failure: BaseException | None
    # The task running the body and hooks (join() from there would wait for itself).
    own_task: object
    # The arguments of the run that a restart() asked for, until it begins.
    restart_with: tuple[tuple[Any, ...], dict[str, Any]] | None

    async def _end_run(self) -> None:
        self.next_deadline = None
        self.next_target = None
        if not self.cancelled and cancellation_requested(when_unknown=False):
            self.cancelled = True
        end = self.end = self._outcome()
        self.loop._last_end = end
        self.enter(_S.FINISHING)
        try:
            if self.loop._after_loop is not None:
                await self._finish_with_hook(end)
        finally:
            self.cancelled = False
            if _events.listening:
                _events.emit(_events.LoopEnded(self.loop, end))

    def _note_base_exception(self, exc: BaseException) -> None:
        """``exc``, no :class:`Exception`, goes through the run: if it is no cancellation,
        :class:`KeyboardInterrupt` or :class:`SystemExit`, the run fails with it (without the
        error hook, whose parameter is an Exception), and it goes on up."""
        if fails_the_run(exc):
            self.loop._failed = True
            self.failure = exc

    def _outcome(self) -> LoopEnd:
        """How the run that is ending ended."""
        if self.restart_with is not None:
            reason = EndReason.RESTARTED
        elif self.failure is not None:
            reason = EndReason.FAILED
        elif self.cancelled:
            reason = EndReason.CANCELLED
        elif self.current_loop == self.count or self.exhausted:
            reason = EndReason.COMPLETED
        elif self.state is STOPPING:
            reason = EndReason.STOPPED
        else:
            # Neither its count nor its schedule ended it: a KeyboardInterrupt or SystemExit
            # went through the loop.
            reason = EndReason.CANCELLED
        began = self.last_began
        if isinstance(began, datetime.datetime):
            slot: datetime.datetime | None = began.astimezone(datetime.timezone.utc)
        else:
            slot = None if began is None else utc_from_timestamp(self.wall_offset + began)
        exclusive = self.exclusive
        lease_lost = exclusive is not None and exclusive.lost
        return LoopEnd(reason, self.failure, self.current_loop, slot, lease_lost)

    async def _finish_with_hook(self, end: LoopEnd) -> None:
        try:
            # Only a hook needs the shield; an empty scope per loop made cancelling
            # 10 000 idle loops on Trio half as slow again.
            await call_shielded(
                functools.partial(self._after_hook, end), f"after_loop of loop {self.loop.name!r}"
            )
        except Exception as exc:
            if self.failure is None:
                raise
            # The body's error stays the one that ends the run.
            logger.error(  # noqa: TRY400  (not the exception being handled)
                "Exception in after_loop of loop %r, which had failed already",
                self.loop.name,
                exc_info=exc,
            )

    async def _after_hook(self, end: LoopEnd) -> None:
        # On asyncio this is a task of its own, which join() must know as the loop's.
        driving, self.own_task = self.own_task, _backend.current_task_object()
        loop: Loop[Any, Any] = self.loop
        try:
            if loop._takes_end(loop._instance is not None):
                await self._call_hook(loop._after_loop, end)
            else:
                await self._call_hook(loop._after_loop)
        finally:
            self.own_task = driving

    async def _call_hook(self, hook: Callable[..., Awaitable[Any]] | None, *args: Any) -> None:
        if hook is None:
            return
        instance = self.loop._instance
        if instance is not None:
            await hook(instance, *args)
        else:
            await hook(*args)

    async def _report_failure(self, exc: Exception) -> None:
        loop: Loop[Any, Any] = self.loop
        error, instance = loop._error, loop._instance
        if error is None:
            logger.error("Unhandled exception in loop %r", loop.name, exc_info=exc)
        elif instance is not None:
            await error(instance, exc)
        else:
            await error(exc)
