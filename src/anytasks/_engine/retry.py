"""What a failing or overlong iteration leads to: ``timeout=``, ``on_timeout=``, ``backoff=``
and ``max_retries=``, checked, and the backoff a run retries with."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, cast, get_args

from .._backoff import ExponentialBackoff
from .._checks import check_optional_count, check_optional_seconds
from .._outcome import ErrorAction, TimeoutAction

_TIMEOUT_ACTIONS: tuple[str, ...] = get_args(TimeoutAction)
_ERROR_ACTIONS: tuple[str, ...] = get_args(ErrorAction)


class SupportsDelay(Protocol):
    """A backoff: each call of :meth:`delay` gives the seconds to wait before the next retry,
    a non-negative, finite int or float (checked: see :func:`check_delay`)."""

    def delay(self) -> float: ...


#: What ``backoff=`` takes: a function making a fresh backoff for each run, or an
#: :class:`~anytasks.ExponentialBackoff` used as a configuration (base, cap, integral).
BackoffSpec = Callable[[], SupportsDelay] | ExponentialBackoff[Any]


def check_timeout(value: object) -> float | None:
    return check_optional_seconds("timeout", value, positive=True)


def check_on_error(value: object) -> ErrorAction:
    if value not in _ERROR_ACTIONS:
        raise ValueError(f"`on_error` must be 'raise' or 'continue', got {value!r}")
    return value  # type: ignore[return-value]  # pyright: ignore[reportReturnType]


def check_on_timeout(value: object) -> TimeoutAction:
    if value not in _TIMEOUT_ACTIONS:
        raise ValueError(f"`on_timeout` must be 'error', 'skip' or 'retry', got {value!r}")
    return value  # type: ignore[return-value]  # pyright: ignore[reportReturnType]


def check_backoff(value: object) -> BackoffSpec | None:
    if value is None or isinstance(value, ExponentialBackoff) or callable(value):
        return cast("BackoffSpec | None", value)
    raise TypeError(
        "`backoff` must be an ExponentialBackoff or a function returning a backoff, "
        f"not {type(value).__name__!r}"
    )


def check_max_retries(value: object) -> int | None:
    return check_optional_count("max_retries", value)


def check_delay(delay: object, backoff: SupportsDelay, failed: Exception) -> float:
    """``delay``, which ``backoff.delay()`` returned, if it is a delay: an int or a float, not
    negative, finite. Infinity is refused too: the retry would never come, and stop() does not
    end a backoff.

    :raises TypeError: from ``failed`` (the exception that was to be retried), for another type.
    :raises ValueError: from ``failed``, for a negative, infinite or NaN delay.
    """
    returned = f"`backoff`: {type(backoff).__qualname__}.delay() returned {delay!r}"
    if isinstance(delay, bool) or not isinstance(delay, (int, float)):
        raise TypeError(f"{returned}, not a number of seconds") from failed
    if not 0 <= delay < math.inf:  # NaN too
        raise ValueError(f"{returned}; a delay must be non-negative and finite") from failed
    return delay


def new_backoff(spec: BackoffSpec | None, clock: Callable[[], float]) -> SupportsDelay:
    """The backoff a run retries with: discord.py's by default, on the event loop's clock."""
    if spec is None:
        return ExponentialBackoff(clock=clock)
    if isinstance(spec, ExponentialBackoff):
        # The one way to copy a backoff's configuration (its fields are its own, and its
        # public face has no need to show them): ExponentialBackoff's helper for this.
        return spec._fresh(clock)  # pyright: ignore[reportPrivateUsage]
    backoff = spec()
    if not callable(getattr(backoff, "delay", None)):
        raise TypeError(
            f"`backoff` returned {backoff!r}, which has no delay() method to ask for a delay"
        )
    return backoff
