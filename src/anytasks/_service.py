"""``anytasks run`` as a service: loops run until they end, or until SIGTERM or SIGINT.

Signals are followed as the common convention has it:

1. The first signal stops every loop (iterations in progress finish) and gives them ``grace``
   seconds to end.
2. After ``grace`` seconds, or at a second signal, the loops still running are cancelled
   (their ``after_loop`` hooks still run).
3. A third signal, or loops still running ``grace`` seconds after the cancellation (a hook
   or a shielded body that does not end), exit the process at once, with status 128 plus the
   signal's number, as a shell reports death by that signal.

Otherwise the service returns once every loop has ended, by a signal or on its own
(``count=``, or an unhandled error); a loop failed if its body or one of its hooks raised.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any, NoReturn, final

import anyio

from ._events import Listener, add_listener, remove_listener
from ._host import background
from ._loop import Loop

logger = logging.getLogger("anytasks.run")
# A hook's error goes where a background host logs it: on the loops' own logger.
loops_logger = logging.getLogger("anytasks")

#: The signals that end the service: SIGTERM from a supervisor, SIGINT from a terminal.
SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)

AnyLoop = Loop[..., Any]


async def serve(
    loops: Sequence[AnyLoop], *, grace: float, listeners: Sequence[Listener] = ()
) -> bool:
    """Run ``loops`` until they have all ended; return whether none failed, nor any hook raised.

    A third signal, or loops that outlive ``grace`` seconds after their cancellation, end the
    process at once (see the module).

    :param grace: seconds between the first signal's ``stop()`` and ``cancel()``, and
        between ``cancel()`` and the exit.
    :param listeners: get the events of every loop while the service runs (the health file,
        the metrics).
    """
    service = _Service(grace)
    for listener in listeners:
        add_listener(listener)
    try:
        with anyio.open_signal_receiver(*SHUTDOWN_SIGNALS) as signals:
            async with anyio.create_task_group() as watcher:
                watcher.start_soon(service.follow, signals)
                await service.run_loops(loops)
                watcher.cancel_scope.cancel()
    finally:
        for listener in listeners:
            remove_listener(listener)
    return service.report()


@final
class _Service:
    """One ``anytasks run``: the loops it runs, and the signals it has received."""

    __slots__ = (
        "_cancelled",
        "_deadline",
        "_failed",
        "_grace",
        "_running",
        "_signal",
        "_signals",
    )

    def __init__(self, grace: float) -> None:
        self._grace = grace
        # The loops whose tasks have not ended, in the order given.
        self._running: list[AnyLoop] = []
        # The loops that failed, or whose hook raised, in the order they ended.
        self._failed: list[AnyLoop] = []
        # The latest signal received, and how many were.
        self._signal: signal.Signals | None = None
        self._signals = 0
        self._cancelled = False
        # When the grace period ends: of the stop, then of the cancellation.
        self._deadline = math.inf

    # -- the loops ------------------------------------------------------------------------

    async def run_loops(self, loops: Sequence[AnyLoop]) -> None:
        # Before the first checkpoint, so that a signal from now on stops these loops.
        self._running = list(loops)
        logger.info("running %s", _names(loops))
        # A loop's own `other.start()` runs `other` in this host, as in background().
        async with background(), anyio.create_task_group() as group:
            for loop in loops:
                group.start_soon(self._run_loop, loop, name=loop.name)

    async def _run_loop(self, loop: AnyLoop) -> None:
        """``await loop.run()``, which raises what a background host would only log."""
        try:
            # A loop whose task begins after the first signal would miss its stop().
            if self._signal is None:
                await loop.run()
        except Exception as exc:
            self._failed.append(loop)
            end = loop.last_end
            if end is None or exc is not end.exception:
                # A hook's own error; the body's went to the error hook already.
                loops_logger.exception("Exception in a hook of loop %r", loop.name)
        finally:
            self._running.remove(loop)

    def report(self) -> bool:
        """Log how the loops ended; return whether none failed."""
        if self._failed:
            logger.error("every loop has ended; failed: %s", _names(self._failed))
            return False
        logger.info("every loop has ended")
        return True

    # -- the signals ----------------------------------------------------------------------

    async def follow(self, signals: AsyncIterator[signal.Signals]) -> None:
        """Stop at the first signal, cancel after the grace period or at the second, exit at
        once at the third or when the grace period after the cancellation is over."""
        self._first_signal(await signals.__anext__())
        while True:
            received = await self._next_signal(signals)
            if received is None:
                self._grace_over()
            else:
                self._another_signal(received)

    async def _next_signal(self, signals: AsyncIterator[signal.Signals]) -> signal.Signals | None:
        """The next signal, or None if the grace period ends first."""
        with anyio.CancelScope(deadline=self._deadline):
            return await signals.__anext__()
        return None

    def _first_signal(self, received: signal.Signals) -> None:
        self._note(received)
        self._deadline = anyio.current_time() + self._grace
        logger.info(
            "%s received: stopping %d loop(s) (%s), which get %g s to end",
            received.name,
            len(self._running),
            _names(self._running),
            self._grace,
        )
        for loop in self._running:
            loop.stop()

    def _another_signal(self, received: signal.Signals) -> None:
        self._note(received)
        if self._signals >= 3:
            self._exit_at_once(f"{received.name} received a third time")
        if self._cancelled:
            logger.warning("%s received: the loops are being cancelled already", received.name)
        else:
            logger.warning("%s received again: cancelling the loops now", received.name)
            self._cancel()

    def _grace_over(self) -> None:
        if not self._cancelled:
            logger.warning(
                "grace period of %g s is over: cancelling %s", self._grace, self._what()
            )
            self._cancel()
        else:
            self._exit_at_once(f"grace period of {self._grace:g} s after the cancellation is over")

    def _note(self, received: signal.Signals) -> None:
        self._signal = received
        self._signals += 1

    def _cancel(self) -> None:
        self._cancelled = True
        self._deadline = anyio.current_time() + self._grace
        for loop in self._running:
            loop.cancel()

    def _what(self) -> str:
        """What is still running, for the log."""
        # Once the loops named have ended, the service waits for those they started.
        return _names(self._running) or "loops started by the loops"

    def _exit_at_once(self, why: str) -> NoReturn:
        assert self._signal is not None
        status = 128 + self._signal
        logger.error(
            "%s: exiting at once with status %d; still running: %s", why, status, self._what()
        )
        _flush_output()
        # Not sys.exit(): unwinding would wait for the very hooks that do not end.
        os._exit(status)


def _flush_output() -> None:
    """Write out what os._exit() would lose: buffered log records and standard streams."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _names(loops: Sequence[AnyLoop]) -> str:
    return ", ".join(repr(loop.name) for loop in loops)
