"""One iteration's attempts: the timeout, the retries and their backoff, and its events.

:class:`Attempts` is the part of a :class:`~anytasks._runner.Runner` that runs one iteration
when it is more than ``await body()``: with a ``timeout``, under an exclusive loop's lease, or
with listeners to tell. The plain case stays inline in ``Cadence._iterate``, the hot path;
its retries come here too.
"""

# Part of the Runner, split out so each file answers one question; it reads the Loop's
# underscored fields by design.
# pyright: reportPrivateUsage=false

from __future__ import annotations

import datetime
import logging
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio

from . import _backend, _events
from ._handled import fails_the_run, is_handled
from ._outcome import IterationTimeout
from ._state import LoopState

if TYPE_CHECKING:
    from ._exclusive import Exclusive
    from ._loop import Loop
    from ._options import LoopOptions
    from ._outcome import IterationOutcome, SkipReason, TimeoutAction
    from ._retry import SupportsDelay

logger = logging.getLogger("anytasks")

_S = LoopState
_UTC = datetime.timezone.utc
_INF = math.inf

# The body, bound to its arguments.
Body = Callable[[], Awaitable[Any]]
# Who hears of an iteration: the listeners there were as it began (none: it is not reported).
Listeners = tuple[_events.Listener, ...]


def utc_from_timestamp(timestamp: float) -> datetime.datetime:
    """The aware UTC datetime of a Unix timestamp, or the latest one past the year 9999."""
    try:
        return datetime.datetime.fromtimestamp(timestamp, _UTC)
    except (OverflowError, ValueError, OSError):
        # past the year 9999 (``seconds=1e12``)
        return datetime.datetime.max.replace(tzinfo=_UTC)


