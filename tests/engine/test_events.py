"""Typed events, delivered to listeners per loop and globally, in the order things happen."""

from __future__ import annotations

import contextlib
import datetime
import functools
import gc
import logging
from collections.abc import Callable, Iterator

import anyio
import pytest

import anytasks
from anytasks import (
    EndReason,
    IterationFinished,
    IterationRetrying,
    IterationSkipped,
    IterationStarted,
    IterationTimedOut,
    IterationTimeout,
    LoopEnd,
    LoopEnded,
    LoopEvent,
    LoopStarted,
)

pytestmark = pytest.mark.anyio

T0 = datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.timezone.utc)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


class Recorder:
    """A listener that keeps every event, with the event loop's time it came at."""

    def __init__(self) -> None:
        self.t0 = anyio.current_time()
        self.events: list[LoopEvent] = []
        self.times: list[float] = []

    def __call__(self, event: LoopEvent) -> None:
        self.events.append(event)
        self.times.append(anyio.current_time() - self.t0)

    def kinds(self) -> list[str]:
        return [type(event).__name__ for event in self.events]


@pytest.fixture
def global_listeners() -> Iterator[list[anytasks._engine.events.Listener]]:  # pyright: ignore[reportPrivateUsage]
    """Global listeners a test adds here are removed after it."""
    added: list[anytasks._engine.events.Listener] = []  # pyright: ignore[reportPrivateUsage]
    yield added
    for listener in added:
        anytasks.remove_listener(listener)


@pytest.mark.virtual_time
async def test_the_events_of_a_run_in_order() -> None:
    record = Recorder()

    @anytasks.loop(seconds=10, count=2)
    async def body() -> None:
        await anyio.sleep(2)

    body.add_listener(record)
    await body.run()
    end = LoopEnd(EndReason.COMPLETED, None, 2, at(10))
    assert record.events == [
        LoopStarted(body),
        IterationStarted(body, 0, at(0), 0.0),
        IterationFinished(body, 0, "success", 2.0, None),
        IterationStarted(body, 1, at(10), 0.0),
        IterationFinished(body, 1, "success", 2.0, None),
        LoopEnded(body, end),
    ]
    assert record.times == [0.0, 0.0, 2.0, 10.0, 12.0, 12.0]


@pytest.mark.virtual_time
async def test_lateness_of_a_late_iteration_and_of_jitter() -> None:
    record = Recorder()

    @anytasks.loop(seconds=10, count=3, jitter=4, random=lambda: 0.5)
    async def body() -> None:
        if body.current_loop == 0:
            await anyio.sleep(13)

    body.add_listener(record)
    await body.run()
    started = [e for e in record.events if isinstance(e, IterationStarted)]
    # The first runs at once; the second's slot (10) passed during the first (burst: 3 late);
    # the third is due at 20 and jittered by 2.
    assert [(e.index, e.scheduled, e.lateness) for e in started] == [
        (0, at(0), 0.0),
        (1, at(10), 3.0),
        (2, at(20), 2.0),
    ]


@pytest.mark.virtual_time
async def test_a_wall_clock_iteration_reports_its_slot() -> None:
    record = Recorder()

    @anytasks.loop(time=datetime.time(12, 0, 30), count=1)
    async def body() -> None:
        pass

    body.add_listener(record)
    await body.run()
    assert record.events[1] == IterationStarted(body, 0, at(30), 0.0)


@pytest.mark.virtual_time
async def test_retries_and_a_failure() -> None:
    record = Recorder()
    errors = [ConnectionResetError("1"), ConnectionResetError("2"), ValueError("3")]

    @anytasks.loop(seconds=10, backoff=lambda: Fixed(1.5))
    async def body() -> None:
        raise errors[len([e for e in record.events if isinstance(e, IterationRetrying)])]

    @body.error
    async def quiet(exc: Exception) -> None:
        pass

    body.add_listener(record)
    with pytest.raises(ValueError, match="3"):
        await body.run()
    assert record.events == [
        LoopStarted(body),
        IterationStarted(body, 0, at(0), 0.0),
        IterationRetrying(body, 0, 1, 1.5, errors[0]),
        IterationRetrying(body, 0, 2, 1.5, errors[1]),
        IterationFinished(body, 0, "error", 3.0, errors[2]),
        LoopEnded(body, LoopEnd(EndReason.FAILED, errors[2], 0, at(0))),
    ]


