"""``async with anytasks.running(*loops):``: loops as the services of a block, such as a lifespan.

The block starts the loops; leaving it stops them, lets the iterations in progress finish for up
to ``grace`` seconds, cancels what is left, and returns once every ``after_loop`` has run. One
loop's unhandled error ends that loop only: it is reported (the error hook, by default a log
record with its traceback; ``failed()``, ``last_end``, events, metrics) and the other loops and
the block go on. Leaving the block does not raise it again: what the block yields says which
loops failed. ``anytasks run`` is built on it, and turns that into its exit status.
"""

from __future__ import annotations

import contextlib
import logging
from types import TracebackType
from typing import Any, final

import anyio

from ._checks import check_seconds
from ._host import background
from ._loop import Loop

logger = logging.getLogger("anytasks")

AnyLoop = Loop[..., Any]


@final
class RunningLoops:
    """Loops running as the services of an ``async with`` block: made by :func:`running`.

    .. versionadded:: 0.2
    """

    __slots__ = ("_ended", "_exits", "_failed", "_loops", "_running", "_stopping", "grace")

    grace: float
    """Seconds that leaving the block gives stopped loops to end before it cancels them."""

    def __init__(self, loops: tuple[AnyLoop, ...], grace: float) -> None:
        self._loops = loops
        self.grace = grace
        # The loops whose runs have not ended, in the order given, and those that failed, in
        # the order they ended.
        self._running: list[AnyLoop] = []
        self._failed: list[AnyLoop] = []
        # Whether stop() was called: a loop whose task begins after it would miss it.
        self._stopping = False
        # Set once every loop's task has ended (made on entering, in the event loop).
        self._ended: anyio.Event | None = None
        # The host and the task group, left in turn when the block ends.
        self._exits: contextlib.AsyncExitStack | None = None

    @property
    def loops(self) -> tuple[AnyLoop, ...]:
        """The loops, as given (each once)."""
        return self._loops

    @property
    def running(self) -> tuple[AnyLoop, ...]:
        """The loops whose runs have not ended yet."""
        return tuple(self._running)

    @property
    def failed(self) -> tuple[AnyLoop, ...]:
        """The loops whose run ended with an unhandled exception of the body or of a hook, in
        the order they ended."""
        return tuple(self._failed)

    def stop(self) -> None:
        """Stop every loop still running: iterations in progress finish (:meth:`Loop.stop
        <anytasks.Loop.stop>`)."""
        self._stopping = True
        for loop in self._running:
            loop.stop()

    def cancel(self) -> None:
        """Cancel every loop still running (:meth:`Loop.cancel <anytasks.Loop.cancel>`); their
        ``after_loop`` hooks still run."""
        self._stopping = True
        for loop in self._running:
            loop.cancel()

    async def wait(self) -> None:
        """Wait until every loop has ended (by itself, or stopped or cancelled)."""
        if self._ended is None:
            raise RuntimeError(f"{self!r}.wait() was called before its block was entered")
        await self._ended.wait()

    async def __aenter__(self) -> RunningLoops:
        if self._exits is not None:
            raise RuntimeError(f"{self!r} cannot be entered twice")
        for loop in self._loops:
            if loop.is_running():
                raise RuntimeError(
                    f"{loop!r} is running already: anytasks.running() starts the loops it is given"
                )
        async with contextlib.AsyncExitStack() as exits:
            # A loop's own `other.start()` runs `other` in this host, as in background().
            await exits.enter_async_context(background())
            group = await exits.enter_async_context(anyio.create_task_group())
            self._exits = exits.pop_all()
        # Before the first checkpoint: a stop() from now on reaches every loop.
        self._running = list(self._loops)
        self._ended = anyio.Event()
        if not self._running:
            self._ended.set()
        for loop in self._loops:
            group.start_soon(self._run_loop, loop, name=loop.name)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        exits = self._exits
        assert exits is not None
        try:
            self.stop()
            with anyio.move_on_after(self.grace):
                await self.wait()
            self.cancel()
        except BaseException as error:  # cancelled meanwhile: the loops are cancelled too
            await exits.__aexit__(type(error), error, error.__traceback__)
            raise
        if exc is not None and not isinstance(exc, Exception):
            # A cancellation (or KeyboardInterrupt): the task groups deliver it.
            return await exits.__aexit__(exc_type, exc, tb)
        # The block's own error goes up as it is, not in an exception group: the loops have
        # ended, or been cancelled, and the task groups end cleanly.
        await exits.__aexit__(None, None, None)
        return None

    async def _run_loop(self, loop: AnyLoop) -> None:
        """``await loop.run()``: its unhandled error ends it, reported, and nothing else."""
        try:
            if not self._stopping:
                await loop.run()
        except Exception as exc:
            self._failed.append(loop)
            end = loop.last_end
            if end is None or exc is not end.exception:
                # A hook's own error; the body's went to the error hook already.
                logger.exception("Exception in a hook of loop %r", loop.name)
        finally:
            self._running.remove(loop)
            if not self._running:
                assert self._ended is not None
                self._ended.set()

    def __repr__(self) -> str:
        names = ", ".join(repr(loop.name) for loop in self._loops)
        return f"<anytasks.RunningLoops [{names}] running={len(self._running)}>"


def running(*loops: AnyLoop, grace: float = 30.0) -> RunningLoops:
    """Run ``loops`` as the services of an ``async with`` block, such as a web app's lifespan.

    Entering the block starts each loop (as ``await loop.run()``, in a task of its own) and
    returns at once, without waiting for ``before_loop``. Leaving it, however it is left, stops
    the loops (iterations in progress finish), gives them ``grace`` seconds to end, then cancels
    those still running, and returns once every ``after_loop`` has run. A loop may end before
    (``count=``, or an unhandled error).

    One loop's unhandled error ends that loop only: the error hook reports it (by default a log
    record on the ``anytasks`` logger, with its traceback), :meth:`~anytasks.Loop.failed` and
    :attr:`~anytasks.Loop.last_end` say so, events and metrics count it; the other loops and the
    block go on, and leaving the block does not raise it again (a web server's shutdown should
    not fail for a loop that failed hours ago). The :class:`RunningLoops` the block yields says
    which loops failed, and stops or cancels them early.

    A loop that starts other loops with :meth:`~anytasks.Loop.start` runs them in the block too,
    as :func:`background` does; they are cancelled when it ends.

    :param grace: seconds that stopped loops get to end before they are cancelled.
    :raises TypeError: if an argument is not a :class:`~anytasks.Loop`.
    :raises ValueError: if ``grace`` is negative, NaN or infinite.
    :raises RuntimeError: on entering, if a loop is running already.

    .. versionadded:: 0.2

    Synopsis::

        @contextlib.asynccontextmanager
        async def lifespan(app):
            async with anytasks.running(refresh_cache, prune_sessions, grace=10):
                yield

        app = Starlette(lifespan=lifespan)
    """
    given: list[AnyLoop] = []
    for index, loop in enumerate(loops):
        if not isinstance(loop, Loop):
            raise TypeError(
                f"anytasks.running() takes loops: argument {index} is an object of type "
                f"{type(loop).__name__!r}, not a Loop"
            )
        if not any(loop is seen for seen in given):
            given.append(loop)
    return RunningLoops(tuple(given), check_seconds("grace", grace))
