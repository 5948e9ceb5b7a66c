"""Reading and steering the run in progress through its ``Loop`` (a base of ``Loop``).

The readers and controls here look up the :class:`~anytasks._runner.Runner` of the run in
progress, if any, and ask it; with none, the loop is idle, and the readers say so. What
outlives a run (:meth:`Controls.failed`, :attr:`Controls.last_end`) is kept on the loop itself.
"""

# The Loop's own machinery: it reads the Runner's fields, which the Loop owns.
# pyright: reportPrivateUsage=false

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

import anyio

from ._runner import in_own_run
from ._settings import Settings
from ._state import LoopState

if TYPE_CHECKING:
    import asyncio

    from ._outcome import LoopEnd


class Controls(Settings):
    """What a :class:`~anytasks.Loop` is doing, and the controls that change it."""

    __slots__ = ("_failed", "_last_end")

    # Whether the last run ended with an unhandled exception (reset by the next start).
    _failed: bool
    # How the latest run ended, once one has.
    _last_end: LoopEnd | None

    # -- reading -------------------------------------------------------------------

    @property
    def state(self) -> LoopState:
        """What the loop is doing: see :class:`~anytasks.LoopState`.

        .. versionadded:: 0.2
        """
        run = self._run
        return LoopState.IDLE if run is None else run.state

    @property
    def current_loop(self) -> int:
        """How many iterations have completed in the current run; 0 when not running."""
        run = self._run
        return 0 if run is None else run.current_loop

    @property
    def next_iteration(self) -> datetime.datetime | None:
        """When the next iteration is due, as an aware UTC datetime.

        ``None`` when the loop is not running, is stopping or ending, or has not
        scheduled its first iteration yet (during :meth:`before_loop`).
        """
        run = self._run
        return None if run is None else run.next_iteration()

    @property
    def skipped(self) -> int:
        """How many due iterations the current run has skipped; 0 when not running.

        Skipped are the slots dropped by ``overrun="skip"``, ``"coalesce"`` or ``grace``, and
        those that came due while the loop was paused.

        .. versionadded:: 0.2
        """
        run = self._run
        return 0 if run is None else run.skipped

    def is_paused(self) -> bool:
        """Whether :meth:`pause` holds the loop (until :meth:`resume` or the run's end).

        .. versionadded:: 0.2
        """
        run = self._run
        return run is not None and run.paused

    def is_running(self) -> bool:
        """Whether the loop has been started and has not ended yet."""
        return self._run is not None

    def is_being_cancelled(self) -> bool:
        """Whether the loop is being cancelled (true in :meth:`after_loop` after a cancel)."""
        run = self._run
        return run is not None and run.is_being_cancelled()

    def failed(self) -> bool:
        """Whether the last run ended with an unhandled exception; reset by the next start."""
        return self._failed

    @property
    def last_end(self) -> LoopEnd | None:
        """How the latest run ended (set as it ends, before ``after_loop``); ``None`` if
        the loop has never ended a run.

        .. versionadded:: 0.2
        """
        return self._last_end

    def get_task(self) -> asyncio.Task[None] | None:
        """The :class:`asyncio.Task` of a loop started without a host on asyncio, else ``None``."""
        run = self._run
        return run.task if run is not None else None

    # -- steering ------------------------------------------------------------------

    def stop(self) -> None:
        """Let the iteration in progress finish, then end the loop.

        If the loop is waiting for its next iteration, it ends at once, without
        running the body again. Called from :meth:`before_loop`, the loop ends
        before its first iteration. A handled error's retries belong to the
        current iteration: they go on until it succeeds (use :meth:`cancel` or
        :meth:`clear_exception_types` to avoid that). Does nothing if the loop
        is not running.
        """
        run = self._run
        if run is not None:
            self._check_thread(run, "stop")
            run.stop()

    def cancel(self) -> None:
        """Cancel the loop wherever it is (body, wait, backoff, :meth:`before_loop`).

        :meth:`after_loop` then runs, shielded from this cancellation, with
        :meth:`is_being_cancelled` true. Does nothing if the loop is not running.
        """
        run = self._run
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
        run = self._run
        if run is not None:
            self._check_thread(run, "pause")
            run.pause()

    def resume(self) -> None:
        """Undo :meth:`pause`: the loop runs again from its next slot on.

        .. versionadded:: 0.2
        """
        run = self._run
        if run is not None:
            self._check_thread(run, "resume")
            run.resume()

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
        run = self._run
        if run is not None:
            if in_own_run(run):
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
        return self._last_end