class Fixed:
    def __init__(self, delay: float) -> None:
        self.value = delay

    def delay(self) -> float:
        return self.value


@pytest.mark.virtual_time
async def test_timeouts_skipped_and_retried() -> None:
    record = Recorder()

    @anytasks.loop(seconds=10, count=2, timeout=3, on_timeout="skip")
    async def body() -> None:
        if body.current_loop == 0:
            await anyio.sleep(5)

    body.add_listener(record)
    await body.run()
    finished = record.events[4]
    assert isinstance(finished, IterationFinished)
    timeout = finished.exception
    assert isinstance(timeout, IterationTimeout)
    assert record.events[1:5] == [
        IterationStarted(body, 0, at(0), 0.0),
        IterationTimedOut(body, 0, 3.0, "skip"),
        IterationSkipped(body, "timeout", 1),
        IterationFinished(body, 0, "timeout", 3.0, timeout),
    ]


async def test_a_skipped_timeout_is_the_exception_of_its_iteration() -> None:
    # It was None, though the docs said the IterationTimeout was there.
    finished: list[IterationFinished] = []

    @anytasks.loop(count=2, timeout=0.01, on_timeout="skip")  # real time on uvloop
    async def body() -> None:
        if body.current_loop == 0:
            await anyio.sleep(5)

    @body.add_listener
    def on_event(event: LoopEvent) -> None:
        if isinstance(event, IterationFinished):
            finished.append(event)

    with anyio.fail_after(2):
        await body.run()
    assert [(e.index, e.outcome) for e in finished] == [(0, "timeout"), (1, "success")]
    timeout = finished[0].exception
    assert isinstance(timeout, IterationTimeout)
    assert str(timeout) == f"an iteration of loop {body.name!r} ran past its timeout of 0.01 s"
    assert isinstance(timeout.__cause__, anyio.get_cancelled_exc_class())
    assert finished[1].exception is None


@pytest.mark.virtual_time
async def test_a_timeout_that_ends_the_loop() -> None:
    record = Recorder()

    @anytasks.loop(seconds=10, timeout=3)
    async def body() -> None:
        await anyio.sleep(5)

    @body.error
    async def quiet(exc: Exception) -> None:
        pass

    body.add_listener(record)
    with pytest.raises(IterationTimeout):
        await body.run()
    assert record.kinds() == [
        "LoopStarted",
        "IterationStarted",
        "IterationTimedOut",
        "IterationFinished",
        "LoopEnded",
    ]
    finished = record.events[3]
    assert isinstance(finished, IterationFinished)
    assert (finished.outcome, finished.duration) == ("error", 3.0)
    assert isinstance(finished.exception, IterationTimeout)


@pytest.mark.virtual_time
async def test_missed_and_paused_slots_are_reported() -> None:
    record = Recorder()

    @anytasks.loop(seconds=10, count=3, overrun="skip")
    async def body() -> None:
        if body.current_loop == 0:
            await anyio.sleep(35)
        elif body.current_loop == 1:
            body.pause()

    body.add_listener(record)
    async with anyio.create_task_group() as tg:
        tg.start_soon(body.run)
        await anyio.sleep(65)  # paused at 40, resumed at 65: slots 50 and 60 passed
        body.resume()
    skipped = [(e.reason, e.count) for e in record.events if isinstance(e, IterationSkipped)]
    assert skipped == [("missed", 3), ("paused", 2)]
    assert body.last_end == LoopEnd(EndReason.COMPLETED, None, 3, at(70))


@pytest.mark.virtual_time
async def test_a_cancel_during_the_body_is_a_cancelled_iteration() -> None:
    record = Recorder()

    @anytasks.loop(seconds=10)
    async def body() -> None:
        await anyio.sleep(5)

    body.add_listener(record)
    async with anyio.create_task_group() as tg:
        tg.start_soon(body.run)
        await anyio.sleep(2)
        body.cancel()
    assert record.events[2] == IterationFinished(body, 0, "cancelled", 2.0, None)
    assert record.events[3] == LoopEnded(body, LoopEnd(EndReason.CANCELLED, None, 0, at(0)))


