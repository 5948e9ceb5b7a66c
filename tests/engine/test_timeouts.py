"""Bounding an iteration (timeout=, on_timeout=) and the retry policy (backoff=, max_retries=).

Exact times on virtual time; one short real-time test runs on uvloop too.
"""

from __future__ import annotations

import inspect
import logging
import math
import random
import sys
from typing import Any

import anyio
import pytest

import anytasks
from anytasks import EndReason, ExponentialBackoff, IterationTimeout, LoopEnd

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.t0 = anyio.current_time()

    def __call__(self) -> float:
        return anyio.current_time() - self.t0


class Fixed:
    """A backoff that always waits ``delay`` seconds, and counts how often it was made."""

    made = 0

    def __init__(self, delay: float = 1.0) -> None:
        self.value = delay
        Fixed.made += 1

    def delay(self) -> float:
        return self.value


# -- timeout= ------------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_a_timeout_is_an_unhandled_iteration_timeout() -> None:
    clock = Clock()
    errors: list[tuple[float, BaseException]] = []

    @anytasks.loop(seconds=10, timeout=3)
    async def body() -> None:
        if body.current_loop == 1:
            await anyio.sleep(100)

    @body.error
    async def on_error(exc: Exception) -> None:
        errors.append((clock(), exc))

    body.add_exception_type(Exception)  # a timeout is never a handled exception
    with pytest.raises(IterationTimeout) as info:
        await body.run()
    assert str(info.value) == f"an iteration of loop {body.name!r} ran past its timeout of 3.0 s"
    assert errors == [(13.0, info.value)]
    assert body.failed()
    assert body.last_end == LoopEnd(EndReason.FAILED, info.value, 1, body.last_end.last_scheduled)  # type: ignore[union-attr]


@pytest.mark.virtual_time
async def test_a_body_within_its_timeout_runs_as_usual() -> None:
    clock = Clock()
    seen: list[float] = []

    @anytasks.loop(seconds=10, count=3, timeout=5)
    async def body() -> None:
        await anyio.sleep(4.5)
        seen.append(clock())

    await body.run()
    assert seen == [4.5, 14.5, 24.5]


