"""``anytasks run`` as a service: loops in a background host, ended by SIGTERM or SIGINT.

The first signal stops every loop (iterations in progress finish) and gives them ``grace``
seconds to end; then, or at a second signal, the loops still running are cancelled (their
``after_loop`` hooks still run). The service returns when every loop has ended, whether
by a signal or on its own (``count=``, or an unhandled error).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio

from ._events import Listener, add_listener, remove_listener
from ._host import background
from ._loop import Loop

logger = logging.getLogger("anytasks.run")

#: The signals that end the service: SIGTERM from a supervisor, SIGINT from a terminal.
SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def serve(
    loops: Sequence[Loop[..., Any]], *, grace: float, listeners: Sequence[Listener] = ()
) -> bool:
    """Run ``loops`` until they have all ended; return whether none failed.

    :param grace: seconds between the first signal's ``stop()`` and ``cancel()``.
    :param listeners: get the events of every loop while the service runs (the health file,
        the metrics).
    """
    for listener in listeners:
        add_listener(listener)
    try:
        with anyio.open_signal_receiver(*SHUTDOWN_SIGNALS) as signals:
            async with background():
                for loop in loops:
                    loop.start()
                logger.info("running %s", _names(loops))
                async with anyio.create_task_group() as watcher:
                    watcher.start_soon(_shut_down_on_signal, signals, loops, grace)
                    for loop in loops:
                        await loop.join()
                    watcher.cancel_scope.cancel()
    finally:
        for listener in listeners:
            remove_listener(listener)
    failed = [loop for loop in loops if loop.failed()]
    if failed:
        logger.error("every loop has ended; failed: %s", _names(failed))
    else:
        logger.info("every loop has ended")
    return not failed


async def _shut_down_on_signal(
    signals: AsyncIterator[signal.Signals], loops: Sequence[Loop[..., Any]], grace: float
) -> None:
    received = await signals.__anext__()
    logger.info(
        "%s received: stopping %d loop(s), which get %g s to end", received.name, len(loops), grace
    )
    for loop in loops:
        loop.stop()
    with anyio.move_on_after(grace) as waited:
        received = await signals.__anext__()
        logger.warning("%s received again: cancelling the loops now", received.name)
    if waited.cancelled_caught:
        running = [loop for loop in loops if loop.is_running()]
        logger.warning("grace period of %g s is over: cancelling %s", grace, _names(running))
    for loop in loops:
        loop.cancel()
    async for received in signals:
        logger.warning("%s received: the loops are being cancelled already", received.name)


def _names(loops: Sequence[Loop[..., Any]]) -> str:
    return ", ".join(repr(loop.name) for loop in loops)
