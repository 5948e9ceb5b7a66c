"""Every control in every state of a loop, from inside and outside, in every start mode.

The lifecycle's whole state-by-control matrix, kept closed: each case puts a loop in one
state, calls one control there (from the loop's own hook or body, or from another task), lets
the run end, and checks that

- ``after_loop`` ran exactly once per run, to its end, with the expected ``is_being_cancelled()``
  and ``failed()`` (a restart is a new run);
- the body calls are exactly the expected ones, and none started after ``cancel()`` (or a scope
  cancel, or ``task.cancel()``) returned, nor one with the old arguments after ``restart()``;
- the run ended as documented (``run()`` returned or raised, the fallback task's result) and an
  unhandled error was not lost;
- the state was fully reset, and the next start runs its body and ``after_loop`` once, with
  ``is_being_cancelled()`` false;
- on virtual time, ``change_interval()`` took effect at the exact documented time;
- the trace (events with their virtual times; on uvloop, events only) is identical on the
  backend's fast path and on the portable AnyIO path.

asyncio and Trio run on virtual time, so the times in the traces are exact; uvloop runs on real
time with intervals of a few milliseconds. Every rendezvous between the loop and the controlling
task is an event, never a race between two sleeps, so the traces are deterministic. Each backend
plays the cases it can (``Case.impossible_on`` says why the others are not generated).
"""

from __future__ import annotations

import asyncio
import datetime
import importlib.metadata
import itertools
import sys
import time
from dataclasses import dataclass
from typing import Any, cast

import anyio
import anyio.lowlevel
import pytest
from anyio.abc import TaskStatus

import anytasks
import anytasks._engine.backend
import anytasks._engine.retry
import anytasks.testing
from anytasks._engine.backend import _PORTABLE
from anytasks.testing import wall_now
from support.backends import BACKENDS

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

pytestmark = pytest.mark.anyio

ANYIO = tuple(int(part) for part in importlib.metadata.version("anyio").split(".")[:2])

# Durations in units: one second on virtual time, UVLOOP_UNIT on uvloop's real time. Chosen so
# that no two things the trace orders can happen at the same instant.
INTERVAL = 10  # the loop's interval
NEW_INTERVAL = 4  # what change_interval(seconds=...) switches to
HOLD = 4  # how long before_loop, the error hook and after_loop await when the case is there
BODY_HOLD = 15  # how long the body awaits in the "body" and "catch_up" states: an overrun
BACKOFF = 3  # the (fixed) backoff delay
# The times of day change_interval(time=...) switches to, after the scenario began.
TIMES_OF_DAY = (40, 50, 60)
# How long the event loop is blocked ("late_wake") or the machine suspended ("suspended").
STALL = 25
COUNT = 3  # iterations per run
UVLOOP_UNIT = 0.002
# Each scenario is bounded, so that a hang fails in seconds rather than at pytest's timeout.
# On virtual time the bound is virtual too: a hang jumps straight to it.
VIRTUAL_TIMEOUT = 1000.0
REAL_TIMEOUT = 5.0

STATES = (
    "not_started",
    "starting",  # start() has returned, but the loop's task has not run yet
    "before_loop",  # before_loop awaits
    "body",  # the first iteration's body awaits (and will overrun the interval)
    "catch_up",  # the overrun first iteration has returned: the loop is behind schedule
    "waiting",  # the first iteration returned at once: the loop sleeps until the next one
    "timer_tick",  # the tick in which the wait's timer fires
    "late_wake",  # the event loop was blocked past two slots while the loop waited (coalesce)
    "suspended",  # the machine was suspended while the loop waited: the wall clock jumped
    "backoff",  # the first attempt raised a handled error: the loop sleeps before the retry
    "error_hook",  # the first iteration raised an unhandled error: the error hook awaits
    "after_loop",  # the run ended after COUNT iterations: after_loop awaits
)
CONTROLS = (
    "start",  # loop.start(): refused while running
    "run",  # await loop.run(): refused while running
    "stop",
    "cancel",
    "restart",  # restart("b")
    "interval",  # change_interval(seconds=NEW_INTERVAL)
    "time_of_day",  # change_interval(time=TIMES_OF_DAY)
    "scope_cancel",  # the scope enclosing run() or the background() block is cancelled
    "task_cancel",  # the fallback asyncio.Task is cancelled with task.cancel()
)
# "inside" is the hook or body that is running in the state: before_loop, the error hook and
# after_loop call the control and then await; the body calls it and then awaits ("body"), or
# calls it as its last statement ("waiting": it takes effect in the wait; "catch_up": after an
# overrun, in the catch-up checkpoint); in "backoff" the failing attempt calls it just before
# raising the handled error.
CALLERS = (
    "inside",  # the loop's own hook or body calls the control
    "other",  # another task calls it, while the loop is in the state
)
MODES = (
    "run",  # await loop.run() in a task
    "daemon",  # async with anytasks.background(): loop.start()
    "fallback",  # loop.start() without a host: an asyncio.Task
)