@pytest.mark.virtual_time
async def test_global_listeners_come_after_the_loops_own(
    global_listeners: list[anytasks._engine.events.Listener],  # pyright: ignore[reportPrivateUsage]
) -> None:
    order: list[str] = []

    @anytasks.loop(count=1)
    async def first() -> None:
        pass

    @anytasks.loop(count=1)
    async def second() -> None:
        pass

    def everywhere(event: LoopEvent) -> None:
        order.append("global first" if event.loop is first else "global second")

    first.add_listener(lambda event: order.append("own"))
    global_listeners.append(anytasks.add_listener(everywhere))
    await first.run()
    await second.run()
    assert order == ["own", "global first"] * 4 + ["global second"] * 4

    anytasks.remove_listener(everywhere)
    global_listeners.clear()
    order.clear()
    await second.run()
    assert order == []


def test_removing_a_listener_that_is_not_there() -> None:
    def listener(event: LoopEvent) -> None:
        pass

    with pytest.raises(ValueError, match="is not a registered listener"):
        anytasks.remove_listener(listener)

    @anytasks.loop(seconds=1)
    async def body() -> None:
        pass

    with pytest.raises(ValueError, match=r"is not a listener of <anytasks\.Loop"):
        body.remove_listener(listener)
    body.add_listener(listener)
    body.remove_listener(listener)
    with pytest.raises(ValueError, match=r"is not a listener of <anytasks\.Loop"):
        body.remove_listener(listener)  # removed: it is not there any more
    with pytest.raises(TypeError, match="a listener must be callable, not 'int'"):
        body.add_listener(3)  # type: ignore[type-var]  # pyright: ignore[reportArgumentType]
    with pytest.raises(TypeError, match="a listener must be callable, not 'str'"):
        anytasks.add_listener("x")  # type: ignore[type-var]  # pyright: ignore[reportArgumentType]


async def _async_listener(event: LoopEvent) -> None:
    pass


class _AsyncCall:
    async def __call__(self, event: LoopEvent) -> None:
        pass


class _Listeners:
    async def on_event(self, event: LoopEvent) -> None:
        pass


@pytest.mark.parametrize("where", ["loop", "global"])
@pytest.mark.parametrize(
    "listener",
    [
        _async_listener,
        functools.partial(_async_listener),
        _AsyncCall(),
        functools.partial(_AsyncCall()),
        _Listeners().on_event,
    ],
    ids=["async def", "partial", "async __call__", "partial of async __call__", "method"],
)
async def test_an_async_listener_is_refused_when_added(
    listener: Callable[[LoopEvent], object], where: str
) -> None:
    # Listeners are called, not awaited: an async one only made a coroutine that never ran.
    @anytasks.loop(count=1)
    async def body() -> None:
        pass

    add, remove = (
        (body.add_listener, body.remove_listener)
        if where == "loop"
        else (anytasks.add_listener, anytasks.remove_listener)
    )
    try:
        with pytest.raises(TypeError) as info:
            add(listener)
    finally:
        if where == "global":  # before the check: a listener left behind broke later tests
            with contextlib.suppress(ValueError):
                anytasks.remove_listener(listener)
    assert str(info.value) == (
        f"listener {listener!r} is an async function: a loop calls its listeners "
        "synchronously, in the loop's task, and would never await it; pass a plain function, "
        "and hand slow work to a task through a memory object stream"
    )
    with pytest.raises(ValueError, match="is not a"):
        remove(listener)  # it was not added
    await body.run()  # and nothing is left unawaited (warnings are errors)


@pytest.mark.virtual_time
async def test_a_failing_listener_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @anytasks.loop(count=2)
    async def body() -> None:
        pass

    @body.add_listener
    def broken(event: LoopEvent) -> None:
        raise RuntimeError("listener bug")

    with caplog.at_level(logging.ERROR, logger="anytasks"):
        await body.run()
    assert body.last_end is not None
    assert body.last_end.iterations == 2
    # LoopStarted, 2 x (started, finished), LoopEnded
    assert len(caplog.records) == 6
    assert caplog.records[0].getMessage().startswith("Exception in listener <function ")
    assert caplog.records[0].exc_info is not None


