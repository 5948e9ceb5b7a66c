"""What loops report as they run: typed events, and the listeners they are delivered to.

A listener is a plain function of one event, called synchronously in the loop's task, in
the order the events happen: first the loop's own listeners (:meth:`Loop.add_listener
<anytasks.Loop.add_listener>`), then the global ones (:func:`add_listener`). With no listener
anywhere, no event is even made: the iterations pay one flag check (see ``listening``).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, final

from .._frozen import Frozen
from .._outcome import IterationOutcome, LoopEnd, SkipReason, TimeoutAction
from .threads import is_async

if TYPE_CHECKING:
    # The one import against the grain: the engine makes events about loops, and loops are
    # what run the engine.
    from .._loop import Loop

    #: Any loop, as the engine and the events see it.
    AnyLoop = Loop[Any, Any]

logger = logging.getLogger("anytasks")


class LoopEvent(Frozen):
    """The base of the events that loops report; every event has the :attr:`loop` it is about.

    Events are frozen, compare equal field by field, pickle, and support ``match`` by
    position.

    .. versionadded:: 0.2
    """

    __slots__ = ("loop",)
    __match_args__ = ("loop",)

    loop: Loop[Any, Any]
    """The loop (for a loop declared on a class: the instance's copy)."""

    def __init__(self, loop: Loop[Any, Any]) -> None:
        self._set(loop=loop)

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.__match_args__ if name != "loop"
        )
        return f"{type(self).__name__}(loop={self.loop.name!r}{', ' if fields else ''}{fields})"


@final
class LoopStarted(LoopEvent):
    """A run of the loop began (before ``before_loop``); a restart begins a new run.

    .. versionadded:: 0.2
    """

    __slots__ = ()


@final
class IterationStarted(LoopEvent):
    """An iteration's body is about to be called (once per iteration, not per retry).

    .. versionadded:: 0.2
    """

    __slots__ = ("index", "lateness", "scheduled")
    __match_args__ = ("loop", "index", "scheduled", "lateness")

    index: int
    """0 for the run's first iteration, then 1, 2, ... (skipped slots take no index)."""
    scheduled: datetime.datetime
    """When the slot was due (aware UTC): the grid's time, before any jitter."""
    lateness: float
    """Seconds from :attr:`scheduled` until the body was called (jitter included)."""

    def __init__(
        self, loop: Loop[Any, Any], index: int, scheduled: datetime.datetime, lateness: float
    ) -> None:
        super().__init__(loop)
        self._set(index=index, scheduled=scheduled, lateness=lateness)


@final
class IterationFinished(LoopEvent):
    """An iteration ended (after its retries, if any).

    .. versionadded:: 0.2
    """

    __slots__ = ("duration", "exception", "index", "outcome")
    __match_args__ = ("loop", "index", "outcome", "duration", "exception")

    index: int
    """The iteration's index, as in :class:`IterationStarted`."""
    outcome: IterationOutcome
    """``"success"``, ``"error"``, ``"timeout"`` or ``"cancelled"``."""
    duration: float
    """Seconds from the start of the iteration's first attempt to its end, on the event
    loop's clock (virtual under :mod:`anytasks.testing`)."""
    exception: BaseException | None
    """The exception the body raised (an :class:`~anytasks.IterationTimeout` for a timeout),
    or ``None``."""

    def __init__(
        self,
        loop: Loop[Any, Any],
        index: int,
        outcome: IterationOutcome,
        duration: float,
        exception: BaseException | None = None,
    ) -> None:
        super().__init__(loop)
        self._set(index=index, outcome=outcome, duration=duration, exception=exception)


@final
class IterationSkipped(LoopEvent):
    """Slots of the schedule were skipped (also counted in :attr:`Loop.skipped
    <anytasks.Loop.skipped>`).

    .. versionadded:: 0.2
    """

    __slots__ = ("count", "reason")
    __match_args__ = ("loop", "reason", "count")

    reason: SkipReason
    """``"missed"``, ``"paused"`` or ``"timeout"``."""
    count: int
    """How many slots."""

    def __init__(self, loop: Loop[Any, Any], reason: SkipReason, count: int) -> None:
        super().__init__(loop)
        self._set(reason=reason, count=count)


@final
class IterationRetrying(LoopEvent):
    """An iteration failed with a handled exception (or timed out with ``on_timeout="retry"``)
    and is retried after :attr:`~anytasks.IterationRetrying.delay` seconds.

    .. versionadded:: 0.2
    """

    __slots__ = ("attempt", "delay", "exception", "index")
    __match_args__ = ("loop", "index", "attempt", "delay", "exception")

    index: int
    """The iteration's index."""
    attempt: int
    """1 for the first retry, then 2, 3, ... (reset by an iteration that succeeds)."""
    delay: float
    """Seconds until the retry."""
    exception: Exception
    """What the failed attempt raised."""

    def __init__(
        self, loop: Loop[Any, Any], index: int, attempt: int, delay: float, exception: Exception
    ) -> None:
        super().__init__(loop)
        self._set(index=index, attempt=attempt, delay=delay, exception=exception)


