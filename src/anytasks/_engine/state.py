"""What a loop is doing: :class:`LoopState`, and which state may follow which."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, final


@final
class LoopState(enum.Enum):
    """What a loop is doing right now, as :attr:`Loop.state <anytasks.Loop.state>` tells.

    A loop that is not running is :attr:`IDLE`. A run goes through :attr:`STARTING`
    (``before_loop``), then alternates between :attr:`RUNNING` (the body), :attr:`WAITING`
    and :attr:`BACKING_OFF`, and ends in :attr:`FINISHING` (``after_loop``). :attr:`STOPPING`
    and :attr:`CANCELLING` say that the run is ending: they hold from ``stop()`` or
    ``cancel()`` until ``after_loop`` begins, whatever the body or hook in progress does
    meanwhile.

    .. versionadded:: 0.2
    """

    IDLE = "idle"
    """Not running: never started, or ended."""
    STARTING = "starting"
    """``before_loop`` is running."""
    RUNNING = "running"
    """The body is running (or, for a zero interval, the loop is between two bodies)."""
    WAITING = "waiting"
    """Waiting for the next iteration's time."""
    BACKING_OFF = "backing off"
    """Waiting to retry an iteration after a handled exception."""
    PAUSED = "paused"
    """Waiting, paused by :meth:`~anytasks.Loop.pause`: iterations that come due are skipped."""
    STOPPING = "stopping"
    """:meth:`~anytasks.Loop.stop` was called: the iteration in progress (its retries
    included) runs to its end, then the run ends."""
    CANCELLING = "cancelling"
    """:meth:`~anytasks.Loop.cancel`, :meth:`~anytasks.Loop.restart`, an enclosing cancel scope or
    ``Task.cancel()`` is ending the run; ``after_loop`` comes next."""
    FAILING = "failing"
    """An unhandled exception ends the run: the ``error`` hook is running."""
    FINISHING = "finishing"
    """``after_loop`` is running."""

    if TYPE_CHECKING:

        def __hash__(self) -> int: ...

    else:
        # Members are singletons that compare by identity, so identity hashing agrees with
        # equality; Enum's own __hash__ (hash of the name, in Python) made every move of a
        # loop between states cost about 0.3 µs in set and dict look-ups, twice per wait.
        __hash__ = object.__hash__


_S = LoopState

#: The states each state may move to. The loop moves only along these (asserted as it moves);
#: STOPPING and CANCELLING are sticky: a move to RUNNING, WAITING or BACKING_OFF while the
#: run is ending leaves the state as it is (see :func:`sticky`).
TRANSITIONS: dict[LoopState, frozenset[LoopState]] = {
    _S.IDLE: frozenset({_S.STARTING}),
    _S.STARTING: frozenset(
        {_S.RUNNING, _S.WAITING, _S.PAUSED, _S.STOPPING, _S.CANCELLING, _S.FAILING, _S.FINISHING}
    ),
    _S.RUNNING: frozenset(
        {
            _S.WAITING,
            _S.BACKING_OFF,
            _S.PAUSED,
            _S.STOPPING,
            _S.CANCELLING,
            _S.FAILING,
            _S.FINISHING,
        }
    ),
    _S.WAITING: frozenset(
        {_S.RUNNING, _S.PAUSED, _S.STOPPING, _S.CANCELLING, _S.FAILING, _S.FINISHING}
    ),
    _S.BACKING_OFF: frozenset({_S.RUNNING, _S.STOPPING, _S.CANCELLING, _S.FAILING}),
    _S.PAUSED: frozenset(
        {_S.WAITING, _S.RUNNING, _S.STOPPING, _S.CANCELLING, _S.FAILING, _S.FINISHING}
    ),
    _S.STOPPING: frozenset({_S.CANCELLING, _S.FAILING, _S.FINISHING}),
    _S.CANCELLING: frozenset({_S.FAILING, _S.FINISHING}),
    _S.FAILING: frozenset({_S.CANCELLING, _S.FINISHING}),
    # after_loop: then the run has ended, or a restart begins it again.
    _S.FINISHING: frozenset({_S.IDLE, _S.STARTING}),
}

#: States that say the run is ending, which the phases of the body and the waits do not undo.
ENDING = frozenset({_S.STOPPING, _S.CANCELLING})
# Built once: before Python 3.12 every `_S.X` read is a slow call (EnumType.__getattr__).
_PHASES = frozenset({_S.RUNNING, _S.WAITING, _S.BACKING_OFF, _S.PAUSED})


def sticky(current: LoopState, new: LoopState) -> bool:
    """Whether a move from ``current`` to ``new`` is one that an ending run ignores."""
    return current in ENDING and new in _PHASES


def check_transition(current: LoopState, new: LoopState) -> None:
    """Raise :class:`AssertionError` if the loop may not move from ``current`` to ``new``."""
    if new not in TRANSITIONS[current]:
        raise AssertionError(f"a loop cannot move from {current.name} to {new.name}")


# The states that the engine compares against while a run goes on, as module globals: before
# Python 3.12 an attribute read on an Enum class is a slow call (about 60 ns, against 10 ns for
# a global; proposal 0004 in benchmarks/history/2026-11-30-engine-restructure.md). Typed as the
# enum, not as its literal member: the state changes under the runner's feet while it awaits,
# which narrowing on a literal would hide from the type checkers.
STOPPING: LoopState = LoopState.STOPPING
RUNNING: LoopState = LoopState.RUNNING
WAITING: LoopState = LoopState.WAITING
