"""End to end: the programs anytasks is used in.

- a discord.py bot (the real package, no network) whose Cog starts its loop and
  cancels it in ``cog_unload``, with ``before_loop`` awaiting ``wait_until_ready()``;
- a plain Trio program with loops in a nursery (``test_trio_native.py``, on
  pytest-trio);
- loops nested in task groups, where cancelling the outer scope ends them all.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest

import anytasks

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("anyio_backend", ["asyncio", "asyncio+uvloop"], indirect=True)
async def test_discord_bot_cog_loop(backend_name: str) -> None:
    import discord
    from discord.ext import commands

    interval = 5.0 if backend_name == "asyncio" else 0.01  # virtual time on plain asyncio
    events: list[str] = []

    class Ticker(commands.Cog):
        def __init__(self, bot: commands.Bot) -> None:
            self.bot = bot
            self.index = 0
            self.printer.start()

        async def cog_unload(self) -> None:
            self.printer.cancel()

        @anytasks.loop(seconds=interval)
        async def printer(self) -> None:
            events.append(f"tick {self.index}")
            self.index += 1
            if self.index == 3:
                await self.bot.remove_cog("Ticker")

        @printer.before_loop
        async def before_printer(self) -> None:
            events.append("waiting")
            await self.bot.wait_until_ready()
            events.append(f"ready as {self.bot.command_prefix}")

        @printer.after_loop
        async def after_printer(self) -> None:
            events.append(f"unloaded cancelled={self.printer.is_being_cancelled()}")

    async with commands.Bot(command_prefix="!", intents=discord.Intents.none()) as bot:
        cog = Ticker(bot)
        await bot.add_cog(cog)
        assert isinstance(cog.printer.get_task(), asyncio.Task)
        await anyio.sleep(interval)
        assert events == ["waiting"]
        bot._ready.set()  # what a gateway READY would do
        await cog.printer.join()
    assert events == [
        "waiting",
        "ready as !",
        "tick 0",
        "tick 1",
        "tick 2",
        "unloaded cancelled=True",
    ]
    assert bot.get_cog("Ticker") is None


@pytest.mark.virtual_time
async def test_loops_nested_in_task_groups_all_end_with_the_outer_scope() -> None:
    ended: list[str] = []
    inner_runs = {"a": 0, "b": 0}

    def make_inner(label: str) -> anytasks.Loop[[], None]:
        @anytasks.loop(seconds=1, name=label)
        async def inner() -> None:
            inner_runs[label] += 1

        @inner.after_loop
        async def after() -> None:
            await anyio.sleep(0.5)
            ended.append(f"{label} cancelled={inner.is_being_cancelled()}")

        return inner

    inner_a, inner_b = make_inner("a"), make_inner("b")

    @anytasks.loop(seconds=10)
    async def outer() -> None:
        # A body that runs its own task group of loops; it never returns.
        async with anyio.create_task_group() as tg:
            tg.start_soon(inner_a.run)
            tg.start_soon(inner_b.run)

    @outer.after_loop
    async def outer_after() -> None:
        ended.append(f"outer cancelled={outer.is_being_cancelled()}")

    with anyio.move_on_after(5.5) as scope:
        await outer.run()
    assert scope.cancelled_caught
    assert inner_runs == {"a": 6, "b": 6}
    assert sorted(ended[:2]) == ["a cancelled=True", "b cancelled=True"]
    assert ended[2] == "outer cancelled=True"
    assert not any(lp.is_running() for lp in (outer, inner_a, inner_b))
