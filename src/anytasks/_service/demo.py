"""Demo: the recipes of the discord.ext.tasks page, run side by side for a few seconds.

Run ``python -m anytasks demo --backend trio`` (or ``asyncio``, ``asyncio+uvloop``). The
recipes' intervals are scaled down from seconds to tenths of seconds so the whole
demo ends in about five seconds.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import anyio

import anytasks
from anytasks import loop

SCALE = 0.1  # "seconds=5.0" in a recipe runs every 0.5 s here

_t0 = 0.0


def say(recipe: str, message: str) -> None:
    print(f"{anyio.current_time() - _t0:5.2f}s  {recipe:<10} {message}", flush=True)


class FakeBot:
    """Stands in for discord.py's Bot: ready after a moment, with a flaky database."""

    def __init__(self) -> None:
        self._ready = anyio.Event()
        self.refusals: int = 1

    async def wait_until_ready(self) -> None:
        await self._ready.wait()

    async def connect(self) -> None:
        await anyio.sleep(1.0)
        say("bot", "ready")
        self._ready.set()

    async def query(self) -> None:
        if self.refusals:
            self.refusals -= 1
            raise DatabaseUnavailable("connection refused")


class DatabaseUnavailable(Exception):
    pass


class PrinterCog:
    """Recipe 1 (simple background task) and 4 (wait until the bot is ready)."""

    def __init__(self, bot: FakeBot) -> None:
        self.index: int = 0
        self.bot = bot
        self.printer.start()

    def cog_unload(self) -> None:
        self.printer.cancel()

    @loop(seconds=5.0 * SCALE)
    async def printer(self) -> None:
        say("printer", f"index {self.index}")
        self.index += 1

    @printer.before_loop
    async def before_printer(self) -> None:
        say("printer", "waiting for the bot...")
        await self.bot.wait_until_ready()


class BatchCog:
    """Recipe 2: an extra exception type retried with backoff."""

    def __init__(self, bot: FakeBot) -> None:
        self.bot = bot
        self.batch_update.add_exception_type(DatabaseUnavailable)
        self.batch_update.start()

    def cog_unload(self) -> None:
        self.batch_update.cancel()

    @loop(seconds=2.0)  # minutes=5.0 in the recipe
    async def batch_update(self) -> None:
        await self.bot.query()
        say("batch", f"batch update #{self.batch_update.current_loop} done")


class BulkCog:
    """Recipe 5: flush what is left while being cancelled."""

    def __init__(self) -> None:
        self._batch: list[int] = []
        self.lock: anyio.Lock = anyio.Lock()
        self.bulker.start()

    def cog_unload(self) -> None:
        self.bulker.cancel()

    async def do_bulk(self) -> None:
        await anyio.sleep(0.2)
        say("bulker", f"inserted {self._batch}")
        self._batch = []

    @loop(seconds=10.0 * SCALE)
    async def bulker(self) -> None:
        async with self.lock:
            await self.do_bulk()

    @bulker.after_loop
    async def on_bulker_cancel(self) -> None:
        if self.bulker.is_being_cancelled() and len(self._batch) != 0:
            say("bulker", f"cancelled with {len(self._batch)} rows left; flushing")
            await self.do_bulk()


@loop(seconds=5.0 * SCALE, count=5)
async def slow_count() -> None:
    say("count", f"current_loop {slow_count.current_loop}")


@slow_count.after_loop
async def after_slow_count() -> None:
    say("count", "done!")


async def main() -> None:
    global _t0
    _t0 = anyio.current_time()
    bot = FakeBot()
    async with anytasks.background():
        cogs: list[Any] = [PrinterCog(bot), BatchCog(bot), BulkCog()]
        slow_count.start()
        await bot.connect()
        for n in range(1, 6):
            cogs[2]._batch.append(n)
            await anyio.sleep(0.5)
        cogs[2]._batch.append(6)
        say("demo", "unloading the cogs")
        for cog in cogs:
            cog.cog_unload()
    say("demo", "every loop has ended")


class _OneLineFormatter(logging.Formatter):
    """Log records as one line each, the exception reduced to its message."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{anyio.current_time() - _t0:5.2f}s  {record.name:<10} {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += f" ({type(exc).__name__}: {exc})"
        return text


def run_demo(label: str, backend: str, options: dict[str, Any]) -> int:
    """Run the demo on ``backend`` (with its ``anyio.run`` options); ``label`` names it."""
    print(f"anytasks {anytasks.__version__} demo on {label}", flush=True)
    # Show the loops' own log lines (the reconnect warning) among the demo's output.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_OneLineFormatter())
    logger = logging.getLogger("anytasks")
    logger.addHandler(handler)
    try:
        anyio.run(main, backend=backend, backend_options=options)
    finally:
        logger.removeHandler(handler)
    return 0
