"""How a run ended (:class:`LoopEnd`, :class:`EndReason`), and :class:`IterationTimeout`."""

from __future__ import annotations

import datetime
import enum
from typing import Literal, final

from ._frozen import Frozen

#: How an iteration ended, after any retries: ``"success"``; ``"error"`` (an unhandled
#: exception, which ends the run); ``"timeout"`` (it ran past ``timeout=`` with
#: ``on_timeout="skip"``; with ``"error"`` it ends as ``"error"``); ``"cancelled"`` (the run
#: was cancelled while the body ran); ``"lease_lost"`` (an exclusive loop's lease ran out or
#: was taken over while the body ran, which was cancelled).
IterationOutcome = Literal["success", "error", "timeout", "cancelled", "lease_lost"]
#: Why slots were skipped: ``"missed"`` (the loop was behind, and ``overrun=`` or ``grace=``
#: dropped them), ``"paused"`` (they came due during :meth:`~anytasks.Loop.pause`),
#: ``"timeout"`` (the iteration timed out with ``on_timeout="skip"``).
SkipReason = Literal["missed", "paused", "timeout"]
#: What a timed-out iteration leads to: the loop's ``on_timeout=``.
TimeoutAction = Literal["error", "skip", "retry"]
#: What an iteration's unhandled error leads to: the loop's ``on_error=``. ``"raise"`` (the
#: default, as in discord.py): it ends the run; ``"continue"``: it is reported, and the loop goes
#: on to its next slot.
ErrorAction = Literal["raise", "continue"]


@final
class EndReason(enum.Enum):
    """Why a run of a loop ended: the :attr:`~anytasks.LoopEnd.reason`.

    .. versionadded:: 0.2
    """

    COMPLETED = "completed"
    """It ran its ``count`` iterations, or its schedule has no more times."""
    STOPPED = "stopped"
    """:meth:`~anytasks.Loop.stop` ended it."""
    CANCELLED = "cancelled"
    """:meth:`~anytasks.Loop.cancel`, an enclosing cancel scope or ``Task.cancel()`` ended it
    (or a :class:`KeyboardInterrupt` or :class:`SystemExit` went through it)."""
    FAILED = "failed"
    """An unhandled exception ended it: :attr:`LoopEnd.exception`. That may be a
    :class:`BaseException` that is neither a cancellation nor a :class:`KeyboardInterrupt` or
    :class:`SystemExit` (``pytest.fail()``'s, say), which skips the ``error`` hook."""
    RESTARTED = "restarted"
    """:meth:`~anytasks.Loop.restart` ended it, and a new run follows."""


@final
class LoopEnd(Frozen):
    """How one run of a loop ended: what :meth:`~anytasks.Loop.join` returns,
    :attr:`~anytasks.Loop.last_end` holds and an ``after_loop`` hook with a parameter receives.

    Frozen: its fields cannot be set.

    .. versionadded:: 0.2
    """

    __slots__ = ("errors", "exception", "iterations", "last_scheduled", "lease_lost", "reason")
    __match_args__ = (
        "reason",
        "exception",
        "iterations",
        "last_scheduled",
        "lease_lost",
        "errors",
    )

    reason: EndReason
    """Why the run ended."""
    exception: BaseException | None
    """The unhandled exception that ended it (:attr:`EndReason.FAILED`, or a failure that the
    ``error`` hook answered with :meth:`~anytasks.Loop.restart`), else ``None``. A
    :class:`BaseException`, not only an :class:`Exception`: see :attr:`EndReason.FAILED`."""
    iterations: int
    """How many iterations completed in the run."""
    last_scheduled: datetime.datetime | None
    """When the last iteration that began was due (aware UTC, the grid's time before any
    jitter); ``None`` if none began."""
    lease_lost: bool
    """Whether the run's last iteration was cancelled because its lease was lost (a loop made
    with ``exclusive=``)."""
    errors: int
    """How many of the run's iterations raised an unhandled exception that ``on_error="continue"``
    reported and let pass (they count in :attr:`iterations` too)."""

    def __init__(
        self,
        reason: EndReason,
        exception: BaseException | None = None,
        iterations: int = 0,
        last_scheduled: datetime.datetime | None = None,
        lease_lost: bool = False,
        errors: int = 0,
    ) -> None:
        self._set(
            reason=reason,
            exception=exception,
            iterations=iterations,
            last_scheduled=last_scheduled,
            lease_lost=lease_lost,
            errors=errors,
        )

    def __repr__(self) -> str:
        return (
            f"LoopEnd(reason={self.reason}, exception={self.exception!r}, "
            f"iterations={self.iterations!r}, last_scheduled={self.last_scheduled!r}"
            f"{', lease_lost=True' if self.lease_lost else ''}"
            f"{f', errors={self.errors!r}' if self.errors else ''})"
        )


@final
class IterationTimeout(Exception):
    """An iteration ran longer than the loop's ``timeout=`` (with ``on_timeout="error"``).

    Not a :class:`TimeoutError`, so that it is never taken for a network timeout that the loop
    retries (:class:`OSError` and its subclasses are handled by default). Its ``__cause__`` is
    the cancellation that the deadline raised in the body, whose traceback shows where the
    body was when the time ran out.

    .. versionadded:: 0.2
    """
