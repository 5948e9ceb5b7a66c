"""Exponential backoff with full jitter, as discord.py's reconnect logic uses."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Generic, Literal, TypeVar, final, overload

from ._checks import check_count, check_optional_seconds

# Literal[True] for a backoff whose delays are ints, Literal[False] for floats, bool when
# unknown. Covariant, so that either can be passed where an ExponentialBackoff[bool] is taken.
_IntegralT = TypeVar("_IntegralT", bound=bool, covariant=True)

_MAX_EXPONENT = 10


@final
class ExponentialBackoff(Generic[_IntegralT]):
    """Delays that double on every call, with jitter, for retrying after failures.

    Each :meth:`delay` returns a random value between 0 and ``base * 2**exp``,
    where ``exp`` grows by one per call up to 10. If more than ``base * 2**11``
    seconds pass between two calls, things are taken to have recovered and ``exp``
    starts again from the bottom. This is the algorithm of discord.py's
    ``ExponentialBackoff``; :func:`~anytasks.loop` uses one per run to pace its
    reconnect attempts.

    :param base: the unit of the delays, in seconds; must be positive.
    :param integral: return whole seconds (``int``, from ``[0, base * 2**exp)``)
        instead of a ``float`` from ``[0, base * 2**exp]``.
    :param rng: the random generator to draw from; pass a seeded
        :class:`random.Random` for deterministic tests. Default: a private one.
    :param clock: the time source for the reset rule, in seconds. Default:
        :func:`time.monotonic`; loops pass the event loop's clock so that the reset
        follows virtual time in tests.
    :param cap: the largest delay, in seconds (the draws come from ``[0, min(cap,
        base * 2**exp)]``); ``None`` for no cap but the exponent's.
    :raises TypeError: if ``base`` is not an integer, or ``cap`` not a number.
    :raises ValueError: if ``base`` or ``cap`` is not positive.

    .. versionchanged:: 0.2
       ``cap``.

    Synopsis::

        backoff = ExponentialBackoff(rng=random.Random(0))
        while True:
            try:
                return await connect()
            except OSError:
                await anyio.sleep(backoff.delay())
    """

    __slots__ = (
        "_base",
        "_cap",
        "_clock",
        "_exp",
        "_integral",
        "_last_call",
        "_reset_after",
        "_rng",
    )

    @overload
    def __init__(
        self: ExponentialBackoff[Literal[False]],
        base: int = 1,
        *,
        integral: Literal[False] = False,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        cap: float | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: ExponentialBackoff[Literal[True]],
        base: int = 1,
        *,
        integral: Literal[True],
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        cap: float | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: ExponentialBackoff[bool],
        base: int = 1,
        *,
        integral: bool,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        cap: float | None = None,
    ) -> None: ...

    def __init__(
        self,
        base: int = 1,
        *,
        integral: bool = False,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        cap: float | None = None,
    ) -> None:
        self._base = check_count("base", base, positive=True)
        self._cap = check_optional_seconds("cap", cap, positive=True)
        self._integral = integral
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._exp = 0
        self._reset_after = base * 2 ** (_MAX_EXPONENT + 1)
        self._last_call = clock()

    @overload
    def delay(self: ExponentialBackoff[Literal[False]]) -> float: ...

    @overload
    def delay(self: ExponentialBackoff[Literal[True]]) -> int: ...

    @overload
    def delay(self: ExponentialBackoff[bool]) -> int | float: ...

    def delay(self) -> float:
        """Return the next delay, in seconds.

        The first call after construction (or after a quiet spell longer than
        ``base * 2**11`` seconds) draws from ``[0, 2 * base]``, the next from
        ``[0, 4 * base]``, and so on up to ``[0, 1024 * base]``.

        The delay is a ``float``, or an ``int`` for a backoff made with
        ``integral=True``. Type checkers know which: the constructor's overloads
        record ``integral`` in the type parameter, so ``ExponentialBackoff()`` is an
        ``ExponentialBackoff[Literal[False]]`` whose ``delay()`` returns ``float``,
        ``ExponentialBackoff(integral=True)`` an ``ExponentialBackoff[Literal[True]]``
        whose ``delay()`` returns ``int``, and a backoff made with a ``bool`` known only
        at run time an ``ExponentialBackoff[bool]`` whose ``delay()`` returns
        ``int | float``.
        """
        now = self._clock()
        if now - self._last_call > self._reset_after:
            self._exp = 0
        self._last_call = now
        self._exp = min(self._exp + 1, _MAX_EXPONENT)
        upper = self._base * 2**self._exp
        if self._cap is not None:
            upper = min(upper, self._cap)
        if self._integral:
            # int() of a cap below 1 would leave nothing to draw from.
            return self._rng.randrange(0, max(1, int(upper)))
        return self._rng.uniform(0, upper)

    def _fresh(self, clock: Callable[[], float]) -> ExponentialBackoff[bool]:
        """A backoff configured as this one (base, integral, cap, generator), from the bottom,
        on ``clock``: what a loop given ``backoff=`` this one uses for each run."""
        return ExponentialBackoff(
            self._base, integral=self._integral, rng=self._rng, clock=clock, cap=self._cap
        )

    def __repr__(self) -> str:
        cap = "" if self._cap is None else f", cap={self._cap!r}"
        return (
            f"ExponentialBackoff(base={self._base!r}, integral={self._integral!r}{cap}, "
            f"exp={self._exp!r})"
        )