@pytest.mark.virtual_time
async def test_listeners_of_a_class_loop_go_to_each_instance() -> None:
    record = Recorder()

    class Cog:
        @anytasks.loop(count=1)
        async def body(self) -> None:
            pass

    Cog.body.add_listener(record)
    one, two = Cog(), Cog()
    await one.body.run()
    await two.body.run()
    assert [e.loop for e in record.events if isinstance(e, LoopStarted)] == [one.body, two.body]


async def test_events_match_by_position() -> None:
    @anytasks.loop(count=1)
    async def body() -> None:
        pass

    outcomes: list[str] = []

    @body.add_listener
    def on_event(event: LoopEvent) -> None:
        match event:
            case IterationFinished(_, 0, outcome):
                outcomes.append(outcome)
            case LoopEnded(_, LoopEnd(reason=reason)):
                outcomes.append(reason.value)
            case _:
                pass

    await body.run()
    assert outcomes == ["success", "completed"]


def test_event_reprs_name_the_loop() -> None:
    @anytasks.loop(seconds=1, name="beat")
    async def body() -> None:
        pass

    assert repr(LoopStarted(body)) == "LoopStarted(loop='beat')"
    assert repr(IterationSkipped(body, "paused", 2)) == (
        "IterationSkipped(loop='beat', reason='paused', count=2)"
    )
    event = IterationSkipped(body, "paused", 2)
    with pytest.raises(AttributeError, match="IterationSkipped is frozen: cannot set 'count'"):
        event.count = 3  # type: ignore[misc]  # pyright: ignore[reportAttributeAccessIssue]
    assert hash(event) == hash(IterationSkipped(body, "paused", 2))
    assert event != IterationSkipped(body, "missed", 2)


@pytest.mark.virtual_time
async def test_an_iteration_that_began_unheard_is_not_reported() -> None:
    # A listener added while the body of a bounded loop runs hears nothing of that iteration
    # (reported whole or not at all), and no duration counted from an older iteration; one
    # removed while it runs hears it to its end.
    gc.collect()  # no other test's loop with listeners left to keep events on
    finished: list[tuple[int, float]] = []

    def listener(event: anytasks.LoopEvent) -> None:
        if isinstance(event, anytasks.IterationFinished):
            finished.append((event.index, event.duration))

    @anytasks.loop(seconds=10, count=3, timeout=100)
    async def body() -> None:
        if body.current_loop == 0:
            await anyio.sleep(1)
        if body.current_loop == 1:
            body.remove_listener(listener)
        if body.current_loop == 2:
            await anyio.sleep(1)
            body.add_listener(listener)
            await anyio.sleep(1)

    body.add_listener(listener)
    await body.run()
    assert finished == [(0, 1.0), (1, 0.0)]


async def test_each_listener_hears_an_iteration_whole_or_not_at_all(
    global_listeners: list[anytasks._engine.events.Listener],  # pyright: ignore[reportPrivateUsage]
) -> None:
    # Removed during iteration 0, `leaving` still hears its retry and its end; added during
    # it, `joining` hears nothing of it, and all of iteration 1.
    leaving, joining = Recorder(), Recorder()
    refused = ConnectionResetError("refused")
    attempts: list[int] = []

    @anytasks.loop(count=2, backoff=lambda: Fixed(0))
    async def body() -> None:
        attempts.append(body.current_loop)
        if len(attempts) == 1:
            body.remove_listener(leaving)
            global_listeners.append(anytasks.add_listener(joining))
            raise refused

    body.add_listener(leaving)
    await body.run()
    assert attempts == [0, 0, 1]
    assert [(type(e).__name__, getattr(e, "index", None)) for e in leaving.events] == [
        ("LoopStarted", None),
        ("IterationStarted", 0),
        ("IterationRetrying", 0),
        ("IterationFinished", 0),
    ]
    assert leaving.events[2] == IterationRetrying(body, 0, 1, 0, refused)
    assert [(type(e).__name__, getattr(e, "index", None)) for e in joining.events] == [
        ("IterationStarted", 1),
        ("IterationFinished", 1),
        ("LoopEnded", None),
    ]