def meaningless(state: str, control: str, caller: str, mode: str) -> str | None:
    """Why a combination is not a case, or None if it is one."""
    if state == "not_started" and caller == "inside":
        return "nothing of a loop runs before it is started"
    if state == "timer_tick" and caller == "inside":
        return "no code of the loop runs in the tick where its timer fires"
    if state in ("late_wake", "suspended") and caller == "inside":
        return "no code of the loop runs while it waits"
    if state == "starting" and caller == "inside":
        return "nothing of the loop has run yet (the caller is the task that started it)"
    if state == "starting" and mode == "run":
        return "run() marks the loop running in its own task: before that it is not_started"
    if state == "not_started" and control in ("start", "run"):
        return "starting a loop that is not running is what every case does"
    if control == "task_cancel" and mode != "fallback":
        return (
            "only start() without a host gives the loop an asyncio.Task of its own; cancelling "
            "the task around run() or the host is the scope_cancel case"
        )
    if control == "task_cancel" and state == "not_started":
        return "there is no task to cancel before start()"
    if control == "scope_cancel" and mode == "fallback":
        return "the fallback task runs outside every scope of its caller (see task_cancel)"
    return None


@dataclass(frozen=True)
class Case:
    state: str
    control: str
    caller: str
    mode: str

    def __str__(self) -> str:
        return f"{self.state}-{self.control}-{self.caller}-{self.mode}"

    def impossible_on(self, backend: str) -> str | None:
        """Why the case cannot be played on ``backend`` (it is then not generated), or None."""
        if self.state == "suspended" and backend == "asyncio+uvloop":
            return "a suspend is simulated on virtual time only (anytasks.testing.suspend)"
        if self.mode == "fallback" and backend == "trio":
            return "Trio has no task without a parent: start() needs a host there"
        if self.state == "timer_tick" and backend != "asyncio":
            # On asyncio the controller's timer is ordered before the loop's at the same
            # deadline, so the control lands after the loop's timer fired and before the loop
            # resumes. Trio runs the tasks woken in one tick in random order, and uvloop's
            # real clock cannot put two timers on one deadline the loop chose.
            return "the timer's tick can be targeted exactly only on asyncio's virtual time"
        if self.state == "catch_up" and self.caller == "other" and backend == "trio":
            # The body's return wakes the controller in the tick in which the loop reaches its
            # catch-up checkpoint; Trio orders the two tasks at random.
            return "Trio orders the controller and the loop's catch-up checkpoint at random"
        return None

    def marks(self) -> list[pytest.MarkDecorator]:
        """A skip, where the installed AnyIO or Python cannot play the case."""
        if (self.state, self.control) == ("timer_tick", "task_cancel") and (
            ANYIO < (4, 16) or sys.version_info < (3, 11)
        ):
            # The portable path sleeps in a deadline scope; a Task.cancel() that lands in the
            # tick in which that scope's own deadline fires is folded into its cancellation and
            # swallowed before AnyIO 4.16 (anyio#1214), and on Python 3.10, which keeps no
            # count of cancel requests. The backend path uses no deadline scope.
            reason = "AnyIO swallows a Task.cancel() folded into a deadline's own (< 4.16, 3.10)"
            return [pytest.mark.skip(reason=reason)]
        return []


CASES = [
    Case(*combination)
    for combination in itertools.product(STATES, CONTROLS, CALLERS, MODES)
    if meaningless(*combination) is None
]


