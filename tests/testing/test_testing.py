from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from importlib.metadata import version
from typing import Any

import anyio
import pytest
import trio
import trio.testing

import anytasks.testing
from anytasks._engine import backend as _backend
from anytasks.testing import VirtualEventLoop, virtual_clock, virtual_time, wall_now

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 8, 6, 0, tzinfo=timezone.utc)
HOUR = 3600.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return virtual_time(request.param, start=START)


def assert_close_to_real_now(value: datetime) -> None:
    assert value.tzinfo is timezone.utc
    assert abs(value - datetime.now(timezone.utc)) < timedelta(seconds=5)


# Suspends and a blocked event loop, simulated


async def test_suspend_moves_the_wall_clock_and_not_the_event_loop_clock() -> None:
    await anyio.sleep(HOUR)
    before = anyio.current_time()
    anytasks.testing.suspend(70 * HOUR)
    assert anyio.current_time() == before
    assert wall_now() == START + timedelta(hours=71)
    await anyio.sleep(HOUR)
    assert anyio.current_time() == before + HOUR
    assert wall_now() == START + timedelta(hours=72)


async def test_jump_moves_both_clocks_and_wakes_sleepers_late() -> None:
    woke: list[float] = []

    async def sleeper() -> None:
        await anyio.sleep(1)
        woke.append(anyio.current_time())

    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper)
        await anyio.sleep(0.25)
        anytasks.testing.jump(3.5)
        assert anyio.current_time() == start + 3.75
    assert woke == [start + 3.75]  # due at 1, woken when the event loop looked again
    assert wall_now() == START + timedelta(seconds=3.75)


@pytest.mark.parametrize("simulate", ["suspend", "jump"])
@pytest.mark.parametrize(
    ("seconds", "error", "message"),
    [
        (-1, ValueError, r"^`seconds` must be a non-negative finite number, got -1$"),
        (float("nan"), ValueError, r"^`seconds` must be a non-negative finite number, got nan$"),
        (float("inf"), ValueError, r"^`seconds` must be a non-negative finite number, got inf$"),
        ("1", TypeError, r"^`seconds` must be a number, not 'str'$"),
        (True, TypeError, r"^`seconds` must be a number, not 'bool'$"),
    ],
)
async def test_suspend_and_jump_check_seconds(
    simulate: str, seconds: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        getattr(anytasks.testing, simulate)(seconds)
    assert wall_now() == START


@pytest.mark.parametrize("simulate", ["suspend", "jump"])
@pytest.mark.parametrize(
    ("backend", "options"),
    [("asyncio", {}), ("trio", {}), ("trio", {"clock": trio.testing.MockClock()})],
)
def test_suspend_and_jump_need_virtual_time(
    simulate: str, backend: str, options: dict[str, Any]
) -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match=rf"anytasks.testing.{simulate}\(\) needs virtual"):
            getattr(anytasks.testing, simulate)(1)

    anyio.run(main, backend=backend, backend_options=options)
    with pytest.raises(RuntimeError, match="needs virtual time"):
        getattr(anytasks.testing, simulate)(1)


def test_a_reused_trio_clock_forgets_the_last_runs_suspend() -> None:
    clock = virtual_clock(START)

    async def suspended() -> datetime:
        anytasks.testing.suspend(HOUR)
        return wall_now()

    assert trio.run(suspended, clock=clock) == START + timedelta(hours=1)
    assert trio.run(suspended, clock=clock) == START + timedelta(hours=1)


# Virtual time on both backends


async def test_sleep_jumps_exactly_and_quickly() -> None:
    assert anyio.current_time() == 0.0
    real_start = time.perf_counter()
    await anyio.sleep(HOUR)
    assert anyio.current_time() == HOUR
    assert time.perf_counter() - real_start < 5


async def test_sleepers_wake_in_order_at_their_deadlines() -> None:
    woke: list[tuple[int, float]] = []

    async def sleeper(hours: int) -> None:
        await anyio.sleep(hours * HOUR)
        woke.append((hours, anyio.current_time()))

    async with anyio.create_task_group() as tg:
        for hours in (3, 1, 2):
            tg.start_soon(sleeper, hours)

    assert woke == [(1, HOUR), (2, 2 * HOUR), (3, 3 * HOUR)]


