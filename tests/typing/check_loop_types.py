"""What the type checkers must infer for anytasks, and which calls they must reject.

mypy and pyright check this file (``files``/``include`` in pyproject.toml); pytest does not
collect it (it is not named ``test_*.py``), and nothing in it runs on import.

``assert_type`` pins an inferred type. A line that must be an error carries
``# type: ignore[<mypy code>]`` and ``# pyright: ignore[<pyright rule>]``: mypy's
``warn_unused_ignores`` (part of ``strict``) and pyright's ``reportUnnecessaryTypeIgnoreComment``
make the check fail if that error ever goes away.
"""

from __future__ import annotations

import asyncio
import datetime
import random
from typing import Any

from typing_extensions import assert_type

import anytasks
import anytasks.testing
from anytasks import BackgroundHost, ExponentialBackoff, Loop, loop

NINE = datetime.time(9)


# Positional-only, so that the ParamSpec is spelled `[int, str]`: with names, the checkers
# would compare them too, and `Loop[[int, str], None]` cannot spell them.
@loop(seconds=1)
async def ticker(n: int, label: str, /) -> None:
    pass


@loop(hours=1)
async def greeter(name: str, *, loud: bool = False) -> None:
    pass


@loop(minutes=5, count=3, reconnect=False, name="answer")
async def answer() -> int:
    return 42


@loop(time=NINE)
async def daily() -> None:
    pass


@loop(time=[NINE, datetime.time(17)], count=2)
async def twice_a_day(*, verbose: bool = False) -> None:
    pass


@ticker.after_loop
async def after_ticker() -> int:
    return 0


@ticker.error
async def on_ticker_error(exc: Exception) -> str:
    return str(exc)


def not_async() -> None:
    pass


class Cog:
    @loop(seconds=5)
    async def printer(self, n: int, /) -> None:
        pass

    @printer.before_loop
    async def before_printer(self) -> bytes:
        return b""

    @printer.after_loop
    async def after_printer(self) -> None:
        pass

    @printer.error
    async def printer_error(self, exc: Exception) -> str:
        return str(exc)


# -- the decorated function's signature carries over ----------------------------------


async def check_function_loop() -> None:
    assert_type(ticker, Loop[[int, str], None])
    assert_type(answer, Loop[[], int])
    assert_type(daily, Loop[[], None])

    assert_type(await answer(), int)
    await ticker(1, "x")
    await greeter(name="x", loud=True)
    await twice_a_day(verbose=True)

    assert_type(ticker.start(1, "x"), asyncio.Task[None] | None)
    assert_type(answer.start(), asyncio.Task[None] | None)
    greeter.start("x", loud=True)
    await ticker.run(1, "x")
    await greeter.run(name="x")
    await twice_a_day.run(verbose=True)
    ticker.restart(2, "y")
    await ticker.join()


async def check_method_loop(cog: Cog) -> None:
    # Through an instance, `self` is bound; through the class, the loop is as declared.
    assert_type(cog.printer, Loop[[int], None])
    assert_type(Cog.printer, Loop[[Cog, int], None])

    await cog.printer(1)
    assert_type(cog.printer.start(1), asyncio.Task[None] | None)
    await cog.printer.run(1)
    cog.printer.restart(2)


async def check_wrong_arguments(cog: Cog) -> None:
    ticker.start("1", "x")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    ticker.start()  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    ticker.start(1, "x", 2)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    await ticker.run(1, 2)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    await greeter.run(title="x")  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    greeter.start("x", True)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    await ticker(n=1, label="x")  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    ticker.restart(1)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    await ticker("1", "x")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    answer.start(1)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    twice_a_day.start(True)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    cog.printer.start("1")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    # `self` is already bound: passing it again is one argument too many.
    cog.printer.start(cog, 1)  # type: ignore[arg-type, call-arg]  # pyright: ignore[reportCallIssue]


# -- loop() arguments -----------------------------------------------------------------