def cases_on(backend: str) -> list[Case]:
    """The cases that ``backend`` can play."""
    return [case for case in CASES if case.impossible_on(backend) is None]


# (anyio_backend, case) for every case on every backend that can play it.
MATRIX = [
    pytest.param(backend, case, id=f"{backend}-{case}", marks=case.marks())
    for backend in BACKENDS
    for case in cases_on(backend)
]

CANCELS = ("cancel", "scope_cancel", "task_cancel")
A0, A1, A2 = "body a 0", "body a 1", "body a 2"
RESTARTED = ["body b 0", "body b 1", "body b 2"]


# -- what each case should do ------------------------------------------------------------


def expected_bodies(state: str, control: str) -> list[str]:
    """The body calls of the scenario, in order ("body <arg> <current_loop>")."""
    baseline = {"backoff": [A0, A0, A1, A2], "error_hook": [A0]}.get(state, [A0, A1, A2])
    if state == "starting" and control in (*CANCELS, "stop", "restart"):
        # task.cancel() in the tick of start(): the task never runs its coroutine.
        # Cancelled before its task got to run: not even before_loop; stopped: before_loop,
        # then no iteration.
        return RESTARTED if control == "restart" else []
    if state == "not_started":
        # The controls do nothing yet, except a cancelled enclosing scope, which ends the
        # loop before before_loop.
        return [] if control == "scope_cancel" else baseline
    if control in ("start", "run", "interval", "time_of_day"):
        return baseline
    if state in ("error_hook", "after_loop"):
        ended = baseline  # no iteration was left to cut
    elif state == "before_loop":
        ended = []  # stop(): before_loop runs to its end, then no iteration; cancel(): cut
    elif state == "backoff":
        # stop(): the retries belong to the iteration and go on until it succeeds.
        ended = [A0, A0] if control == "stop" else [A0]
    else:
        ended = [A0]
    if control == "restart":
        return [*ended, *RESTARTED]
    return ended


def expected_afters(state: str, control: str) -> list[str]:
    """What each run's after_loop sees as it begins."""
    failed = state == "error_hook"

    def after(cancelled: bool, failed: bool = failed) -> str:
        return f"after cancelled={cancelled} failed={failed}"

    if state == "not_started":
        return [after(control == "scope_cancel")]
    if state == "starting" and control == "task_cancel":
        # The task was cancelled before its first step, so its coroutine never began:
        # neither hook runs (documented; as with discord.py).
        return []
    if state == "after_loop":
        # The hook began before the control; a restart starts over once the hook returns.
        return [after(False), after(False)] if control == "restart" else [after(False)]
    if control in CANCELS:
        return [after(True)]
    if control == "restart":
        # The restarted run is a new run (failed() reset). During the error hook, restart()
        # is the hook's documented way to recover, as in discord.py: the failed run's
        # after_loop sees failed() true, and the loop starts over instead of raising.
        return [after(True), after(False, False)]
    return [after(False)]


def expected_befores(state: str, control: str) -> int:
    runs = len(expected_afters(state, control))
    if (state, control) == ("starting", "task_cancel"):
        return 0  # the task never ran
    if (state, control) == ("not_started", "scope_cancel") or (
        state == "starting" and control in (*CANCELS, "restart")
    ):
        return runs - 1  # cancelled before its task got to run: not even before_loop
    return runs


def expected_outcomes(state: str, control: str, mode: str) -> set[str]:
    """How the scenario's start ended: run() or the fallback task, or the background block."""
    if mode == "daemon":
        # A daemon's errors stay in the host; only a cancelled enclosing scope ends the block.
        return {"cancelled" if control == "scope_cancel" else "returned"}
    if state == "error_hook":
        # Never lost, whatever the control, unless the hook's restart() recovered.
        return {"returned"} if control == "restart" else {"ValueError"}
    if control == "scope_cancel" and state == "after_loop":
        # after_loop is shielded and the run then ends normally; whether run() reaches one
        # more checkpoint inside the cancelled scope is not specified.
        return {"returned", "cancelled"}
    if control in ("scope_cancel", "task_cancel"):
        return {"cancelled"}
    return {"returned"}


