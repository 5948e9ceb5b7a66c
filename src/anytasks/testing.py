"""Virtual time for testing your own loops, on asyncio and on Trio.

Under virtual time the event loop behaves like Trio's
``trio.testing.MockClock(autojump_threshold=0)``: whenever every task is blocked and at least
one of them waits on a timer, time jumps straight to the earliest timer. A loop with
``hours=1`` therefore runs a day's worth of iterations in milliseconds, and elapsed times are
exact, so tests can assert ``anyio.current_time() == 3600``. The wall clock that ``time=`` loops
read follows the same virtual time, starting from an aware datetime you choose, so a loop that
runs at 09:00 can be tested from 06:00 without waiting three hours.

Real I/O, threads and subprocesses keep working: the loop polls for them before every jump and
blocks for real when nothing is scheduled. As with :class:`~trio.testing.MockClock`, time also
jumps while a thread or an external process is still busy, if some task waits on a timer
meanwhile: a ``fail_after(5)`` around ``to_thread.run_sync(...)`` can expire before the thread
finishes.

asyncio+uvloop cannot run on virtual time, because uvloop's timers live in libuv; test on plain
asyncio and on Trio instead.

With AnyIO's pytest plugin, a function-scoped ``anyio_backend`` fixture in your ``conftest.py``
gives every test a fresh virtual clock::

    import datetime
    import pytest
    import anytasks.testing

    START = datetime.datetime(2026, 3, 8, 6, 0, tzinfo=datetime.timezone.utc)

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(request):
        return anytasks.testing.virtual_time(request.param, start=START)

    @pytest.mark.anyio
    async def test_hourly():
        ...

Outside pytest, :func:`run` is :func:`anyio.run` on virtual time.

Importing this module does not import Trio; :func:`virtual_clock` imports it when called.
"""

from __future__ import annotations

import asyncio
import functools
import math
import random
import selectors
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar, final

import anyio

from ._checks import check_seconds
from ._engine import backend as _backend

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

if TYPE_CHECKING:
    from trio.testing import MockClock

__all__ = [
    "VirtualEventLoop",
    "jump",
    "run",
    "suspend",
    "virtual_clock",
    "virtual_time",
    "wall_now",
]

_T = TypeVar("_T")
_PosArgsT = TypeVarTuple("_PosArgsT")


def _check_start(start: datetime | None) -> datetime:
    if start is None:
        return datetime.now(timezone.utc)
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("`start` must be an aware datetime")
    return start.astimezone(timezone.utc)


@final
class _VirtualSelector(selectors.DefaultSelector):
    """The platform's selector, except that waiting for a timer jumps instead of sleeping."""

    def __init__(self, jump: Callable[[float], None]) -> None:
        super().__init__()
        self._jump = jump

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            # Nothing is scheduled: only I/O or another thread's call_soon_threadsafe() can
            # wake the loop, and they take real time.
            return super().select(None)
        self._jump(timeout)
        return []


