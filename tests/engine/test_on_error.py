"""``on_error="continue"``: a loop that outlives a failing iteration, as services expect.

By default (``"raise"``, as in discord.py) an iteration's unhandled exception ends the run. With
``"continue"`` it goes to the error hook (by default a log record with its traceback), the
iteration counts as run, its outcome is ``"error"``, and the loop goes on to its next slot;
``LoopEnd.errors`` counts them.
"""

from __future__ import annotations

import logging

import anyio
import pytest

import anytasks
from anytasks import EndReason, IterationFinished, LoopEvent

pytestmark = pytest.mark.anyio


class Flaky(Exception):
    """Not a handled type: unhandled, so it would end the loop by default."""


async def test_continue_reports_each_failure_and_goes_on() -> None:
    seen: list[str] = []
    errors: list[str] = []

    @anytasks.loop(seconds=0.001, count=5, on_error="continue")
    async def job() -> None:
        seen.append(f"body {job.current_loop}")
        if job.current_loop in (1, 3):
            raise Flaky(f"iteration {job.current_loop}")

    @job.error
    async def on_error(exc: Exception) -> None:
        errors.append(f"{exc!r} state={job.state.value}")

    await job.run()
    assert seen == [f"body {n}" for n in range(5)]
    assert errors == [
        "Flaky('iteration 1') state=running",
        "Flaky('iteration 3') state=running",
    ]
    end = job.last_end
    assert end is not None
    assert (end.reason, end.iterations, end.errors, end.exception) == (
        EndReason.COMPLETED,
        5,
        2,
        None,
    )
    assert not job.failed()
    assert "errors=2" in repr(end)


async def test_continue_logs_with_the_traceback_by_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @anytasks.loop(seconds=0.001, count=2, on_error="continue", name="refresh")
    async def job() -> None:
        raise Flaky("down")

    with caplog.at_level(logging.ERROR, logger="anytasks"):
        await job.run()
    records = [r for r in caplog.records if r.name == "anytasks"]
    assert [r.getMessage() for r in records] == [
        "Unhandled exception in an iteration of loop 'refresh', which goes on "
        "(on_error='continue')"
    ] * 2
    assert all(r.exc_info is not None and r.exc_info[0] is Flaky for r in records)
    assert job.last_end is not None
    assert job.last_end.errors == 2


@pytest.mark.parametrize("listening", [False, True])
async def test_continue_after_the_retries_and_after_a_timeout(listening: bool) -> None:
    finished: list[tuple[int, str]] = []

    class Fixed:
        def delay(self) -> float:
            return 0.0

    @anytasks.loop(
        seconds=0.001,
        count=3,
        on_error="continue",
        max_retries=1,
        backoff=Fixed,
        timeout=0.05,
    )
    async def job() -> None:
        if job.current_loop == 0:
            raise ConnectionError("handled, but twice in a row")  # retried once, then unhandled
        if job.current_loop == 1:
            await anyio.sleep(10)  # IterationTimeout: unhandled with on_timeout="error"

    def listener(event: LoopEvent) -> None:
        if isinstance(event, IterationFinished):
            finished.append((event.index, event.outcome))

    if listening:
        job.add_listener(listener)
    await job.run()
    end = job.last_end
    assert end is not None
    assert (end.reason, end.iterations, end.errors) == (EndReason.COMPLETED, 3, 2)
    assert finished == ([(0, "error"), (1, "error"), (2, "success")] if listening else [])


async def test_an_error_hook_that_raises_still_ends_the_run() -> None:
    @anytasks.loop(seconds=0.001, count=5, on_error="continue")
    async def job() -> None:
        raise Flaky("body")

    @job.error
    async def on_error(exc: Exception) -> None:
        raise RuntimeError("the hook itself")

    with pytest.raises(RuntimeError, match="the hook itself"):
        await job.run()
    assert job.failed()
    assert job.last_end is not None
    assert job.last_end.reason is EndReason.FAILED
    assert job.last_end.iterations == 0


async def test_raise_is_the_default_and_before_loop_errors_always_end_the_run() -> None:
    @anytasks.loop(seconds=0.001, count=3)
    async def default() -> None:
        raise Flaky("ends it")

    with pytest.raises(Flaky):
        await default.run()
    assert default.last_end is not None
    assert (default.last_end.reason, default.last_end.errors) == (EndReason.FAILED, 0)

    @anytasks.loop(seconds=0.001, count=3, on_error="continue")
    async def guarded() -> None:
        pass

    @guarded.before_loop
    async def before() -> None:
        raise Flaky("not an iteration")

    with pytest.raises(Flaky):
        await guarded.run()


async def test_a_continuing_loop_is_not_failed_in_running() -> None:
    @anytasks.loop(seconds=0.001, count=3, on_error="continue")
    async def job() -> None:
        raise Flaky("each time")

    async with anytasks.running(job) as services:
        await services.wait()
    assert services.failed == ()
    assert job.last_end is not None
    assert job.last_end.errors == 3


def test_on_error_is_checked() -> None:
    with pytest.raises(ValueError, match=r"^`on_error` must be 'raise' or 'continue', got 'log'$"):
        anytasks.loop(seconds=1, on_error="log")  # type: ignore[call-overload]
