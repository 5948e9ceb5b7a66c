"""Decoration-time behaviour: arguments, errors, read-only state, hooks, method binding."""

from __future__ import annotations

import datetime
import inspect
import re
from zoneinfo import ZoneInfo

import pytest

import anytasks
from anytasks import Loop, loop


async def body() -> None:
    pass


def not_async() -> None:
    pass


# -- loop() arguments --------------------------------------------------------------


def test_loop_returns_a_loop_with_its_interval() -> None:
    tick = loop(seconds=1.5, minutes=2, hours=1, count=3, reconnect=False, name="t")(body)
    assert isinstance(tick, Loop)
    assert (tick.seconds, tick.minutes, tick.hours) == (1.5, 2, 1)
    assert tick.time is None
    assert tick.count == 3
    assert tick.reconnect is False
    assert tick.name == "t"
    assert tick.coro is body
    assert tick.current_loop == 0
    assert tick.next_iteration is None
    assert not tick.is_running()
    assert not tick.failed()
    assert not tick.is_being_cancelled()


def test_default_name_comes_from_the_function() -> None:
    assert loop()(body).name == "anytasks: body"
    assert repr(loop()(body)) == "<anytasks.Loop 'anytasks: body' idle current_loop=0>"


def test_one_decorator_names_each_function_it_makes_a_loop_of() -> None:
    async def other() -> None:
        pass

    every_second = loop(seconds=1, count=3)
    made = [every_second(body), every_second(other), every_second(body)]
    assert [each.name for each in made] == [
        "anytasks: body",
        f"anytasks: {other.__qualname__}",
        "anytasks: body",
    ]
    assert [each.count for each in made] == [3, 3, 3]
    assert loop(seconds=1, name="fixed")(other).name == "fixed"


def test_time_loop_exposes_sorted_aware_times_and_no_interval() -> None:
    tz = ZoneInfo("Asia/Seoul")
    t = loop(time=[datetime.time(9, tzinfo=tz), datetime.time(8), datetime.time(9, tzinfo=tz)])(
        body
    )
    assert t.time == [datetime.time(8, tzinfo=datetime.timezone.utc), datetime.time(9, tzinfo=tz)]
    assert (t.seconds, t.minutes, t.hours) == (None, None, None)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"seconds": -1}, ValueError, "the total interval must be a non-negative finite number"),
        (
            {"minutes": -1, "seconds": 30},
            ValueError,
            "the total interval must be a non-negative finite number",
        ),
        ({"seconds": float("nan")}, ValueError, "`seconds` must be a finite number, got nan"),
        ({"hours": float("inf")}, ValueError, "`hours` must be a finite number, got inf"),
        ({"minutes": "5"}, TypeError, "`minutes` must be a number, not 'str'"),
        ({"seconds": True}, TypeError, "`seconds` must be a number, not 'bool'"),
        ({"count": 0}, ValueError, "`count` must be a positive int or None, got 0"),
        ({"count": -3}, ValueError, "`count` must be a positive int or None, got -3"),
        ({"count": 2.0}, TypeError, "`count` must be an int or None, not 'float'"),
        ({"reconnect": 1}, TypeError, "`reconnect` must be a bool, not 'int'"),
        ({"name": 5}, TypeError, "`name` must be a str or None, not 'int'"),
        (
            {"time": datetime.time(9), "seconds": 5},
            TypeError,
            "cannot mix `time` with `seconds`, `minutes` or `hours`",
        ),
        ({"time": []}, ValueError, "`time` must not be empty"),
        (
            {"time": [datetime.time(9), "10:00"]},
            TypeError,
            "`time[1]` must be a datetime.time, not 'str'",
        ),
        (
            {"time": 9},
            TypeError,
            "`time` must be a datetime.time or a sequence of them, not 'int'",
        ),
    ],
)
def test_bad_arguments_fail_at_the_decorator(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        loop(**kwargs)  # type: ignore[call-overload]


LOOP_DEFAULTS = {
    "seconds": 0,
    "minutes": 0,
    "hours": 0,
    "time": None,
    "cron": None,
    "tz": None,
    "schedule": None,
    "count": None,
    "reconnect": True,
    "name": None,
    "overrun": None,
    "grace": None,
    "jitter": 0,
    "random": None,
    "timeout": None,
    "on_timeout": "error",
    "backoff": None,
    "max_retries": None,
    "on_error": "raise",
    "exclusive": None,
}


def test_help_and_inspect_show_every_keyword_of_loop_with_its_default() -> None:
    from anytasks._engine.options import LoopKeywords

    parameters = inspect.signature(loop).parameters.values()
    assert [(p.name, p.default) for p in parameters] == list(LOOP_DEFAULTS.items())
    assert {p.kind for p in parameters} == {inspect.Parameter.KEYWORD_ONLY}
    # Every keyword that the options take, and no other.
    assert set(LOOP_DEFAULTS) == LoopKeywords.__optional_keys__


@pytest.mark.parametrize(
    "form",
    [{}, {"time": datetime.time(9)}, {"schedule": anytasks.every(3)}, {"minutes": 2}],
    ids=["none", "time", "schedule", "minutes"],
)
def test_every_keyword_given_as_its_default_is_as_if_not_given(form: dict[str, object]) -> None:
    explicit = loop(**{**LOOP_DEFAULTS, **form})(body)  # type: ignore[call-overload]
    implicit = loop(**form)(body)  # type: ignore[call-overload]
    public = ("schedule", "count", "reconnect", "name", "seconds", "minutes", "hours", "time")
    assert [getattr(explicit, a) for a in public] == [getattr(implicit, a) for a in public]


def test_change_interval_validates_like_loop() -> None:
    tick = loop(seconds=1)(body)
    with pytest.raises(ValueError, match="non-negative"):
        tick.change_interval(seconds=-2)
    with pytest.raises(TypeError, match=re.escape("cannot mix `time`")):
        tick.change_interval(time=datetime.time(1), hours=1)
    assert tick.seconds == 1  # a rejected change leaves the loop as it was
    tick.change_interval(time=datetime.time(1))
    assert tick.time == [datetime.time(1, tzinfo=datetime.timezone.utc)]
    assert tick.seconds is None
    tick.change_interval(minutes=3)
    assert (tick.seconds, tick.minutes, tick.hours, tick.time) == (0, 3, 0, None)


def test_decorating_a_plain_function_makes_a_loop_of_it() -> None:
    # Its calls run in a worker thread (tests/engine/test_sync_bodies.py).
    made = loop(seconds=1)(not_async)
    assert isinstance(made, anytasks.Loop)
    assert made.coro is not_async


@pytest.mark.parametrize("hook", ["before_loop", "after_loop", "error"])
def test_hooks_must_be_coroutine_functions_and_are_returned_unchanged(hook: str) -> None:
    tick = loop(seconds=1)(body)
    register = getattr(tick, hook)
    with pytest.raises(TypeError, match=f"{hook} needs a coroutine function"):
        register(not_async)

    async def h(*args: object) -> None:
        pass

    assert register(h) is h


# -- exception types -----------------------------------------------------------------


def test_default_exception_types_cover_connection_trouble() -> None:
    import anyio

    tick = loop()(body)
    assert tick.remove_exception_type(OSError, TimeoutError, anyio.BrokenResourceError)
    assert not tick.remove_exception_type(OSError)


def test_optional_libraries_are_handled_when_imported() -> None:
    import discord
    import trio

    tick = loop()(body)
    assert tick.remove_exception_type(
        trio.BrokenResourceError, discord.GatewayNotFound, discord.ConnectionClosed
    )


def test_remove_exception_type_reports_whether_all_were_present() -> None:
    tick = loop()(body)
    tick.add_exception_type(KeyError)
    assert not tick.remove_exception_type(KeyError, IndexError)
    assert not tick.remove_exception_type(KeyError)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (ValueError("x"), "exception type #0 must be a class, not 'ValueError'"),
        (int, "exception type #0 must be a subclass of Exception, got 'int'"),
        (KeyboardInterrupt, "exception type #0 must be a subclass of Exception, got"),
    ],
)
def test_add_exception_type_rejects_non_exception_classes(bad: object, message: str) -> None:
    tick = loop()(body)
    with pytest.raises(TypeError, match=re.escape(message)):
        tick.add_exception_type(bad)  # type: ignore[arg-type]