class Attempts:
    """The attempts of one iteration, and what they report (a base of :class:`Cadence`)."""

    __slots__ = ("backoff", "iteration_started", "max_retries", "on_timeout", "timeout")

    # The Cadence's and the Runner's, read here.
    loop: Loop[Any, Any]
    options: LoopOptions
    current_loop: int
    interval: float | None
    wall_offset: float
    last_began: float | datetime.datetime | None
    last_target: datetime.datetime | None
    exclusive: Exclusive | None
    primitives: _backend.Primitives | None
    # This part's own (the slots above).
    timeout: float | None
    on_timeout: TimeoutAction
    max_retries: int | None
    # What the run's retries wait by, made at its first retry.
    backoff: SupportsDelay | None
    # When the iteration in progress began (event loop clock), while anyone listens.
    iteration_started: float | None

    def enter(self, new: LoopState) -> None:
        raise NotImplementedError

    def note_skipped(self, count: int, reason: SkipReason, *, report: bool = True) -> None:
        raise NotImplementedError

    async def _observed_iteration(self, call: Body, scheduled: float) -> None:
        """One iteration with a timeout, a lease or listeners: the hot path's slower twin.

        Its events go to the listeners (the loop's own, then the global ones) that there were
        as it began, and to no others: each listener hears of an iteration whole or not at
        all. One removed meanwhile still hears how the iteration ended, so that what it
        opened for the iteration (a span) is closed.
        """
        listeners = _events.listeners_of(self.loop) if _events.listening else ()
        if listeners:
            self._report_start(scheduled, listeners)
        try:
            exclusive = self.exclusive
            if exclusive is None:
                skipped = await self._attempts(call, listeners)
                outcome: IterationOutcome = "success" if skipped is None else "timeout"
            else:
                assert self.last_target is not None
                with exclusive.guard(self.last_target.astimezone(_UTC)) as scope:
                    skipped = await self._attempts(call, listeners)
                    outcome = "success" if skipped is None else "timeout"
                if scope.cancelled_caught:
                    logger.warning(
                        "Loop %r lost its lease during an iteration, which was cancelled",
                        self.loop.name,
                    )
                    outcome, skipped = "lease_lost", None
        except Exception as exc:
            if listeners:
                self._report_end(listeners, "error", exc)
            raise
        except BaseException as exc:
            if listeners:
                if fails_the_run(exc):  # pytest.fail()'s, say: the run fails with it
                    self._report_end(listeners, "error", exc)
                else:
                    self._report_end(listeners, "cancelled")
            raise
        if listeners:
            self._report_end(listeners, outcome, skipped)

    async def _attempts(self, call: Body, listeners: Listeners) -> IterationTimeout | None:
        """The attempts of one iteration, with their retries: None if one succeeded, else the
        timeout that was skipped (see :meth:`_attempt`)."""
        try:
            return await self._attempt(call, listeners)
        except Exception as exc:
            failed = exc
        # Outside the handler: a retry is no part of the failed attempt.
        return await self._retry(call, failed, listeners)

    async def _attempt(self, call: Body, listeners: Listeners) -> IterationTimeout | None:
        """Call the body once, under ``timeout`` if any: None if it returned, or the
        :class:`IterationTimeout` of a timeout that is skipped (``on_timeout="skip"``).

        :raises IterationTimeout: for a timeout that is an error or retried.
        """
        timeout = self.timeout
        if timeout is None:
            await call()
            return None
        # What the deadline raised in the body, kept as the cause of the IterationTimeout: its
        # traceback shows where the body was when the time ran out.
        cut: BaseException | None = None
        with anyio.CancelScope(deadline=anyio.current_time() + timeout) as scope:
            try:
                await call()
            except BaseException as exc:
                cut = exc
                raise
        if not scope.cancelled_caught:
            return None
        action, name = self.on_timeout, self.loop.name
        error = IterationTimeout(
            f"an iteration of loop {name!r} ran past its timeout of {timeout} s"
        )
        error.__cause__ = cut
        if listeners:
            event = _events.IterationTimedOut(self.loop, self.current_loop, timeout, action)
            _events.deliver(event, listeners)
        if action == "skip":
            logger.warning(
                "Iteration of loop %r timed out after %s seconds; skipped", name, timeout
            )
            self.note_skipped(1, "timeout", report=False)
            if listeners:
                _events.deliver(_events.IterationSkipped(self.loop, "timeout", 1), listeners)
            return error  # what the iteration's end reports
        raise error

    async def _retry(
        self, call: Body, exc: Exception, listeners: Listeners = ()
    ) -> IterationTimeout | None:
        """Retry the iteration whose attempt raised ``exc``, with backoff, until an attempt
        succeeds or times out, skipped (return what :meth:`_attempt` did), or raises an
        unhandled exception.

        Not interruptible by stop(): the retries belong to the iteration.
        """
        retries = 0
        while True:
            retries += 1
            delay = self._retry_delay(exc, retries, listeners)
            if delay is None:
                raise exc
            self.enter(_S.BACKING_OFF)
            await anyio.sleep(delay)
            self.enter(_S.RUNNING)
            try:
                return await self._attempt(call, listeners)
            except Exception as again:
                exc = again

    def _retry_delay(self, exc: Exception, retries: int, listeners: Listeners) -> float | None:
        """The delay before retry number ``retries`` after ``exc``; None if it is unhandled."""
        owner: Loop[Any, Any] = self.loop
        if isinstance(exc, IterationTimeout):
            handled = self.on_timeout == "retry"
        else:
            handled = owner.reconnect and is_handled(exc, owner._exception_types)
        if not handled or (self.max_retries is not None and retries > self.max_retries):
            return None
        backoff = self.backoff
        if backoff is None:
            # Made once per run, at the first retry: discord.py's resets itself after a
            # quiet spell, so it is kept across iterations.
            from ._retry import new_backoff

            assert self.primitives is not None
            backoff = self.backoff = new_backoff(
                self.options.backoff, self.primitives.current_time
            )
        delay = backoff.delay()
        if type(delay) is not float or not 0.0 <= delay < _INF:
            # Not a float in range, as the default backoff's delays are: checked, before it is
            # logged or reported (an int passes; a forgotten return, None, fails the run).
            from ._retry import check_delay

            delay = check_delay(delay, backoff, exc)
        logger.warning(
            "Handled exception in loop %r; retrying in %.2f seconds",
            owner.name,
            delay,
            exc_info=exc,
        )
        if listeners:
            event = _events.IterationRetrying(owner, self.current_loop, retries, delay, exc)
            _events.deliver(event, listeners)
        return delay

    def _report_start(self, scheduled: float, listeners: Listeners) -> None:
        """Tell ``listeners`` that the iteration due at ``scheduled`` begins."""
        now = self.iteration_started = anyio.current_time()
        if self.interval is not None:
            slot = utc_from_timestamp(self.wall_offset + scheduled)
            lateness = now - scheduled
        else:
            assert isinstance(self.last_began, datetime.datetime)
            slot = self.last_began.astimezone(_UTC)
            lateness = (_backend.wall_now() - slot).total_seconds()
        event = _events.IterationStarted(self.loop, self.current_loop, slot, lateness)
        _events.deliver(event, listeners)

    def _report_end(
        self, listeners: Listeners, outcome: IterationOutcome, exc: BaseException | None = None
    ) -> None:
        # Set as the same listeners heard the iteration begin.
        started = self.iteration_started
        assert started is not None
        duration = anyio.current_time() - started
        event = _events.IterationFinished(self.loop, self.current_loop, outcome, duration, exc)
        _events.deliver(event, listeners)