def expected_control(control: str) -> str:
    if control in ("start", "run"):
        return f"control {control} -> RuntimeError"  # the loop is running
    return f"control {control}"


NEXT_RUN = [
    "before",
    "before-done",
    "started",  # run mode only
    "body c 0",
    "after cancelled=False failed=False",
    "after-done",
    "outcome returned",
]


# -- one scenario ------------------------------------------------------------------------


class Handled(Exception):
    """A handled error: the loop retries the iteration after the backoff delay."""


class FixedBackoff:
    """Stands in for the random backoff, so that traces are exact and repeatable."""

    def __init__(self, delay: float) -> None:
        self._delay = delay

    def delay(self) -> float:
        return self._delay


def describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        group = cast("BaseExceptionGroup[BaseException]", exc)
        leaves = [describe(inner) for inner in group.exceptions]
        if set(leaves) == {"ValueError"}:
            return "ValueError"  # run() may raise the error in a group: it was not lost
        return f"{type(group).__name__}{leaves}"
    return type(exc).__name__


class Scenario:
    """One case, played once: the loop, its hooks, the controller, and what they recorded."""

    def __init__(self, case: Case, unit: float, virtual: bool) -> None:
        self.case = case
        self.unit = unit
        self.virtual = virtual
        self.t0 = anyio.current_time()
        self.wall0 = wall_now()
        self.events: list[tuple[float, str]] = []
        self.problems: list[str] = []
        self.reached = anyio.Event()
        self.armed = anyio.Event()
        self.fired = False
        # When the first body began, on the event loop's clock.
        self.first_body_time: float | None = None
        # The arguments whose bodies must not start any more (set right after the control
        # returned).
        self.cut: set[str] = set()
        self.enclosing = anyio.CancelScope()
        self.loop = self._make_loop()

    def _make_loop(self) -> anytasks.Loop[[str], None]:
        # A late wake-up is a missed slot: coalesce runs once for the two that passed.
        overrun = "coalesce" if self.case.state == "late_wake" else None

        @anytasks.loop(seconds=INTERVAL * self.unit, count=COUNT, overrun=overrun)
        async def job(arg: str) -> None:
            await self._body(arg)

        job.add_exception_type(Handled)

        @job.before_loop
        async def before() -> None:
            self.record("before")
            if self.case.state == "before_loop" and not self.fired:
                await self._fire()
                await anyio.sleep(HOLD * self.unit)
            # Every run's hooks await, so a start that returns too early would show.
            await anyio.lowlevel.checkpoint()
            self.record("before-done")

        @job.error
        async def on_error(exc: Exception) -> None:
            self.record(f"error {type(exc).__name__}")
            if self.case.state == "error_hook" and not self.fired:
                await self._fire()
                await anyio.sleep(HOLD * self.unit)
            self.record("error-done")

        @job.after_loop
        async def after() -> None:
            self.record(f"after cancelled={job.is_being_cancelled()} failed={job.failed()}")
            if self.case.state == "after_loop" and not self.fired:
                await self._fire()
                await anyio.sleep(HOLD * self.unit)
            # after_loop can always await: shielded, whatever ended the run.
            await anyio.lowlevel.checkpoint()
            self.record("after-done")

        return job

    def record(self, event: str) -> None:
        self.events.append((anyio.current_time() - self.t0, event))

    @property
    def trace(self) -> list[str]:
        if self.virtual:
            return [f"{round(t / self.unit, 6):g} {event}" for t, event in self.events]
        return [event for _, event in self.events]

    # -- the loop's side -----------------------------------------------------------------

    async def _body(self, arg: str) -> None:
        loop = self.loop
        label = f"body {arg} {loop.current_loop}"
        if loop.is_being_cancelled():
            label += " being-cancelled"
        self.record(label)
        if arg in self.cut:
            self.problems.append(f"{label!r} started after {self.case.control} returned")
        if arg == "c":
            loop.stop()  # the next run ends with a plain stop()
            return
        if arg != "a" or loop.current_loop != 0:
            return
        if self.first_body_time is None:
            self.first_body_time = anyio.current_time()
        state = self.case.state
        if state == "body":
            if not self.fired:
                await self._fire()
            await anyio.sleep(BODY_HOLD * self.unit)
        elif state == "catch_up":
            await anyio.sleep(BODY_HOLD * self.unit)
            await self._fire()
        elif state in ("waiting", "timer_tick", "late_wake", "suspended"):
            await self._fire()
            if state == "timer_tick":
                # Let the controller set its timer before the loop sets the wait's, so that
                # it fires first in that tick.
                await self.armed.wait()
        elif state == "backoff" and not self.fired:
            await self._fire()
            raise Handled("first attempt")
        elif state == "error_hook":
            raise ValueError("unhandled")

    async def _fire(self) -> None:
        """The loop is in the case's state: call the control, or let the controller do it."""
        self.fired = True
        if self.case.caller == "inside":
            await self.control()
        else:
            self.reached.set()

    # -- the controls ----------------------------------------------------------------------

    async def controller(self) -> None:
        await self.reached.wait()
        if self.case.state == "timer_tick":
            assert self.first_body_time is not None
            deadline = self.first_body_time + INTERVAL * self.unit
            with anyio.CancelScope(deadline=deadline):
                self.armed.set()
                await anyio.sleep_forever()
        elif self.case.state == "late_wake":
            if self.virtual:
                anytasks.testing.jump(STALL * self.unit)
            else:
                time.sleep(STALL * self.unit)  # noqa: ASYNC251  (really block the event loop)
        elif self.case.state == "suspended":
            anytasks.testing.suspend(STALL * self.unit)
        await self.control()

    async def control(self) -> None:
        loop, control, unit = self.loop, self.case.control, self.unit
        try:
            if control == "start":
                loop.start("x")
            elif control == "run":
                await loop.run("x")
            elif control == "stop":
                loop.stop()
            elif control == "cancel":
                loop.cancel()
            elif control == "restart":
                loop.restart("b")
            elif control == "interval":
                loop.change_interval(seconds=NEW_INTERVAL * unit)
            elif control == "time_of_day":
                loop.change_interval(
                    time=[
                        (self.wall0 + datetime.timedelta(seconds=at * unit)).timetz()
                        for at in TIMES_OF_DAY
                    ]
                )
            elif control == "scope_cancel":
                self.enclosing.cancel()
            else:
                assert control == "task_cancel"
                task = loop.get_task()
                assert task is not None
                task.cancel()
        except RuntimeError:
            self.record(f"control {control} -> RuntimeError")
            return
        if self.case.state != "not_started" and (control in CANCELS or control == "restart"):
            self.cut.add("a")
        self.record(f"control {control}")

    # -- starting and checking -------------------------------------------------------------

    async def drive(self, arg: str, enclosing: anyio.CancelScope) -> str:
        """Start the loop in the case's mode; return how that start ended."""
        loop, mode = self.loop, self.case.mode
        starting = self.case.state == "starting" and arg == "a"
        if mode == "fallback":
            try:
                task = loop.start(arg)
            except RuntimeError as exc:
                return f"RuntimeError from start(): {exc}"
            assert task is not None
            if starting:
                await self.control()  # no checkpoint in between: the task has not run yet
            if loop.get_task() is not task:
                self.problems.append("get_task() is not the task start() returned")
            await asyncio.wait([task])
            if task.cancelled():
                return "cancelled"
            error = task.exception()
            return "returned" if error is None else describe(error)
        with enclosing:
            try:
                if mode == "run":
                    async with anyio.create_task_group() as tg:
                        await tg.start(self._run, arg)
                else:
                    async with anytasks.background():
                        loop.start(arg)
                        if starting:
                            await self.control()
                        await loop.join()
            except Exception as exc:
                return describe(exc)
            return "returned"
        return "cancelled"

    async def _run(self, arg: str, *, task_status: TaskStatus[None]) -> None:
        """``loop.run`` for ``tg.start()``, recording when it reports the loop started."""
        scenario = self

        class Probe:
            def started(self, value: None = None) -> None:
                scenario.record("started")
                task_status.started(value)

        # task_status is taken by run() itself, outside the body's parameters.
        run: Any = self.loop.run
        await run(arg, task_status=Probe())

    def check_reset(self, when: str) -> None:
        loop = self.loop
        state = {
            "is_running()": loop.is_running(),
            "is_being_cancelled()": loop.is_being_cancelled(),
            "current_loop": loop.current_loop,
            "next_iteration": loop.next_iteration,
            "get_task()": loop.get_task(),
        }
        reset = {
            "is_running()": False,
            "is_being_cancelled()": False,
            "current_loop": 0,
            "next_iteration": None,
            "get_task()": None,
        }
        if state != reset:
            self.problems.append(f"{when}: state not reset: {state}")

    async def play(self) -> None:
        timeout = VIRTUAL_TIMEOUT if self.virtual else REAL_TIMEOUT
        try:
            with anyio.fail_after(timeout):
                await self._play()
        except TimeoutError:
            self.problems.append(f"hung: not finished after {timeout} s ({self.trace[-1:]})")
        self.check()

    async def _play(self) -> None:
        case = self.case
        outcome = "not started"
        async with anyio.create_task_group() as tg:
            if case.state == "not_started":
                async with anyio.create_task_group() as controller:
                    controller.start_soon(self.control)
            elif case.caller == "other" and case.state != "starting":
                tg.start_soon(self.controller)
            outcome = await self.drive("a", self.enclosing)
            tg.cancel_scope.cancel()  # a controller still waiting: its state never came
        self.record(f"outcome {outcome}")
        self.failed_after_scenario = self.loop.failed()
        self.check_reset("after the scenario")
        self.next_run_start = len(self.events)
        self.loop.count = 1
        self.loop.change_interval(seconds=INTERVAL * self.unit)
        self.record(f"outcome {await self.drive('c', anyio.CancelScope())}")
        self.check_reset("after the next run")

    def check(self) -> None:
        case, problems = self.case, self.problems
        if not hasattr(self, "next_run_start"):
            return  # hung: already a problem
        scenario = [event for _, event in self.events[: self.next_run_start]]
        next_run = [event for _, event in self.events[self.next_run_start :]]

        def expect(what: str, actual: object, expected: object) -> None:
            if actual != expected:
                problems.append(f"{what}: {actual!r}, expected {expected!r}")

        bodies = [e for e in scenario if e.startswith("body")]
        expect("bodies", bodies, expected_bodies(case.state, case.control))
        afters = [e for e in scenario if e.startswith("after cancelled")]
        expect("after_loop", afters, expected_afters(case.state, case.control))
        hooks = [e for e in scenario if e.startswith(("before", "after"))]
        unfinished = [
            i
            for i, event in enumerate(hooks)
            if event.startswith("after cancelled") and hooks[i + 1 : i + 2] != ["after-done"]
        ]
        if unfinished or hooks.count("after-done") != len(afters):
            problems.append(f"after_loop did not run to its end once per run: {hooks}")
        expect("before_loop runs", scenario.count("before"), expected_befores(*self._sc))
        errors = [e for e in scenario if e.startswith("error ")]
        expect("error hook", errors, ["error ValueError"] if case.state == "error_hook" else [])
        outcome = scenario[-1].removeprefix("outcome ")
        if outcome not in expected_outcomes(case.state, case.control, case.mode):
            problems.append(
                f"the start ended {outcome!r}, expected one of "
                f"{sorted(expected_outcomes(case.state, case.control, case.mode))}"
            )
        expect("failed() after the scenario", self.failed_after_scenario, self._failing)
        controls = [e for e in scenario if e.startswith("control")]
        expect("controls", controls, [expected_control(case.control)])
        if case.mode == "run":
            self._check_started(scenario)
        expected_next = [e for e in NEXT_RUN if case.mode == "run" or e != "started"]
        expect("the next start", next_run, expected_next)
        if self.virtual:
            self._check_new_schedule()

    @property
    def _sc(self) -> tuple[str, str]:
        return self.case.state, self.case.control

    @property
    def _failing(self) -> bool:
        return self.case.state == "error_hook" and self.case.control != "restart"

    def _check_started(self, scenario: list[str]) -> None:
        """``await tg.start(loop.run)`` returns once before_loop has finished.

        That is, between the before_loop of the run that iterates and its first iteration;
        a loop that ends before its first iteration reports its start as it ends.
        """
        started = [i for i, event in enumerate(scenario) if event == "started"]
        bodies = [i for i, event in enumerate(scenario) if event.startswith("body")]
        if not bodies:
            if len(started) > 1:
                self.problems.append(f"tg.start() was told {len(started)} times")
            return
        befores = [i for i, event in enumerate(scenario[: bodies[0]]) if event == "before"]
        if (
            len(started) != 1
            or not befores
            or not (befores[-1] < started[0] < bodies[0])
            or "before-done" not in scenario[befores[-1] : started[0]]
        ):
            self.problems.append(
                "tg.start(loop.run) did not return between the end of before_loop and the "
                f"first iteration: {scenario}"
            )

    def _check_new_schedule(self) -> None:
        """change_interval() took effect at the documented time (exact on virtual time)."""
        case = self.case
        times = {event: t / self.unit for t, event in reversed(self.events)}
        actual = tuple(times.get(body) for body in (A0, A1, A2))
        if case.state in ("late_wake", "suspended") and case.control in ("start", "run"):
            # Nothing changed the schedule: a late wake-up at STALL is a missed slot, and
            # coalesce runs the latest (20) at once, then the grid goes on; a suspend leaves
            # the grid of the event loop's clock as it was.
            grid = (0, STALL, 30) if case.state == "late_wake" else (0, INTERVAL, 2 * INTERVAL)
            if actual != grid:
                self.problems.append(f"iterations at {actual}, expected at {grid}")
            return
        if case.control not in ("interval", "time_of_day") or case.state in (
            "error_hook",
            "after_loop",
        ):
            return  # the run had no iteration left: the next run gets the new schedule
        first = actual[0]
        control_time = times.get(expected_control(case.control))
        if first is None or control_time is None:
            return  # no body, or no control: already a problem
        expected: tuple[float, ...]
        if case.control == "interval":
            # This iteration's due time plus the new interval, or at once if that has passed
            # (by the end of this iteration, or when the control came); then every new
            # interval, counted from the last start: at most one immediate run.
            first_ended = first
            if case.state in ("body", "catch_up"):
                first_ended = first + BODY_HOLD
            elif case.state == "backoff":
                first_ended = first + BACKOFF
            second = max(first + NEW_INTERVAL, first_ended, control_time)
            expected = (first, second, second + NEW_INTERVAL)
        elif case.state in ("not_started", "starting", "before_loop"):
            expected = TIMES_OF_DAY  # used from the first wait on
        elif case.state == "suspended":
            # The wall clock is STALL ahead of the event loop's since the control.
            expected = (first, *(at - STALL for at in TIMES_OF_DAY[:2]))
        else:
            expected = (first, *TIMES_OF_DAY[:2])
        if actual != expected:
            self.problems.append(f"iterations at {actual}, expected at {expected}")