@final
class VirtualEventLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop whose clock jumps to the next timer whenever the loop goes idle.

    :meth:`time` starts at ``0.0`` and moves only when every task is blocked and a timer is
    pending; it then becomes exactly that timer's deadline, so ``await asyncio.sleep(3600)``
    advances it by exactly ``3600.0`` at once. Ready I/O is always handled before a jump, and
    with no timer pending the loop blocks for real, so sockets, threads and subprocesses work.

    The virtual wall time, which anytasks' ``time=`` loops read, is ``start`` plus
    :meth:`time`.

    Usually you get one through :func:`virtual_time` or :func:`run`; it also works on its own,
    for example with ``asyncio.Runner(loop_factory=VirtualEventLoop)`` on Python 3.11+.

    :param start: the wall time at which the loop's virtual time is ``0.0``; an aware datetime,
        converted to UTC. Defaults to the current time.
    :raises ValueError: if ``start`` is a naive datetime.

    Example::

        loop = VirtualEventLoop()
        try:
            loop.run_until_complete(asyncio.sleep(3600))
            assert loop.time() == 3600.0
        finally:
            loop.close()
    """

    # Set by asyncio.BaseEventLoop; declared here for the type checker.
    _scheduled: list[asyncio.TimerHandle]
    _clock_resolution: float

    def __init__(self, start: datetime | None = None) -> None:
        self._virtual_now = 0.0
        # How far suspend() has moved the wall clock ahead of the event loop's clock.
        self._suspended = timedelta(0)
        # Where loops draw their jitter from on this loop: the same draws on every run.
        self._anytasks_random = random.Random(0).random
        super().__init__(selector=_VirtualSelector(self._jump))
        self._track_resolution()
        try:
            self._wall_start = _check_start(start)
        except ValueError:
            # Validating after asyncio's setup lets the half-made loop close cleanly.
            self.close()
            raise

    @property
    def wall_start(self) -> datetime:
        """The aware UTC wall time at which this loop's :meth:`time` was ``0.0``."""
        return self._wall_start

    def time(self) -> float:
        """Return the loop's virtual time in seconds, starting at ``0.0``."""
        return self._virtual_now

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Wait for the default executor's threads, without a timeout.

        Python 3.12+ passes a 300 s timeout here when a runner closes; on virtual time it
        would expire as soon as the loop goes idle, while the threads still join for real.
        """
        await super().shutdown_default_executor()

    def _anytasks_wall_now(self) -> datetime:
        return self._wall_start + self._suspended + timedelta(seconds=self._virtual_now)

    def _anytasks_suspend(self, seconds: float) -> None:
        self._suspended += timedelta(seconds=seconds)

    def _anytasks_jump(self, seconds: float) -> None:
        self._virtual_now += seconds
        self._track_resolution()

    def _jump(self, timeout: float) -> None:
        # asyncio's _run_once() waits `timeout = when - time()` for the earliest timer, capped
        # at one day. Land on `when` itself: `now + timeout` can miss it by one unit in the
        # last place, and the cap only matters for real waiting.
        deadline = self._scheduled[0].when() if self._scheduled else self._virtual_now + timeout
        self._virtual_now = max(self._virtual_now, deadline)
        self._track_resolution()

    def _track_resolution(self) -> None:
        # _run_once() fires the timers with `when < time() + _clock_resolution`. The real
        # clock's resolution (up to 15.6 ms on Windows) would fire later timers early, and
        # past 2**24 s of virtual time 1e-9 vanishes in rounding, so a timer due exactly now
        # would never fire and the loop would spin. One ulp fires exactly `when <= time()`.
        self._clock_resolution = math.ulp(self._virtual_now)


@final
class _TrioWallAnchor:
    """Ties a MockClock's virtual time to the wall time at which its current run started."""

    __slots__ = ("_clock", "_origin", "_start", "_suspended")

    def __init__(self, clock: MockClock, start: datetime) -> None:
        self._clock = clock
        self._start = start
        self._origin = clock.current_time()
        self._suspended = timedelta(0)

    def start_clock(self) -> None:
        type(self._clock).start_clock(self._clock)
        self._origin = self._clock.current_time()
        self._suspended = timedelta(0)

    def wall_now(self) -> datetime:
        elapsed = timedelta(seconds=self._clock.current_time() - self._origin)
        return self._start + self._suspended + elapsed

    def suspend(self, seconds: float) -> None:
        self._suspended += timedelta(seconds=seconds)


def virtual_clock(start: datetime | None = None, *, autojump_threshold: float = 0.0) -> MockClock:
    """Return a Trio clock on virtual time, with a wall clock that starts at ``start``.

    The result is a genuine :class:`trio.testing.MockClock` with ``autojump_threshold=0`` by
    default, so ``jump()``, ``rate`` and ``trio.testing.wait_all_tasks_blocked()`` behave as
    Trio documents. It also carries the virtual wall time that anytasks' ``time=`` loops read:
    ``start`` when a run starts, plus the virtual time elapsed in that run. Reusing the clock
    for another run starts the wall time at ``start`` again, while ``trio.current_time()``
    carries on from where the previous run left it.

    Trio is imported on the first call.

    :param start: the wall time at the start of each run; an aware datetime, converted to UTC.
        Defaults to the current time.
    :param autojump_threshold: passed on to :class:`~trio.testing.MockClock`.
    :raises ValueError: if ``start`` is a naive datetime.

    Example::

        trio.run(main, clock=virtual_clock(datetime(2026, 3, 8, 6, 0, tzinfo=timezone.utc)))
    """
    wall_start = _check_start(start)
    from trio.testing import MockClock

    clock = MockClock(autojump_threshold=autojump_threshold)
    anchor = _TrioWallAnchor(clock, wall_start)
    # MockClock is final, so the anchor hooks into the instance rather than a subclass.
    clock.start_clock = anchor.start_clock  # type: ignore[method-assign]
    clock._anytasks_wall_now = anchor.wall_now  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
    clock._anytasks_suspend = anchor.suspend  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
    clock._anytasks_jump = clock.jump  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
    # Loops draw their jitter from here under this clock: the same draws on every run.
    clock._anytasks_random = random.Random(0).random  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
    return clock