@final
class IterationTimedOut(LoopEvent):
    """An iteration's body ran past ``timeout=`` and was cancelled.

    .. versionadded:: 0.2
    """

    __slots__ = ("action", "index", "timeout")
    __match_args__ = ("loop", "index", "timeout", "action")

    index: int
    """The iteration's index."""
    timeout: float
    """The limit it ran past, in seconds."""
    action: TimeoutAction
    """What follows: the loop's ``on_timeout``."""

    def __init__(
        self, loop: Loop[Any, Any], index: int, timeout: float, action: TimeoutAction
    ) -> None:
        super().__init__(loop)
        self._set(index=index, timeout=timeout, action=action)


@final
class LoopEnded(LoopEvent):
    """A run ended, after its ``after_loop``: :attr:`~anytasks.LoopEnded.end` says how.

    .. versionadded:: 0.2
    """

    __slots__ = ("end",)
    __match_args__ = ("loop", "end")

    end: LoopEnd
    """How the run ended."""

    def __init__(self, loop: Loop[Any, Any], end: LoopEnd) -> None:
        super().__init__(loop)
        self._set(end=end)


Listener = Callable[[LoopEvent], object]


class ListenerSource(Protocol):
    """Where a loop's own listeners are (its record), read whenever an event is made."""

    @property
    def listeners(self) -> tuple[Listener, ...]: ...


_ListenerT = TypeVar("_ListenerT", bound=Listener)

_global_listeners: list[Listener] = []
# How many loops (instances' copies included) have listeners: with the global ones, whether
# any event is worth making.
_loops_with_listeners = 0

#: Whether any listener is registered anywhere: read by the runner before making an event.
listening = False


def _update() -> None:
    global listening
    listening = bool(_global_listeners) or _loops_with_listeners > 0


def count_loop_listeners(change: int) -> None:
    """Note ``change`` more (or fewer) loops with listeners of their own."""
    global _loops_with_listeners
    _loops_with_listeners += change
    _update()


def check_listener(listener: object) -> None:
    if not callable(listener):
        raise TypeError(f"a listener must be callable, not {type(listener).__name__!r}")
    if is_async(listener):
        raise TypeError(
            f"listener {listener!r} is an async function: a loop calls its listeners "
            "synchronously, in the loop's task, and would never await it; pass a plain "
            "function, and hand slow work to a task through a memory object stream"
        )


def add_listener(listener: _ListenerT) -> _ListenerT:
    """Deliver the events of every loop to ``listener``, a function of one event.

    The listener is called synchronously, in the loop's task, after the loop's own
    listeners: it must not block (hand slow work to a task through a memory object stream),
    and it cannot be an ``async def`` function, which would never be awaited. An exception it
    raises is logged on the ``anytasks`` logger and the loop goes on. Registering the same
    listener twice delivers each event to it twice. Returns ``listener``, so this works as a
    decorator.

    :raises TypeError: if ``listener`` is not callable, or is an async function (also a
        :func:`functools.partial` of one, or an object whose ``__call__`` is one).

    Synopsis::

        @anytasks.add_listener
        def report(event: anytasks.LoopEvent) -> None:
            if isinstance(event, anytasks.IterationFinished) and event.outcome != "success":
                alert(event.loop.name, event.exception)

    .. versionadded:: 0.2
    """
    check_listener(listener)
    _global_listeners.append(listener)
    _update()
    return listener


def remove_listener(listener: Listener) -> None:
    """Stop delivering events to ``listener`` (once, if it was added more than once).

    :raises ValueError: if ``listener`` is not a global listener.

    .. versionadded:: 0.2
    """
    try:
        _global_listeners.remove(listener)
    except ValueError:
        raise ValueError(f"{listener!r} is not a registered listener") from None
    _update()


def listeners_of(own: tuple[Listener, ...]) -> tuple[Listener, ...]:
    """Who hears of a loop whose own listeners are ``own`` now: those, then the global ones."""
    return (*own, *_global_listeners)


def emit(event: LoopEvent, own: tuple[Listener, ...]) -> None:
    """Deliver ``event`` to its loop's own listeners ``own``, then to the global ones."""
    deliver(event, listeners_of(own))


def deliver(event: LoopEvent, listeners: tuple[Listener, ...]) -> None:
    """Deliver ``event`` to ``listeners``: those of an iteration are the ones there were as it
    began, so that each listener hears of an iteration whole or not at all."""
    for listener in listeners:
        try:
            listener(event)
        except Exception:
            logger.exception("Exception in listener %r of loop %r", listener, event.loop.name)