@pytest.mark.parametrize(("anyio_backend", "case"), MATRIX, indirect=["anyio_backend"])
async def test_lifecycle(case: Case, backend_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    virtual = backend_name != "asyncio+uvloop"
    unit = 1.0 if virtual else UVLOOP_UNIT
    if not virtual and case.control == "time_of_day":
        # A time of day that a loaded machine lets pass is next due tomorrow: give these
        # cases a wider margin on the real clock.
        unit *= 3

    def fixed_backoff(**_: Any) -> FixedBackoff:
        return FixedBackoff(BACKOFF * unit)

    monkeypatch.setattr(anytasks._engine.retry, "ExponentialBackoff", fixed_backoff)
    fast = Scenario(case, unit, virtual)
    await fast.play()
    monkeypatch.setattr(anytasks._engine.backend, "bind_primitives", lambda: _PORTABLE)
    portable = Scenario(case, unit, virtual)
    await portable.play()

    report = [
        *(f"fast path: {problem}" for problem in fast.problems),
        *(f"portable path: {problem}" for problem in portable.problems),
    ]
    if fast.trace != portable.trace:
        report.append("the fast and the portable path differ")
    if report:
        report += ["fast trace:", *fast.trace, "portable trace:", *portable.trace]
    assert not report, "\n".join(report)