def virtual_time(
    backend: str = "asyncio", *, start: datetime | None = None
) -> tuple[str, dict[str, Any]]:
    """Return ``(backend_name, backend_options)`` that run ``backend`` on virtual time.

    The pair suits ``anyio.run(..., backend=name, backend_options=options)`` and is what
    AnyIO's pytest plugin accepts from an ``anyio_backend`` fixture. For ``"asyncio"`` the
    options hold a ``loop_factory`` that makes a fresh :class:`VirtualEventLoop` per run; for
    ``"trio"`` they hold one :func:`virtual_clock`, which a second run would reuse (its wall
    time starts at ``start`` again, but ``trio.current_time()`` does not restart at zero).

    :param backend: ``"asyncio"`` or ``"trio"``. ``"asyncio+uvloop"`` is refused: uvloop's
        timers live in libuv and cannot run on virtual time.
    :param start: the wall time at the start of each run; an aware datetime, converted to UTC.
        Defaults to the current time when each asyncio loop or the Trio clock is created.
    :raises ValueError: if ``backend`` is anything else, or ``start`` is naive.

    Example::

        name, options = virtual_time("trio")
        anyio.run(main, backend=name, backend_options=options)
    """
    if start is not None:
        _check_start(start)
    if backend == "asyncio":
        return "asyncio", {"loop_factory": functools.partial(VirtualEventLoop, start)}
    if backend == "trio":
        return "trio", {"clock": virtual_clock(start)}
    raise ValueError(f"`backend` must be 'asyncio' or 'trio', got {backend!r}")


def run(
    func: Callable[[Unpack[_PosArgsT]], Awaitable[_T]],
    *args: Unpack[_PosArgsT],
    backend: str = "asyncio",
    start: datetime | None = None,
) -> _T:
    """Run ``func(*args)`` with :func:`anyio.run` on virtual time and return its result.

    :param backend: ``"asyncio"`` or ``"trio"``, as for :func:`virtual_time`.
    :param start: the wall time when the run starts; an aware datetime. Defaults to now.
    :raises ValueError: as :func:`virtual_time` does.

    Example::

        async def main() -> float:
            await anyio.sleep(3600)
            return anyio.current_time()

        assert anytasks.testing.run(main, backend="trio") == 3600.0
    """
    name, options = virtual_time(backend, start=start)
    return anyio.run(func, *args, backend=name, backend_options=options)


def wall_now() -> datetime:
    """Return the wall time that anytasks' ``time=`` loops see right now, as aware UTC.

    Under virtual time it is the run's ``start`` plus the virtual time elapsed; anywhere else it
    is the real current time.

    Example::

        assert anytasks.testing.wall_now() == START + timedelta(hours=3)
    """
    return _backend.wall_now()


def suspend(seconds: float) -> None:
    """Simulate a suspend of the machine (a laptop's lid closed, a VM paused) for ``seconds``.

    Under virtual time, the wall clock jumps ahead by ``seconds`` at once while the event
    loop's clock stands still, as the monotonic clock does while a machine sleeps on Linux.
    Interval loops keep their grid on the event loop's clock and do not notice; wall-clock
    loops (``time=``, ``cron=``) notice at the end of their current wait, which lasts at most
    a minute of the event loop's clock, and then treat the slots that passed meanwhile as
    ``overrun=`` and ``grace=`` say.

    Call it from a task running on virtual time (:func:`virtual_time`, :func:`run`,
    :class:`VirtualEventLoop`, :func:`virtual_clock`).

    :param seconds: how long the machine sleeps; a non-negative finite number.
    :raises TypeError: if ``seconds`` is not a number.
    :raises ValueError: if ``seconds`` is negative, NaN or infinite.
    :raises RuntimeError: if the calling task is not running on virtual time.

    Example::

        await anyio.sleep(3 * 3600)  # Monday 12:00: the machine goes to sleep
        anytasks.testing.suspend(70 * 3600)  # and wakes on Thursday at 10:00

    .. versionadded:: 0.2
    """
    _virtual_hook("_anytasks_suspend", "suspend")(check_seconds("seconds", seconds))


def jump(seconds: float) -> None:
    """Move the event loop's clock (and the wall clock with it) ``seconds`` ahead at once.

    Under virtual time this is what a task that blocks the event loop for ``seconds`` (a
    synchronous call, a long computation) does to every other task: timers that came due
    meanwhile fire late, all at once, when the event loop next looks at them. Use it to test
    how a loop treats a wake-up that comes after its slot (see ``overrun=`` and ``grace=``).
    On Trio it is ``MockClock.jump()``.

    Call it from a task running on virtual time.

    :param seconds: how far to move the clocks; a non-negative finite number.
    :raises TypeError: if ``seconds`` is not a number.
    :raises ValueError: if ``seconds`` is negative, NaN or infinite.
    :raises RuntimeError: if the calling task is not running on virtual time.

    Example::

        anytasks.testing.jump(3.5)  # as if the event loop had been blocked for 3.5 s

    .. versionadded:: 0.2
    """
    _virtual_hook("_anytasks_jump", "jump")(check_seconds("seconds", seconds))


def _virtual_hook(name: str, caller: str) -> Callable[[float], None]:
    trio = _backend.trio_running()
    owner: object = trio.lowlevel.current_clock() if trio is not None else None
    if owner is None:
        owner = _backend.running_asyncio_loop()
    hook: Callable[[float], None] | None = getattr(owner, name, None)
    if hook is None:
        raise RuntimeError(
            f"anytasks.testing.{caller}() needs virtual time: call it from a task running "
            "under anytasks.testing.virtual_time(), run(), VirtualEventLoop or virtual_clock()"
        )
    return hook