async def test_timers_close_together_fire_separately() -> None:
    seen: list[float] = []

    async def sleeper(delay: float) -> None:
        await anyio.sleep(delay)
        seen.append(anyio.current_time())

    async with anyio.create_task_group() as tg:
        for delay in (0.001, 0.002, 0.003):
            tg.start_soon(sleeper, delay)

    assert seen == [0.001, 0.002, 0.003]


async def test_long_virtual_runs_stay_exact() -> None:
    # Past 2**24 s an absolute clock resolution of 1e-9 vanishes in rounding.
    await anyio.sleep(2**25)
    for _ in range(3):
        await anyio.sleep(0.5)
    assert anyio.current_time() == 2**25 + 1.5


async def test_wall_clock_follows_virtual_time() -> None:
    assert _backend.wall_now() == START
    assert wall_now() == START
    await anyio.sleep(2.5 * HOUR)
    assert _backend.wall_now() == START + timedelta(hours=2.5)
    assert _backend.wall_now().tzinfo is timezone.utc


async def test_fail_after_expires_at_exact_virtual_deadline() -> None:
    with pytest.raises(TimeoutError), anyio.fail_after(10):
        await anyio.sleep_forever()
    assert anyio.current_time() == 10.0


async def test_socket_io_wakes_reader_under_virtual_time() -> None:
    received: list[tuple[bytes, float]] = []
    left, right = socket.socketpair()
    with left, right:
        left.setblocking(False)
        right.setblocking(False)

        async def reader() -> None:
            await anyio.wait_readable(right)
            received.append((right.recv(16), anyio.current_time()))

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await anyio.sleep(5)
            left.send(b"ping")

    assert received == [(b"ping", 5.0)]


async def test_memory_stream_and_threads_work() -> None:
    send, receive = anyio.create_memory_object_stream[int](1)
    async with send, receive:
        await send.send(1)
        assert await receive.receive() == 1

    # No timer is pending, so the loop waits for the thread in real time.
    await anyio.to_thread.run_sync(time.sleep, 0.01)
    assert anyio.current_time() == 0.0


# Backend-specific


@pytest.mark.parametrize(
    "anyio_backend", [pytest.param(virtual_time("asyncio", start=START), id="asyncio")]
)
async def test_asyncio_default_executor_and_dns() -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualEventLoop)
    await loop.run_in_executor(None, time.sleep, 0.01)
    assert await anyio.getaddrinfo("localhost", 80)


@pytest.mark.parametrize(
    "anyio_backend", [pytest.param(virtual_time("trio", start=START), id="trio")]
)
async def test_trio_clock_is_a_mock_clock() -> None:
    clock = trio.lowlevel.current_clock()
    assert isinstance(clock, trio.testing.MockClock)
    assert clock.autojump_threshold == 0.0
    clock.jump(60)
    assert wall_now() == START + timedelta(minutes=1)


def test_virtual_event_loop_directly() -> None:
    loop = VirtualEventLoop(START)
    fired: list[tuple[str, float]] = []
    try:
        assert loop.wall_start == START
        loop.call_later(2, lambda: fired.append(("b", loop.time())))
        loop.call_later(1, lambda: fired.append(("a", loop.time())))
        loop.run_until_complete(asyncio.sleep(HOUR))
        assert loop.time() == HOUR
        assert loop._anytasks_wall_now() == START + timedelta(hours=1)
    finally:
        loop.close()
    assert fired == [("a", 1.0), ("b", 2.0)]


def test_virtual_event_loop_jumps_past_one_day_select_cap() -> None:
    loop = VirtualEventLoop()
    try:
        loop.run_until_complete(asyncio.sleep(3 * 86400 + 0.25))
        assert loop.time() == 3 * 86400 + 0.25
    finally:
        loop.close()


def test_start_defaults_to_now_and_converts_to_utc() -> None:
    loop = VirtualEventLoop()
    loop.close()
    assert_close_to_real_now(loop.wall_start)

    paris = timezone(timedelta(hours=1))
    loop = VirtualEventLoop(datetime(2026, 3, 8, 7, 0, tzinfo=paris))
    loop.close()
    assert loop.wall_start == START
    assert loop.wall_start.tzinfo is timezone.utc


def test_reused_trio_clock_anchors_each_run() -> None:
    clock = virtual_clock(START)

    async def main() -> tuple[float, datetime, datetime]:
        begin = trio.current_time()
        at_start = wall_now()
        await trio.sleep(HOUR)
        return begin, at_start, wall_now()

    first = trio.run(main, clock=clock)
    second = trio.run(main, clock=clock)
    assert first == (0.0, START, START + timedelta(hours=1))
    assert second == (HOUR, START, START + timedelta(hours=1))


