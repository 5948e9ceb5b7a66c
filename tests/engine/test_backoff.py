"""ExponentialBackoff: discord.py's algorithm, deterministic with a seeded generator."""

from __future__ import annotations

import random
import re

import pytest

from anytasks import ExponentialBackoff


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_upper_bound_doubles_per_call_up_to_1024_base() -> None:
    # rng.uniform(0, upper) with a stub that always returns the upper bound.
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    backoff = ExponentialBackoff(3, rng=Top())
    assert [backoff.delay() for _ in range(12)] == [3 * 2**k for k in range(1, 11)] + [3072] * 2


def test_delays_are_drawn_from_the_seeded_generator() -> None:
    expected_rng = random.Random(42)
    expected = [expected_rng.uniform(0, 2**k) for k in range(1, 6)]
    backoff = ExponentialBackoff(rng=random.Random(42))
    assert [backoff.delay() for _ in range(5)] == expected
    assert all(0 <= d <= 2 ** (k + 1) for k, d in enumerate(expected))


def test_integral_delays_are_whole_seconds() -> None:
    expected_rng = random.Random(7)
    expected = [expected_rng.randrange(0, 2**k) for k in range(1, 8)]
    backoff = ExponentialBackoff(integral=True, rng=random.Random(7))
    delays = [backoff.delay() for _ in range(7)]
    assert delays == expected
    assert all(type(d) is int for d in delays)


def test_a_long_quiet_spell_resets_the_exponent() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    clock = FakeClock()
    backoff = ExponentialBackoff(1, rng=Top(), clock=clock)
    assert [backoff.delay() for _ in range(4)] == [2, 4, 8, 16]
    clock.now += 2048  # exactly base * 2**11: not more, so no reset
    assert backoff.delay() == 32
    clock.now += 2048.5
    assert backoff.delay() == 2
    assert backoff.delay() == 4


def test_reset_time_scales_with_base() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    clock = FakeClock()
    backoff = ExponentialBackoff(5, rng=Top(), clock=clock)
    assert backoff.delay() == 10
    clock.now += 5 * 2048 - 1
    assert backoff.delay() == 20
    clock.now += 5 * 2048 + 1
    assert backoff.delay() == 10


@pytest.mark.parametrize(
    ("base", "error", "message"),
    [
        (0, ValueError, "`base` must be a positive int, got 0"),
        (-2, ValueError, "`base` must be a positive int, got -2"),
        (1.5, TypeError, "`base` must be an int, not 'float'"),
        (True, TypeError, "`base` must be an int, not 'bool'"),
    ],
)
def test_bad_base(base: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        ExponentialBackoff(base)  # type: ignore[arg-type]


def test_repr_shows_the_state() -> None:
    backoff = ExponentialBackoff(2, rng=random.Random(0))
    backoff.delay()
    assert repr(backoff) == "ExponentialBackoff(base=2, integral=False, exp=1)"
