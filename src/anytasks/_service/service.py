"""``anytasks run`` as a service: loops run until they end, or until SIGTERM or SIGINT.

Signals are followed from the start, as the common convention has it:

1. The first signal stops every loop (iterations in progress finish) and gives them ``grace``
   seconds to end. While the loops are still being prepared (an async factory awaited), it
   cancels that instead, and no loop runs.
2. After ``grace`` seconds, or at a second signal, the loops still running are cancelled
   (their ``after_loop`` hooks still run).
3. A third signal, or loops still running ``grace`` seconds (at least
   :data:`MIN_CANCEL_GRACE`) after the cancellation (a hook or a shielded body that does not
   end), exit the process at once, with status 128 plus the signal's number, as a shell
   reports death by that signal.

Otherwise the service returns once every loop has ended, by a signal or on its own
(``count=``, or an unhandled error), with the exit status: 1 if a loop failed or a hook of
one raised, else 0.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, NoReturn, final

import anyio

from .._engine.events import Listener, add_listener, remove_listener
from .._frozen import Frozen
from .._loop import Loop
from .._running import RunningLoops, running

logger = logging.getLogger("anytasks.run")
# A hook's error goes where a background host logs it: on the loops' own logger.
loops_logger = logging.getLogger("anytasks")

#: The signals that end the service: SIGTERM from a supervisor, SIGINT from a terminal.
SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)

#: The least time that cancelled loops get to end, however short ``grace`` is: a cancellation
#: takes a few turns of the event loop and an ``after_loop`` to run, and ``--grace 0`` means
#: "cancel at once", not "exit at once".
MIN_CANCEL_GRACE = 1.0

AnyLoop = Loop[..., Any]


@final
class Setup(Frozen):
    """What the service runs: the loops, and the listeners that get their events meanwhile."""

    __slots__ = ("listeners", "loops")
    __match_args__ = ("loops", "listeners")

    loops: Sequence[AnyLoop]
    listeners: Sequence[Listener]

    def __init__(self, loops: Sequence[AnyLoop], listeners: Sequence[Listener] = ()) -> None:
        self._set(loops=loops, listeners=listeners)


async def serve(prepare: Callable[[], Awaitable[Setup]], *, grace: float) -> int:
    """Await ``prepare()``, run the loops it gives until they have all ended; return the exit
    status: 0, or 1 if a loop failed or a hook of one raised.

    A signal while ``prepare()`` runs cancels it, and no loop runs: status 0, since a
    shutdown was asked for and nothing failed. A third signal, or loops that outlive
    ``grace`` seconds after their cancellation, end the process at once (see the module).

    :param grace: seconds between the first signal's ``stop()`` and ``cancel()``, and
        between ``cancel()`` and the exit (at least :data:`MIN_CANCEL_GRACE`).
    :raises: what ``prepare()`` raises, other than the cancellation a signal asked for.
    """
    with anyio.open_signal_receiver(*SHUTDOWN_SIGNALS) as signals:
        service = _Service(grace)
        async with anyio.create_task_group() as watcher:
            watcher.start_soon(service.follow, signals)
            await service.run(prepare)
            watcher.cancel_scope.cancel()
    return service.exit_status()


@final
class _Service:
    """One ``anytasks run``: the loops it runs, and the signals it has received."""

    __slots__ = (
        "_cancelled",
        "_deadline",
        "_error",
        "_grace",
        "_loops",
        "_signal",
        "_signals",
        "_start_up",
        "_status",
    )

    def __init__(self, grace: float) -> None:
        self._grace = grace
        # While prepare() runs, its scope; the loops are not known yet.
        self._start_up: anyio.CancelScope | None = None
        # Once prepare() has given them: the loops, running as the services of a block.
        self._loops: RunningLoops | None = None
        # The latest signal received, and how many were.
        self._signal: signal.Signals | None = None
        self._signals = 0
        self._cancelled = False
        # When the grace period ends: of the stop, then of the cancellation.
        self._deadline = math.inf
        self._status = 0
        self._error: Exception | None = None

    # -- the loops ------------------------------------------------------------------------

    async def run(self, prepare: Callable[[], Awaitable[Setup]]) -> None:
        try:
            self._status = await self._prepare_and_run(prepare)
        except Exception as exc:
            # Raised by exit_status(), out of the task group, which would wrap it in an
            # exception group: main() must see a usage error, and the factory's own error
            # must show as it is.
            self._error = exc

    def exit_status(self) -> int:
        """0, or 1 if a loop failed or a hook of one raised; raises what prepare() raised."""
        if self._error is not None:
            raise self._error
        return self._status

    async def _prepare_and_run(self, prepare: Callable[[], Awaitable[Setup]]) -> int:
        setup = await self._prepare(prepare)
        if setup is None:
            logger.info("the start-up was cancelled: no loop ran")
            return 0
        for listener in setup.listeners:
            add_listener(listener)
        try:
            # The signals decide when the loops are stopped and cancelled (follow()); the
            # block's own stop, grace and cancel at its end find them ended already.
            logger.info("running %s", _names(setup.loops))
            async with running(*setup.loops, grace=self._grace) as self._loops:
                if self._signal is not None:  # it came as the block began: not missed
                    if self._cancelled:
                        self._loops.cancel()
                    else:
                        self._loops.stop()
                await self._loops.wait()
        finally:
            for listener in setup.listeners:
                remove_listener(listener)
        failed = self._loops.failed
        if failed:
            logger.error("every loop has ended; failed: %s", _names(failed))
            return 1
        logger.info("every loop has ended")
        return 0

    async def _prepare(self, prepare: Callable[[], Awaitable[Setup]]) -> Setup | None:
        """What ``prepare()`` gives, or None if a signal asked for the shutdown meanwhile."""
        setup = None
        with anyio.CancelScope() as self._start_up:
            setup = await prepare()
        self._start_up = None
        # Also if prepare() ended despite the cancellation: the shutdown was asked for.
        return None if self._signal is not None else setup

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
        if self._start_up is not None:
            logger.info(
                "%s received while starting: cancelling the start-up, which gets %g s to end",
                received.name,
                self._cancel_grace(),
            )
            self._cancel()
            return
        still = self._running()
        logger.info(
            "%s received: stopping %d loop(s) (%s), which get %g s to end",
            received.name,
            len(still),
            _names(still),
            self._grace,
        )
        if self._loops is not None:
            self._loops.stop()

    def _another_signal(self, received: signal.Signals) -> None:
        self._note(received)
        if self._signals >= 3:
            self._exit_at_once(f"{received.name} received a third time")
        if self._cancelled:
            what = "the start-up is" if self._start_up is not None else "the loops are"
            logger.warning("%s received: %s being cancelled already", received.name, what)
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
            seconds = self._cancel_grace()
            self._exit_at_once(f"grace period of {seconds:g} s after the cancellation is over")

    def _note(self, received: signal.Signals) -> None:
        self._signal = received
        self._signals += 1

    def _cancel(self) -> None:
        self._cancelled = True
        self._deadline = anyio.current_time() + self._cancel_grace()
        if self._start_up is not None:
            self._start_up.cancel()
        if self._loops is not None:
            self._loops.cancel()

    def _cancel_grace(self) -> float:
        """How long cancelled loops (or the start-up) get to end before the exit at once."""
        return max(self._grace, MIN_CANCEL_GRACE)

    def _what(self) -> str:
        """What is still running, for the log."""
        if self._start_up is not None:
            return "the start-up"
        # Once the loops named have ended, the service waits for those they started.
        return _names(self._running()) or "loops started by the loops"

    def _running(self) -> tuple[AnyLoop, ...]:
        return () if self._loops is None else self._loops.running

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