def test_reused_asyncio_factory_makes_fresh_loops() -> None:
    name, options = virtual_time("asyncio", start=START)

    async def main() -> tuple[float, datetime]:
        begin = anyio.current_time()
        await anyio.sleep(HOUR)
        return begin, wall_now()

    first = anyio.run(main, backend=name, backend_options=options)
    second = anyio.run(main, backend=name, backend_options=options)
    assert first == second == (0.0, START + timedelta(hours=1))

    factory = options["loop_factory"]
    one, two = factory(), factory()
    one.close()
    two.close()
    assert one is not two


def test_anyio_run_hands_the_virtual_clock_to_trio() -> None:
    # AnyIO before 4.14 dropped `backend_options` on Trio, so run(backend="trio") and
    # anyio.run() with virtual_time("trio") ran on real time: an hour-long sleep took an hour.
    # This fails at once on such an AnyIO, where test_run_returns_result only times out.
    name, options = virtual_time("trio", start=START)

    async def main() -> object:
        return trio.lowlevel.current_clock()

    assert anyio.run(main, backend=name, backend_options=options) is options["clock"], (
        f"anyio {version('anyio')} ignores Trio's backend_options; anytasks needs anyio>=4.14"
    )


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_run_returns_result(backend: str) -> None:
    async def double_after_an_hour(value: int) -> tuple[int, datetime]:
        await anyio.sleep(HOUR)
        return value * 2, wall_now()

    result = anytasks.testing.run(double_after_an_hour, 21, backend=backend, start=START)
    assert result == (42, START + timedelta(hours=1))


# The real wall clock


def test_wall_clock_is_real_outside_event_loops() -> None:
    assert_close_to_real_now(_backend.wall_now())
    assert_close_to_real_now(wall_now())


@pytest.mark.parametrize(
    ("backend", "options"),
    [
        pytest.param("asyncio", {}, id="asyncio"),
        pytest.param("asyncio", {"use_uvloop": True}, id="asyncio+uvloop"),
        pytest.param("trio", {}, id="trio"),
    ],
)
def test_wall_clock_is_real_without_virtual_time(backend: str, options: dict[str, Any]) -> None:
    if options.get("use_uvloop"):
        pytest.importorskip("uvloop")

    async def main() -> datetime:
        return _backend.wall_now()

    assert_close_to_real_now(anyio.run(main, backend=backend, backend_options=options))


def test_wall_clock_is_real_under_a_plain_mock_clock() -> None:
    async def main() -> datetime:
        await trio.sleep(HOUR)
        return _backend.wall_now()

    clock = trio.testing.MockClock(autojump_threshold=0)
    assert_close_to_real_now(trio.run(main, clock=clock))


# Validation and packaging


@pytest.mark.parametrize("backend", ["asyncio+uvloop", "curio", ""])
def test_virtual_time_rejects_other_backends(backend: str) -> None:
    with pytest.raises(ValueError, match=r"^`backend` must be 'asyncio' or 'trio', got '"):
        virtual_time(backend)


def test_naive_start_is_rejected() -> None:
    naive = datetime(2026, 3, 8, 6, 0)
    for make in (
        lambda: virtual_time("asyncio", start=naive),
        lambda: virtual_time("trio", start=naive),
        lambda: virtual_clock(naive),
        lambda: VirtualEventLoop(naive),
        lambda: anytasks.testing.run(anyio.sleep, 0, start=naive),
    ):
        with pytest.raises(ValueError, match=r"^`start` must be an aware datetime$"):
            make()


def test_all_is_sorted_and_complete() -> None:
    public = {
        name
        for name, value in vars(anytasks.testing).items()
        if not name.startswith("_")
        and getattr(value, "__module__", None) == "anytasks.testing"
        and callable(value)
    }
    assert anytasks.testing.__all__ == sorted(anytasks.testing.__all__)
    assert set(anytasks.testing.__all__) == public


def test_import_does_not_import_trio_or_uvloop() -> None:
    code = (
        "import sys, anytasks, anytasks.testing\n"
        "anytasks._engine.backend.wall_now()\n"
        "assert 'trio' not in sys.modules, 'trio'\n"
        "assert 'uvloop' not in sys.modules, 'uvloop'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