def check_loop_arguments() -> None:
    loop()
    loop(seconds=0.5, minutes=1, hours=2, time=None)
    loop(time=[NINE], count=None, reconnect=True, name=None)

    # `time` cannot be mixed with a relative interval.
    loop(seconds=1, time=NINE)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    loop(hours=1, time=[NINE])  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    loop(seconds="5")  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    # pyright reports both that no overload matches and the bad argument.
    loop(time="09:00")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType, reportCallIssue]
    loop(count="3")  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    # A plain function is a body too (run in a worker thread): its types carry over.
    assert_type(loop(seconds=1)(not_async), anytasks.Loop[[], None])

    # The other forms of schedule, and the timing settings every form takes.
    loop(cron="*/5 * * * *", tz=datetime.timezone.utc, count=3, overrun="skip")
    loop(schedule=anytasks.every(seconds=5), grace=1.0, jitter=0.5, random=random.random)
    loop(schedule=anytasks.daily(NINE) | anytasks.cron("0 17 * * *"))
    # Two forms at once, and an unknown policy.
    loop(cron="* * * * *", time=NINE)  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue]
    loop(seconds=1, overrun="later")  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]


def check_change_interval() -> None:
    ticker.change_interval(seconds=2)
    ticker.change_interval(minutes=1, hours=1, time=None)
    daily.change_interval(time=[NINE])

    ticker.change_interval(seconds=1, time=NINE)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    ticker.change_interval(cron="0 * * * *")
    ticker.change_interval(schedule=anytasks.every(minutes=1))


async def check_ticks() -> None:
    async for tick in anytasks.ticks(seconds=1, count=2):
        assert_type(tick, anytasks.Tick)
        assert_type(tick.lateness, float)
    assert_type(ticker.ticks(count=1), anytasks.Ticks)
    assert_type(ticker.state, anytasks.LoopState)
    assert_type(ticker.preview(3), list[datetime.datetime])


# -- hooks return the function unchanged -----------------------------------------------


async def check_hooks(cog: Cog) -> None:
    # Each hook is still the function it was, with its own parameters and return type (a
    # decorator that returned Any or a looser callable would fail these).
    assert_type(await after_ticker(), int)
    assert_type(await on_ticker_error(ValueError()), str)
    assert_type(await cog.before_printer(), bytes)
    assert_type(await cog.printer_error(ValueError()), str)
    assert_type(await Cog.printer_error(cog, ValueError()), str)
    await cog.after_printer()

    await on_ticker_error()  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    await cog.printer_error("boom")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    ticker.before_loop(not_async)  # type: ignore[type-var]  # pyright: ignore[reportArgumentType]


# -- state ------------------------------------------------------------------------------


def check_state() -> None:
    assert_type(ticker.next_iteration, datetime.datetime | None)
    assert_type(ticker.seconds, float | None)
    assert_type(daily.time, list[datetime.time] | None)
    assert_type(ticker.current_loop, int)
    assert_type(ticker.count, int | None)
    assert_type(ticker.is_running(), bool)
    assert_type(ticker.get_task(), asyncio.Task[None] | None)
    assert_type(ticker.remove_exception_type(OSError), bool)
    ticker.add_exception_type(ConnectionError, TimeoutError)

    # Cancellation and KeyboardInterrupt are never retried.
    ticker.add_exception_type(KeyboardInterrupt)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


# -- ExponentialBackoff -----------------------------------------------------------------


def check_backoff(flag: bool) -> None:
    assert_type(ExponentialBackoff().delay(), float)
    assert_type(ExponentialBackoff(2, integral=False).delay(), float)
    assert_type(ExponentialBackoff(integral=True).delay(), int)
    assert_type(ExponentialBackoff(integral=flag), ExponentialBackoff[bool])
    assert_type(ExponentialBackoff(integral=flag).delay(), int | float)

    ExponentialBackoff(1.5)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]


# -- the background host and anytasks.testing ------------------------------------------


async def check_background() -> None:
    async with anytasks.background() as host:
        assert_type(host, BackgroundHost)
        assert_type(ticker.start(1, "x"), asyncio.Task[None] | None)


async def add(a: int, b: int) -> int:
    return a + b


def check_testing_run() -> None:
    start = datetime.datetime(2026, 3, 8, 6, 0, tzinfo=datetime.timezone.utc)
    assert_type(anytasks.testing.run(add, 1, 2), int)
    assert_type(anytasks.testing.run(answer, backend="trio", start=start), int)
    assert_type(anytasks.testing.virtual_time("trio"), tuple[str, dict[str, Any]])

    anytasks.testing.run(add, 1, "2")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    anytasks.testing.run(add, 1)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
