"""The implementations under comparison, each behind the same two small interfaces.

``run_counted`` runs one loop with a zero interval for exactly ``count`` iterations
(W1). ``open_group`` yields a :class:`LoopGroup` that starts loops one by one and
cancels them all (W2-W4); leaving its ``async with`` block waits until every loop has
ended.

Implementations:

- ``anytasks``: ``anytasks.loop(seconds=...)(body)``, one ``Loop`` per loop, run with
  ``task_group.start_soon(loop.run, i)`` in one AnyIO task group.
- ``discord``: ``discord.ext.tasks.loop(seconds=...)(body)``, one per loop, ``.start(i)``.
- ``naive``: hand-written ``while True: await body(i); await sleep(interval)``.
- ``deadline``: hand-written, sleeping until ``start + k * interval`` on the event
  loop's clock (``trio.sleep_until``, or ``asyncio.sleep(deadline - loop.time())``).
- ``trio_util``: ``async for _ in trio_util.periodic(interval): await body(i)``.
- ``bare``: a task that sleeps forever and never runs a body: the memory floor
  (``asyncio.create_task`` / ``nursery.start_soon``).
- ``bare_anyio``: ``anyio.sleep_forever`` started in an AnyIO task group: what AnyIO's
  task group alone costs per task.
- ``anytasks_task``: ``Loop.start()`` with no host on asyncio, which makes a plain
  ``asyncio.Task`` as discord.py does (no AnyIO task group).
- ``anytasks_host``: ``loop.start(i)`` inside ``async with anytasks.background():``.
- ``proto_heap``, ``proto_wheel`` (and ``_noctx`` variants): issue 19's design as a
  prototype (``timer_host.py``): one timer structure served by one task per host, a task
  per job only while its body runs.

Imports are local to each implementation, so that a worker process loads only what
the configuration under test needs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Protocol

from _common import BACKENDS, Backend

Body = Callable[[int], Coroutine[Any, Any, None]]
CountedBody = Callable[[], Coroutine[Any, Any, None]]
LoopFunction = Callable[[int], Coroutine[Any, Any, None]]

SUPPORTED: dict[str, tuple[Backend, ...]] = {
    "anytasks": BACKENDS,
    "discord": ("asyncio", "uvloop"),
    "naive": BACKENDS,
    "deadline": BACKENDS,
    "trio_util": ("trio",),
    "bare": BACKENDS,
    "bare_anyio": BACKENDS,
    "anytasks_task": ("asyncio", "uvloop"),
    "anytasks_host": BACKENDS,
    "proto_heap": BACKENDS,
    "proto_wheel": BACKENDS,
    "proto_heap_noctx": BACKENDS,
    "proto_wheel_noctx": BACKENDS,
}


# Implementations that only sleep: they have no body and never iterate.
BODILESS = frozenset({"bare", "bare_anyio"})


class LoopGroup(Protocol):
    def start(self, i: int) -> None:
        """Start loop number ``i``, which calls ``body(i)``; returns at once."""

    def cancel(self) -> None:
        """Cancel every loop; the ``async with`` block then waits for them to end."""


# -- W1: one loop, zero interval, a fixed number of iterations -------------------------


async def run_counted(impl: str, backend: Backend, body: CountedBody, count: int) -> None:
    """Run one loop of ``impl`` with a zero interval until ``body`` has run ``count`` times."""
    if impl == "anytasks":
        import anytasks

        await anytasks.loop(seconds=0, count=count)(body).run()
    elif impl == "discord":
        from discord.ext import tasks

        await tasks.loop(seconds=0, count=count)(body).start()
    elif impl == "naive" and backend == "trio":
        import trio

        for _ in range(count):
            await body()
            await trio.sleep(0)  # noqa: ASYNC115 - the loop people write by hand
    elif impl == "naive":
        for _ in range(count):
            await body()
            await asyncio.sleep(0)
    elif impl == "trio_util":
        from trio_util import periodic

        async with contextlib.aclosing(periodic(0)) as ticks:
            done = 0
            async for _ in ticks:
                await body()
                done += 1
                if done == count:
                    break
    else:
        raise ValueError(f"no W1 loop for {impl!r} on {backend!r}")


# -- W2-W4: many loops -------------------------------------------------------------------


def open_group(
    impl: str, backend: Backend, interval: float, body: Body
) -> contextlib.AbstractAsyncContextManager[LoopGroup]:
    """An ``async with`` block in which loops of ``impl`` can be started and cancelled."""
    if backend not in SUPPORTED.get(impl, ()):
        raise ValueError(f"{impl!r} does not run on {backend!r}")
    if impl == "anytasks":
        return _anytasks_group(interval, body)
    if impl == "anytasks_task":
        return _anytasks_task_group(interval, body)
    if impl == "anytasks_host":
        return _anytasks_host_group(interval, body)
    if impl.startswith("proto_"):
        from timer_host import open_host

        return open_host(impl, backend, interval, body)
    if impl == "bare_anyio":
        return _bare_anyio_group()
    if impl == "discord":
        return _discord_group(interval, body)
    loop_function = _loop_function(impl, backend, interval, body)
    if backend == "trio":
        return _nursery_group(loop_function)
    return _asyncio_group(loop_function)


class _Group:
    __slots__ = ("cancel", "start")

    def __init__(self, start: Callable[[int], None], cancel: Callable[[], None]) -> None:
        self.start = start
        self.cancel = cancel


@contextlib.asynccontextmanager
async def _anytasks_group(interval: float, body: Body) -> AsyncIterator[LoopGroup]:
    import anyio

    import anytasks

    make_loop = anytasks.loop(seconds=interval)
    async with anyio.create_task_group() as task_group:

        def start(i: int) -> None:
            task_group.start_soon(make_loop(body).run, i)

        yield _Group(start, task_group.cancel_scope.cancel)


@contextlib.asynccontextmanager
async def _anytasks_task_group(interval: float, body: Body) -> AsyncIterator[LoopGroup]:
    import anytasks

    make_loop = anytasks.loop(seconds=interval)
    started: list[asyncio.Task[None]] = []

    def start(i: int) -> None:
        task = make_loop(body).start(i)
        assert task is not None  # no background() host is active
        started.append(task)

    async with _cancelling(started) as cancel:
        yield _Group(start, cancel)


@contextlib.asynccontextmanager
async def _anytasks_host_group(interval: float, body: Body) -> AsyncIterator[LoopGroup]:
    import anytasks

    make_loop = anytasks.loop(seconds=interval)
    # The loops are the caller's, as a service keeps its loops: kept until the block ends.
    loops: list[Any] = []

    def start(i: int) -> None:
        made = make_loop(body)
        loops.append(made)
        made.start(i)

    def cancel() -> None:
        pass  # leaving the host's block is what ends its loops

    async with anytasks.background():
        yield _Group(start, cancel)


@contextlib.asynccontextmanager
async def _bare_anyio_group() -> AsyncIterator[LoopGroup]:
    import anyio

    async with anyio.create_task_group() as task_group:

        def start(i: int) -> None:
            task_group.start_soon(anyio.sleep_forever)

        yield _Group(start, task_group.cancel_scope.cancel)


@contextlib.asynccontextmanager
async def _cancelling(started: list[asyncio.Task[None]]) -> AsyncIterator[Callable[[], None]]:
    """Cancel the ``started`` tasks on the way out and wait until they have ended."""

    def cancel() -> None:
        for task in started:
            task.cancel()

    try:
        yield cancel
    finally:
        cancel()
        if started:
            await asyncio.wait(started)


@contextlib.asynccontextmanager
async def _discord_group(interval: float, body: Body) -> AsyncIterator[LoopGroup]:
    from discord.ext import tasks

    make_loop = tasks.loop(seconds=interval)
    started: list[asyncio.Task[None]] = []

    def start(i: int) -> None:
        started.append(make_loop(body).start(i))

    async with _cancelling(started) as cancel:
        yield _Group(start, cancel)


@contextlib.asynccontextmanager
async def _asyncio_group(
    loop_function: LoopFunction,
) -> AsyncIterator[LoopGroup]:
    event_loop = asyncio.get_running_loop()
    started: list[asyncio.Task[None]] = []

    def start(i: int) -> None:
        started.append(event_loop.create_task(loop_function(i)))

    async with _cancelling(started) as cancel:
        yield _Group(start, cancel)


@contextlib.asynccontextmanager
async def _nursery_group(
    loop_function: LoopFunction,
) -> AsyncIterator[LoopGroup]:
    import trio

    async with trio.open_nursery() as nursery:

        def start(i: int) -> None:
            nursery.start_soon(loop_function, i)

        yield _Group(start, nursery.cancel_scope.cancel)


def _loop_function(impl: str, backend: Backend, interval: float, body: Body) -> LoopFunction:
    if backend == "trio":
        import trio

        if impl == "naive":

            async def naive(i: int) -> None:
                while True:
                    await body(i)
                    await trio.sleep(interval)

            return naive
        if impl == "deadline":

            async def deadline(i: int) -> None:
                next_start = trio.current_time()
                while True:
                    await body(i)
                    next_start += interval
                    await trio.sleep_until(next_start)

            return deadline
        if impl == "trio_util":
            from trio_util import periodic

            async def trio_util_periodic(i: int) -> None:
                async for _ in periodic(interval):
                    await body(i)

            return trio_util_periodic
        if impl == "bare":

            async def bare(i: int) -> None:
                await trio.sleep_forever()

            return bare
    else:
        if impl == "naive":

            async def naive_asyncio(i: int) -> None:
                while True:
                    await body(i)
                    await asyncio.sleep(interval)

            return naive_asyncio
        if impl == "deadline":

            async def deadline_asyncio(i: int) -> None:
                event_loop = asyncio.get_running_loop()
                next_start = event_loop.time()
                while True:
                    await body(i)
                    next_start += interval
                    await asyncio.sleep(max(next_start - event_loop.time(), 0))

            return deadline_asyncio
        if impl == "bare":

            async def bare_asyncio(i: int) -> None:
                await asyncio.get_running_loop().create_future()

            return bare_asyncio
    raise ValueError(f"no loop function for {impl!r} on {backend!r}")


def describe(impl: str) -> str:
    """A one-line description of an implementation, for the tables."""
    return _DESCRIPTIONS[impl]


_DESCRIPTIONS: dict[str, str] = {
    "anytasks": "anytasks.loop, run in an AnyIO task group",
    "discord": "discord.ext.tasks.loop(...).start()",
    "naive": "while True: body; await sleep(interval)",
    "deadline": "while True: body; await sleep_until(start + k*interval)",
    "trio_util": "async for _ in trio_util.periodic(interval)",
    "bare": "a task that sleeps forever (memory floor)",
    "bare_anyio": "anyio.sleep_forever started in an AnyIO task group",
    "anytasks_task": "anytasks Loop.start() with no host: a plain asyncio.Task",
    "anytasks_host": "anytasks Loop.start() in an anytasks.background() host",
    "proto_heap": "timer_host.py's prototype host, a heap of due times",
    "proto_wheel": "timer_host.py's prototype host, a timer wheel",
    "proto_heap_noctx": "proto_heap without a context per job",
    "proto_wheel_noctx": "proto_wheel without a context per job",
}