@pytest.mark.virtual_time
async def test_on_timeout_skip_goes_on_to_the_next_slot(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    started: list[float] = []
    finished: list[float] = []

    @anytasks.loop(seconds=5, count=3, timeout=3, on_timeout="skip")
    async def body() -> None:
        started.append(clock())
        if len(started) == 1:
            await anyio.sleep(10)
        finished.append(clock())

    with caplog.at_level(logging.WARNING, logger="anytasks"):
        await body.run()
    assert started == [0.0, 5.0, 10.0]
    assert finished == [5.0, 10.0]
    assert body.last_end == LoopEnd(EndReason.COMPLETED, None, 3, body.last_end.last_scheduled)  # type: ignore[union-attr]
    assert [r.getMessage() for r in caplog.records] == [
        f"Iteration of loop {body.name!r} timed out after 3.0 seconds; skipped"
    ]


@pytest.mark.virtual_time
async def test_skipped_timeouts_are_counted() -> None:
    @anytasks.loop(seconds=5, timeout=1, on_timeout="skip")
    async def body() -> None:
        if body.current_loop == 3:
            body.stop()
        await anyio.sleep(2)

    @body.after_loop
    async def after() -> None:
        counts.append(body.skipped)

    counts: list[int] = []
    await body.run()
    # Iterations 0, 1 and 2 timed out; 3 was stopped but still timed out.
    assert counts == [4]


@pytest.mark.virtual_time
async def test_on_timeout_retry_retries_with_backoff() -> None:
    clock = Clock()
    attempts: list[float] = []

    @anytasks.loop(seconds=60, count=1, timeout=3, on_timeout="retry", backoff=Fixed)
    async def body() -> None:
        attempts.append(clock())
        if len(attempts) < 3:
            await anyio.sleep(100)

    body.reconnect = False  # on_timeout="retry" asks for retries itself
    await body.run()
    # Each attempt times out after 3 s, then waits 1 s.
    assert attempts == [0.0, 4.0, 8.0]
    assert body.last_end is not None
    assert body.last_end.reason is EndReason.COMPLETED


@pytest.mark.virtual_time
async def test_a_cancel_during_a_bounded_body_is_no_timeout() -> None:
    @anytasks.loop(seconds=10, timeout=5)
    async def body() -> None:
        await anyio.sleep(100)

    async with anyio.create_task_group() as tg:
        tg.start_soon(body.run)
        await anyio.sleep(2)
        body.cancel()
    assert body.last_end == LoopEnd(EndReason.CANCELLED, None, 0, body.last_end.last_scheduled)  # type: ignore[union-attr]
    assert not body.failed()


async def test_a_timeout_cancels_for_real_on_every_backend() -> None:
    # Real time, short: uvloop's timers cannot be virtual.
    reached: list[str] = []

    @anytasks.loop(timeout=0.02)
    async def body() -> None:
        try:
            await anyio.sleep(5)
        finally:
            reached.append("cleanup")

    with anyio.fail_after(2):
        with pytest.raises(IterationTimeout):
            await body.run()
    assert reached == ["cleanup"]


async def _stuck_body() -> None:
    await anyio.sleep(5)  # a request that hangs


async def test_a_logged_timeout_shows_where_the_body_was_stuck(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The IterationTimeout comes from the cancellation that the deadline raised in the body:
    # before, the logged traceback showed anytasks' frames only.
    lines, first = inspect.getsourcelines(_stuck_body)
    stuck = first + next(i for i, line in enumerate(lines) if "anyio.sleep(5)" in line)
    body = anytasks.loop(timeout=0.02)(_stuck_body)  # real time on uvloop, virtual elsewhere
    with (
        caplog.at_level(logging.ERROR, logger="anytasks"),
        anyio.fail_after(2),
        pytest.raises(IterationTimeout) as info,
    ):
        await body.run()
    assert isinstance(info.value.__cause__, anyio.get_cancelled_exc_class())
    [record] = caplog.records
    assert record.getMessage() == f"Unhandled exception in loop {body.name!r}"
    assert record.exc_info is not None
    assert record.exc_info[1] is info.value
    logged = caplog.text
    assert f'{__file__}", line {stuck}, in _stuck_body\n' in logged
    assert "    await anyio.sleep(5)  # a request that hangs\n" in logged
    assert logged.rstrip().endswith(f"IterationTimeout: {info.value}")


# -- max_retries= and backoff= ----------------------------------------------------------


@pytest.mark.virtual_time
async def test_max_retries_turns_the_next_handled_error_into_an_unhandled_one() -> None:
    clock = Clock()
    attempts: list[float] = []

    @anytasks.loop(seconds=60, max_retries=2, backoff=Fixed)
    async def body() -> None:
        attempts.append(clock())
        raise OSError(len(attempts))

    with pytest.raises(OSError, match="3"):
        await body.run()
    assert attempts == [0.0, 1.0, 2.0]


@pytest.mark.virtual_time
async def test_max_retries_zero_retries_nothing() -> None:
    @anytasks.loop(seconds=60, max_retries=0)
    async def body() -> None:
        raise ConnectionResetError

    with pytest.raises(ConnectionResetError):
        await body.run()
    assert body.last_end is not None
    assert body.last_end.reason is EndReason.FAILED


@pytest.mark.virtual_time
async def test_max_retries_counts_in_a_row_only() -> None:
    failures = iter([True, True, False, True, True, False])

    @anytasks.loop(seconds=60, count=2, max_retries=2, backoff=Fixed)
    async def body() -> None:
        if next(failures):
            raise OSError

    await body.run()
    assert body.last_end is not None
    assert (body.last_end.reason, body.last_end.iterations) == (EndReason.COMPLETED, 2)


@pytest.mark.virtual_time
async def test_a_backoff_factory_is_called_once_per_run() -> None:
    Fixed.made = 0

    @anytasks.loop(seconds=60, count=2, backoff=lambda: Fixed(2.5))
    async def body() -> None:
        if attempts.append(None) or len(attempts) % 2:
            raise OSError

    attempts: list[None] = []
    clock = Clock()
    await body.run()
    assert (len(attempts), clock(), Fixed.made) == (4, 62.5, 1)
    await body.run()
    assert Fixed.made == 2


@pytest.mark.virtual_time
async def test_an_exponential_backoff_is_a_configuration_copied_per_run() -> None:
    config = ExponentialBackoff(2, cap=3.0, rng=random.Random(7))
    delays: list[float] = []

    @anytasks.loop(seconds=60, count=1, backoff=config)
    async def body() -> None:
        if len(delays) < 6:
            before = anyio.current_time()
            delays.append(-before)
            raise OSError

    @body.add_listener
    def on_event(event: anytasks.LoopEvent) -> None:
        if isinstance(event, anytasks.IterationRetrying):
            retry_delays.append(event.delay)

    retry_delays: list[float] = []
    await body.run()
    assert len(retry_delays) == 6
    assert all(0 <= d <= 3.0 for d in retry_delays)
    # The configuration itself was never used: it still starts from the bottom.
    assert repr(config) == "ExponentialBackoff(base=2, integral=False, cap=3.0, exp=0)"


def test_exponential_backoff_cap() -> None:
    backoff = ExponentialBackoff(1, cap=5, rng=random.Random(1))
    assert max(backoff.delay() for _ in range(200)) <= 5
    integral = ExponentialBackoff(1, integral=True, cap=0.5, rng=random.Random(1))
    assert {integral.delay() for _ in range(20)} == {0}
    with pytest.raises(ValueError, match=r"`cap` must be a positive finite number or None, got 0"):
        ExponentialBackoff(cap=0)
    with pytest.raises(
        ValueError, match=r"`cap` must be a positive finite number or None, got nan"
    ):
        ExponentialBackoff(cap=math.nan)
    with pytest.raises(TypeError, match=r"`cap` must be a number or None, not 'str'"):
        ExponentialBackoff(cap="1")  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]


@pytest.mark.virtual_time
async def test_a_backoff_factory_returning_no_backoff_fails_the_loop() -> None:
    @anytasks.loop(seconds=1, backoff=lambda: 3)  # type: ignore[arg-type,return-value]  # pyright: ignore[reportArgumentType]
    async def body() -> None:
        raise OSError

    with pytest.raises(TypeError, match=r"`backoff` returned 3, which has no delay\(\) method"):
        await body.run()


@pytest.mark.parametrize(
    ("delay", "error", "message"),
    [
        (None, TypeError, "returned None, not a number of seconds"),  # a forgotten return
        ("1", TypeError, "returned '1', not a number of seconds"),
        (True, TypeError, "returned True, not a number of seconds"),
        (-1, ValueError, "returned -1; a delay must be non-negative and finite"),
        (math.nan, ValueError, "returned nan; a delay must be non-negative and finite"),
        (math.inf, ValueError, "returned inf; a delay must be non-negative and finite"),
    ],
)
async def test_a_bad_delay_fails_the_loop_before_any_retry_is_logged_or_reported(
    delay: object,
    error: type[Exception],
    message: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    refused = ConnectionResetError("refused")
    events: list[anytasks.LoopEvent] = []

    # max_retries and fail_after: so that, before the check, the test failed instead of
    # retrying forever (True is 1) or sleeping forever (inf).
    @anytasks.loop(count=2, max_retries=1, backoff=lambda: Fixed(delay))  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    async def body() -> None:
        raise refused

    body.add_listener(events.append)
    with (
        caplog.at_level(logging.WARNING, logger="anytasks"),
        anyio.fail_after(5),
        pytest.raises(error) as info,
    ):
        await body.run()
    assert str(info.value) == f"`backoff`: Fixed.delay() {message}"
    assert info.value.__cause__ is refused  # nothing lost
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", f"Unhandled exception in loop {body.name!r}")
    ]
    assert "Logging error" not in capfd.readouterr().err
    assert [type(e).__name__ for e in events] == [
        "LoopStarted",
        "IterationStarted",
        "IterationFinished",
        "LoopEnded",
    ]
    finished = events[2]
    assert isinstance(finished, anytasks.IterationFinished)
    assert (finished.index, finished.outcome, finished.exception) == (0, "error", info.value)
    assert body.last_end == LoopEnd(EndReason.FAILED, info.value, 0, body.last_end.last_scheduled)  # type: ignore[union-attr]
    assert body.failed()


@pytest.mark.virtual_time
@pytest.mark.parametrize("delay", [2, 0, 2.5], ids=["int", "zero", "float"])
async def test_delays_that_are_ints_or_zero_are_waited_for(delay: float) -> None:
    clock = Clock()
    attempts: list[float] = []

    @anytasks.loop(seconds=60, count=1, backoff=lambda: Fixed(delay))
    async def body() -> None:
        attempts.append(clock())
        if len(attempts) < 3:
            raise OSError

    await body.run()
    assert attempts == [0.0, delay, 2 * delay]


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"timeout": 0},
            ValueError,
            r"`timeout` must be a positive finite number or None, got 0$",
        ),
        (
            {"timeout": -1.5},
            ValueError,
            r"`timeout` must be a positive finite number or None, got -1.5$",
        ),
        (
            {"timeout": math.inf},
            ValueError,
            r"`timeout` must be a positive finite number or None, got inf$",
        ),
        (
            {"timeout": math.nan},
            ValueError,
            r"`timeout` must be a positive finite number or None, got nan$",
        ),
        ({"timeout": "5"}, TypeError, r"`timeout` must be a number or None, not 'str'$"),
        ({"timeout": True}, TypeError, r"`timeout` must be a number or None, not 'bool'$"),
        (
            {"timeout": 1, "on_timeout": "ignore"},
            ValueError,
            r"`on_timeout` must be 'error', 'skip' or 'retry', got 'ignore'$",
        ),
        ({"on_timeout": "skip"}, TypeError, r"`on_timeout='skip'` needs a `timeout`$"),
        (
            {"backoff": 2},
            TypeError,
            r"`backoff` must be an ExponentialBackoff or a function returning a backoff, "
            r"not 'int'$",
        ),
        (
            {"max_retries": -1},
            ValueError,
            r"`max_retries` must be a non-negative int or None, got -1$",
        ),
        ({"max_retries": 1.0}, TypeError, r"`max_retries` must be an int or None, not 'float'$"),
        ({"max_retries": False}, TypeError, r"`max_retries` must be an int or None, not 'bool'$"),
    ],
)
def test_bad_retry_options_fail_at_the_decorator(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        anytasks.loop(seconds=1, **options)


def test_on_timeout_error_needs_no_timeout() -> None:
    # The default, spelled out: harmless without a timeout.
    anytasks.loop(seconds=1, on_timeout="error")


@pytest.mark.virtual_time
@pytest.mark.parametrize("timeout", [None, 30.0], ids=["plain", "bounded"])
async def test_a_retry_runs_outside_the_previous_attempts_exception(
    timeout: float | None,
) -> None:
    # A retry is a fresh attempt: not run inside the handler of the one before, where every
    # later error would chain to the first ("During handling of the above exception...")
    # and sys.exc_info() in the body would show a stale exception. So it was before 0.2.
    seen: list[BaseException | None] = []
    errors: list[Exception] = []

    @anytasks.loop(seconds=60, max_retries=2, backoff=Fixed, timeout=timeout)
    async def body() -> None:
        seen.append(sys.exc_info()[1])
        raise OSError(len(seen))

    @body.error
    async def error(exc: Exception) -> None:
        errors.append(exc)

    with pytest.raises(OSError, match="3"):
        await body.run()
    assert seen == [None, None, None]
    [error_] = errors
    assert (str(error_), error_.__context__) == ("3", None)
