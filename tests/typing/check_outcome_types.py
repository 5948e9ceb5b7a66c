"""Static checks of outcomes, hooks' arity, listeners and the retry settings.

Checked by mypy --strict and pyright strict (see .ci/run); each expected error is marked
for both checkers, with unused-ignore reporting on, so an error that disappears fails CI.
"""

from __future__ import annotations

import datetime
import functools

from typing_extensions import assert_type

import anytasks
from anytasks import EndReason, ExponentialBackoff, LoopEnd, LoopEvent, loop


@loop(seconds=5, timeout=2.5, on_timeout="skip", max_retries=3)
async def bounded() -> None:
    pass


@loop(seconds=5, backoff=ExponentialBackoff(2, cap=60))
async def configured() -> None:
    pass


@loop(seconds=5, backoff=functools.partial(ExponentialBackoff, 2, cap=60))
async def from_a_factory() -> None:
    pass


# -- hooks: arity ----------------------------------------------------------------------


@bounded.after_loop
async def after_with_end(end: LoopEnd) -> None:
    pass


@bounded.after_loop
async def after_without_end() -> None:
    pass


async def after_with_a_wrong_second_parameter(first: object, second: int) -> None:
    pass


async def after_with_three(a: object, b: LoopEnd, c: int) -> None:
    pass


async def before_with_two(a: object, b: object) -> None:
    pass


async def error_with_none() -> None:
    pass


def check_wrong_arity() -> None:
    bounded.after_loop(after_with_a_wrong_second_parameter)  # type: ignore[type-var]  # pyright: ignore[reportArgumentType]
    bounded.after_loop(after_with_three)  # type: ignore[type-var]  # pyright: ignore[reportArgumentType]
    bounded.before_loop(before_with_two)  # type: ignore[type-var]  # pyright: ignore[reportArgumentType]
    bounded.error(error_with_none)  # type: ignore[type-var]  # pyright: ignore[reportArgumentType]


class Cog:
    @loop(seconds=5)
    async def body(self) -> None:
        pass

    @body.after_loop
    async def after(self, end: LoopEnd) -> None:
        pass


# -- outcomes --------------------------------------------------------------------------


async def check_outcomes() -> None:
    end = await bounded.join()
    assert_type(end, LoopEnd | None)
    assert_type(bounded.last_end, LoopEnd | None)
    if end is not None:
        assert_type(end.reason, EndReason)
        assert_type(end.exception, BaseException | None)
        assert_type(end.iterations, int)
        assert_type(end.last_scheduled, datetime.datetime | None)


# -- listeners -------------------------------------------------------------------------


def on_event(event: LoopEvent) -> None:
    if isinstance(event, anytasks.IterationFinished):
        assert_type(event.outcome, anytasks.IterationOutcome)
        assert_type(event.duration, float)
    elif isinstance(event, anytasks.IterationSkipped):
        assert_type(event.reason, anytasks.SkipReason)


def only_finished(event: anytasks.IterationFinished) -> None:
    pass


def check_listeners() -> None:
    # The function comes back unchanged: its parameter's name too.
    same = anytasks.add_listener(on_event)
    assert_type(same(event=anytasks.LoopStarted(bounded)), None)
    bounded.add_listener(on_event)
    bounded.remove_listener(on_event)
    anytasks.add_listener(only_finished)  # type: ignore[type-var]  # pyright: ignore[reportArgumentType]


# -- bad settings ------------------------------------------------------------------------


def check_bad_settings() -> None:
    loop(seconds=5, on_timeout="ignore")  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    loop(seconds=5, max_retries="3")  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    loop(seconds=5, backoff=3)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
