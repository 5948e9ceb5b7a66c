"""A plain ``def`` as a loop's body: each iteration runs it in a worker thread.

The event loop goes on meanwhile; hooks, errors, retries, events and states are those of any loop.
A thread cannot be interrupted: ``cancel()`` and ``timeout=`` abandon it (the iteration ends at
once, the thread runs on), and the next iteration waits for it, so a body never runs twice at
once. Rendezvous between the thread and the test are threading events, never real sleeps.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import anytasks
from anytasks import EndReason, IterationFinished, IterationTimeout, LoopEvent

pytestmark = pytest.mark.anyio

WAIT = 10.0  # seconds a thread waits for the test at most (a hang fails, it does not stall)
INTERVAL = 0.01


@pytest.fixture
def anyio_backend(real_time_backend: Any) -> Any:
    """Real time on every backend: a thread takes real time, and on virtual time the clock
    would jump to the next timer (a deadline) while it runs (see docs/testing.md)."""
    return real_time_backend


async def test_a_plain_function_runs_in_a_worker_thread() -> None:
    event_loop_thread = threading.get_ident()
    seen: list[tuple[str, int, bool]] = []
    hooks: list[str] = []

    @anytasks.loop(seconds=INTERVAL, count=3)
    def poll(device: str) -> None:
        seen.append((device, poll.current_loop, threading.get_ident() != event_loop_thread))

    @poll.before_loop
    async def before() -> None:
        hooks.append(f"before in the event loop: {threading.get_ident() == event_loop_thread}")

    @poll.after_loop
    async def after(end: anytasks.LoopEnd) -> None:
        hooks.append(f"after {end.reason.value} {end.iterations}")

    await poll.run("sensor-7")
    assert seen == [("sensor-7", n, True) for n in range(3)]
    assert hooks == ["before in the event loop: True", "after completed 3"]
    assert await poll("direct") is None  # a direct call runs it in a thread too
    assert seen[-1] == ("direct", 0, True)


async def test_the_event_loop_goes_on_while_the_body_blocks() -> None:
    other_task_ran = threading.Event()

    @anytasks.loop(seconds=0, count=1)
    def blocking() -> None:
        # Would deadlock if the body blocked the event loop: the task that sets it could not run.
        assert other_task_ran.wait(WAIT)

    async def other() -> None:
        await anyio.lowlevel.checkpoint()
        other_task_ran.set()

    with anyio.fail_after(WAIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(blocking.run)
            tg.start_soon(other)
    assert blocking.last_end is not None
    assert blocking.last_end.reason is EndReason.COMPLETED


async def test_errors_are_retried_and_reported_as_for_any_body() -> None:
    attempts: list[str] = []
    errors: list[BaseException] = []

    class Instant:
        def delay(self) -> float:
            return 0.0

    @anytasks.loop(seconds=0, count=1, backoff=Instant)
    def flaky() -> None:
        attempts.append("attempt")
        if len(attempts) == 1:
            raise ConnectionError("handled: retried")
        raise KeyError("unhandled")

    @flaky.error
    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    with pytest.raises(KeyError):
        await flaky.run()
    assert attempts == ["attempt", "attempt"]
    assert [type(e) for e in errors] == [KeyError]
    assert flaky.failed()


async def test_a_timeout_abandons_the_thread_and_the_next_iteration_waits_for_it() -> None:
    release = threading.Event()
    log: list[str] = []
    lock = threading.Lock()
    active = 0
    finished: list[tuple[int, str]] = []

    @anytasks.loop(seconds=INTERVAL, count=2, timeout=0.1, on_timeout="skip")
    def body() -> None:
        nonlocal active
        with lock:
            active += 1
            log.append(f"start {body.current_loop} active={active}")
        try:
            if body.current_loop == 0:
                assert release.wait(WAIT)
        finally:
            with lock:
                active -= 1
                log.append("end")

    @body.add_listener
    def listen(event: LoopEvent) -> None:
        if isinstance(event, IterationFinished):
            finished.append((event.index, event.outcome))
            if event.index == 0:
                # The iteration timed out while its thread still runs: let it end now.
                log.append("timed out")
                release.set()

    with anyio.fail_after(WAIT):
        await body.run()
    assert finished == [(0, "timeout"), (1, "success")]
    assert log == ["start 0 active=1", "timed out", "end", "start 1 active=1", "end"]


async def test_cancel_does_not_wait_for_the_thread() -> None:
    started = threading.Event()
    release = threading.Event()
    ended = threading.Event()
    after: list[bool] = []

    @anytasks.loop(seconds=INTERVAL)
    def body() -> None:
        started.set()
        try:
            assert release.wait(WAIT)
        finally:
            ended.set()

    @body.after_loop
    async def after_loop() -> None:
        after.append(ended.is_set())

    with anyio.fail_after(WAIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(body.run)
            await anyio.to_thread.run_sync(started.wait)
            body.cancel()
    # after_loop ran while the thread was still blocked: the cancel did not wait for it.
    assert after == [False]
    assert body.last_end is not None
    assert body.last_end.reason is EndReason.CANCELLED
    release.set()
    assert await anyio.to_thread.run_sync(ended.wait, WAIT)


async def test_stop_lets_the_threads_iteration_finish() -> None:
    started = threading.Event()
    release = threading.Event()
    done: list[str] = []

    @anytasks.loop(seconds=INTERVAL)
    def body() -> None:
        started.set()
        assert release.wait(WAIT)
        done.append("finished")

    with anyio.fail_after(WAIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(body.run)
            await anyio.to_thread.run_sync(started.wait)
            body.stop()
            assert body.state is anytasks.LoopState.STOPPING
            release.set()
    assert done == ["finished"]
    assert body.last_end is not None
    assert (body.last_end.reason, body.last_end.iterations) == (EndReason.STOPPED, 1)


async def test_an_async_body_stuck_in_a_thread_past_its_timeout_is_reported() -> None:
    # anyio.to_thread.run_sync waits for its thread even when cancelled: the body returns
    # normally, after its deadline. That is a timeout, not a success.
    release = threading.Event()

    @anytasks.loop(seconds=INTERVAL, count=1, timeout=0.05)
    async def body() -> None:
        await anyio.to_thread.run_sync(release.wait, WAIT)

    async def let_go() -> None:
        await anyio.sleep(0.1)  # past the deadline, which has fired
        release.set()

    with anyio.fail_after(WAIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(let_go)
            with pytest.raises(IterationTimeout, match=r"could not be cut short"):
                await body.run()


async def test_a_sync_body_declared_on_a_class_gets_self() -> None:
    class Device:
        def __init__(self, name: str) -> None:
            self.name = name
            self.readings: list[str] = []

        @anytasks.loop(seconds=0, count=2)
        def poll(self) -> None:
            self.readings.append(f"{self.name} {threading.current_thread() is not main}")

    main = threading.current_thread()
    device = Device("d1")
    await device.poll.run()
    assert device.readings == ["d1 True", "d1 True"]


def test_what_cannot_be_a_body_is_refused() -> None:
    async def agen() -> object:
        yield 1

    with pytest.raises(TypeError, match=r"@loop\(\) needs a function to call, `async def` or"):
        anytasks.loop(seconds=1)(agen)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"plain `def` \(which runs in a worker thread\), got 3"):
        anytasks.loop(seconds=1)(3)  # type: ignore[arg-type]


def test_a_blocking_body_really_blocks_only_its_thread() -> None:
    # Real time, briefly: a body that sleeps 0.2 s in its thread while a task of the event loop
    # keeps ticking every millisecond; the ticks go on during the sleep.
    ticks_during: list[int] = []

    @anytasks.loop(seconds=0, count=1)
    def sleepy() -> None:
        time.sleep(0.2)

    async def main() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await anyio.sleep(0.001)
                ticks += 1

        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            before = ticks
            await sleepy.run()
            ticks_during.append(ticks - before)
            tg.cancel_scope.cancel()

    anyio.run(main)
    # At least a few dozen ticks in 0.2 s (a blocked event loop would give none).
    assert ticks_during[0] >= 20
