"""``anytasks run`` as a service: loops in a background host, ended by SIGTERM or SIGINT.

The first signal stops every loop (iterations in progress finish) and gives them ``grace``
seconds to end; then, or at a second signal, the loops still running are cancelled (their
``after_loop`` hooks still run). The service returns when every loop has ended, whether
by a signal or on its own (``count=``, or an unhandled error); a loop failed if its body or
one of its hooks raised.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator, Sequence
from typing import Any, final

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

    :param grace: seconds between the first signal's ``stop()`` and ``cancel()``.
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

    __slots__ = ("_failed", "_grace", "_running", "_stopping")

    def __init__(self, grace: float) -> None:
        self._grace = grace
        # The loops whose tasks have not ended, in the order given.
        self._running: list[AnyLoop] = []
        # The loops that failed, or whose hook raised, in the order they ended.
        self._failed: list[AnyLoop] = []
        self._stopping = False

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
            if not self._stopping:
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
        received = await signals.__anext__()
        self._stopping = True
        logger.info(
            "%s received: stopping %d loop(s) (%s), which get %g s to end",
            received.name,
            len(self._running),
            _names(self._running),
            self._grace,
        )
        for loop in self._running:
            loop.stop()
        with anyio.move_on_after(self._grace) as waited:
            received = await signals.__anext__()
            logger.warning("%s received again: cancelling the loops now", received.name)
        if waited.cancelled_caught:
            logger.warning(
                "grace period of %g s is over: cancelling %s", self._grace, _names(self._running)
            )
        for loop in self._running:
            loop.cancel()
        async for received in signals:
            logger.warning("%s received: the loops are being cancelled already", received.name)


def _names(loops: Sequence[AnyLoop]) -> str:
    return ", ".join(repr(loop.name) for loop in loops)
