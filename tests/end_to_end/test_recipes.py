"""The recipes of the discord.ext.tasks page, as written there, on asyncio and on Trio.

On asyncio the loops are started the discord.py way, ``self.printer.start()`` with no
host; on Trio the same classes run inside ``anytasks.background()``. Intervals are the
recipes' own (5 seconds, 5 minutes), on virtual time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
import pytest

import anytasks
from anytasks import loop

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]


@pytest.fixture
def host(backend_name: str) -> contextlib.AbstractAsyncContextManager[object]:
    """Where a Cog's ``start()`` goes: asyncio needs nothing, Trio needs a host."""
    if backend_name == "trio":
        return anytasks.background()
    return contextlib.nullcontext()


class Clock:
    def __init__(self) -> None:
        self.t0 = anyio.current_time()

    def __call__(self) -> float:
        return anyio.current_time() - self.t0


# -- "simple background task in a Cog" -----------------------------------------------------


class PrinterCog:
    def __init__(self) -> None:
        self.index = 0
        self.printed: list[tuple[float, int]] = []
        self.clock = Clock()
        self.printer.start()

    def cog_unload(self) -> None:
        self.printer.cancel()

    @loop(seconds=5.0)
    async def printer(self) -> None:
        self.printed.append((self.clock(), self.index))
        self.index += 1


async def test_simple_background_task_in_a_cog(
    host: contextlib.AbstractAsyncContextManager[object],
) -> None:
    async with host:
        cog = PrinterCog()
        await anyio.sleep(12)
        cog.cog_unload()
        await cog.printer.join()
    assert cog.printed == [(0, 0), (5, 1), (10, 2)]
    assert not cog.printer.is_running()


# -- "add exception types to handle during reconnect" ---------------------------------------


class PostgresConnectionError(Exception):
    """Stands in for asyncpg.PostgresConnectionError."""


class Pool:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.acquired = 0

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Pool]:
        if self.failures:
            self.failures -= 1
            raise PostgresConnectionError("connection refused")
        self.acquired += 1
        yield self


class Bot:
    def __init__(self, pool: Pool | None = None) -> None:
        self.pool = pool or Pool(0)
        self._ready = anyio.Event()

    async def wait_until_ready(self) -> None:
        await self._ready.wait()

    def set_ready(self) -> None:
        self._ready.set()


class BatchCog:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.data: list[int] = []
        self.batch_update.add_exception_type(PostgresConnectionError)
        self.batch_update.start()

    def cog_unload(self) -> None:
        self.batch_update.cancel()

    @loop(minutes=5.0)
    async def batch_update(self) -> None:
        async with self.bot.pool.acquire():
            self.data.append(self.batch_update.current_loop)


async def test_extra_exception_types_are_retried_on_reconnect(
    host: contextlib.AbstractAsyncContextManager[object],
) -> None:
    bot = Bot(Pool(failures=2))
    async with host:
        cog = BatchCog(bot)
        await anyio.sleep(10 * 60 + 1)
        cog.cog_unload()
        await cog.batch_update.join()
    # Two refused connections were retried within the first iteration.
    assert bot.pool.acquired == 3
    assert cog.data == [0, 1, 2]
    assert not cog.batch_update.failed()


# -- "loop a certain amount of times before exiting" ----------------------------------------


async def test_count_and_after_loop(host: contextlib.AbstractAsyncContextManager[object]) -> None:
    printed: list[object] = []
    clock = Clock()

    @loop(seconds=5.0, count=5)
    async def slow_count() -> None:
        printed.append(slow_count.current_loop)

    @slow_count.after_loop
    async def after_slow_count() -> None:
        printed.append("done!")

    async with host:
        slow_count.start()
        await slow_count.join()
    assert printed == [0, 1, 2, 3, 4, "done!"]
    assert clock() == 20


# -- "waiting until the bot is ready before the loop starts" --------------------------------


class ReadyCog:
    def __init__(self, bot: Bot) -> None:
        self.index = 0
        self.bot = bot
        self.log: list[str] = []
        self.printer.start()

    def cog_unload(self) -> None:
        self.printer.cancel()

    @loop(seconds=5.0)
    async def printer(self) -> None:
        self.log.append(f"print {self.index}")
        self.index += 1

    @printer.before_loop
    async def before_printer(self) -> None:
        self.log.append("waiting...")
        await self.bot.wait_until_ready()


async def test_waiting_for_the_bot_before_the_loop_starts(
    host: contextlib.AbstractAsyncContextManager[object],
) -> None:
    bot = Bot()
    async with host:
        cog = ReadyCog(bot)
        await anyio.sleep(30)
        assert cog.log == ["waiting..."]
        bot.set_ready()
        await anyio.sleep(6)
        cog.cog_unload()
        await cog.printer.join()
    assert cog.log == ["waiting...", "print 0", "print 1"]


# -- "doing something during cancellation" --------------------------------------------------


class BulkCog:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self._batch: list[int] = []
        self.inserted: list[list[int]] = []
        self.lock = anyio.Lock()
        self.bulker.start()

    async def do_bulk(self) -> None:
        await anyio.sleep(1)  # the database round trip
        self.inserted.append(self._batch)
        self._batch = []

    @loop(seconds=10.0)
    async def bulker(self) -> None:
        async with self.lock:
            await self.do_bulk()

    @bulker.after_loop
    async def on_bulker_cancel(self) -> None:
        if self.bulker.is_being_cancelled() and len(self._batch) != 0:
            await self.do_bulk()


async def test_doing_something_while_cancelling(
    host: contextlib.AbstractAsyncContextManager[object],
) -> None:
    async with host:
        cog = BulkCog(Bot())
        await anyio.sleep(2)
        cog._batch.extend([1, 2])
        await anyio.sleep(10)
        cog._batch.append(3)
        cog.bulker.cancel()
        await cog.bulker.join()
    # The first two runs flushed [] (at 0) and [1, 2] (at 10); the cancel flushed [3]
    # after awaiting the database, which shielding makes possible.
    assert cog.inserted == [[], [1, 2], [3]]