# -- methods -----------------------------------------------------------------------------


class Cog:
    def __init__(self) -> None:
        self.calls: list[str] = []

    @loop(seconds=5, count=2)
    async def printer(self, label: str) -> None:
        self.calls.append(label)

    @printer.before_loop
    async def before_printer(self) -> None:
        self.calls.append("before")


def test_each_instance_gets_its_own_loop_with_the_class_hooks() -> None:
    a, b = Cog(), Cog()
    assert a.printer is a.printer
    assert a.printer is not b.printer
    assert a.printer is not Cog.printer
    assert isinstance(Cog.printer, Loop)
    assert a.printer.count == 2
    assert a.printer.name == Cog.printer.name
    a.printer.change_interval(seconds=1)
    assert b.printer.seconds == 5


def test_calling_a_method_loop_passes_self() -> None:
    import anyio

    cog = Cog()
    anyio.run(cog.printer, "direct")
    assert cog.calls == ["direct"]
    anyio.run(cog.printer.run, "looped")
    assert cog.calls == ["direct", "before", "looped", "looped"]


# -- the public surface ------------------------------------------------------------------


def test_all_is_sorted_and_complete() -> None:
    public = {name for name in dir(anytasks) if not name.startswith("_")}
    assert anytasks.__all__ == sorted(anytasks.__all__)
    assert set(anytasks.__all__) == public - {"lease", "metrics", "testing"}


# Type aliases of Literal values keep typing's module: else they print as anytasks.Literal.
TYPE_ALIASES = {"ErrorAction", "IterationOutcome", "SkipReason", "TimeoutAction"}


def test_exported_names_claim_the_package_as_their_module() -> None:
    for name in set(anytasks.__all__) - TYPE_ALIASES:
        assert getattr(anytasks, name).__module__ == "anytasks"
    for name in TYPE_ALIASES:
        assert getattr(anytasks, name).__module__ == "typing"


def test_a_class_without_instance_dict_gets_a_clear_error() -> None:
    class Slotted:
        __slots__ = ()

        @loop(seconds=1)
        async def tick(self) -> None:
            pass

    with pytest.raises(TypeError, match=r"Slotted instances have no __dict__ .* loop 'tick'"):
        Slotted().tick  # noqa: B018


def test_importing_anytasks_loads_no_event_loop_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, anytasks; "
        "print(sorted(m for m in ('asyncio', 'trio', 'uvloop', 'discord', 'aiohttp', 'httpx') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    # Python 3.10 needs asyncio.TimeoutError, a class of its own there.
    assert out == ("['asyncio']\n" if sys.version_info < (3, 11) else "[]\n")
